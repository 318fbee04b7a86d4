-- Template: every stored copy of the signals naming one of the enclosing macro's `keys`
-- (NULL: all) as task or attempt — all copies of a signal_id, whatever each copy names.
SELECT * FROM {stored_signals}
WHERE keys IS NULL OR signal_id IN (
    SELECT signal_id FROM {stored_signals}
    WHERE list_contains(keys, task_id) OR list_contains(keys, correlation_id))
