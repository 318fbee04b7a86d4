-- Template: the signals naming one of the enclosing macro's `keys` (NULL: all) as task or
-- attempt, that had occurred at as_of().
SELECT * FROM signals_in(keys) WHERE occurred_at <= as_of()
