-- Template: the attempts of the traces named by the enclosing macro's `traces` (NULL: all)
-- that belong to one of its task `keys` (NULL: all).
SELECT * FROM attempts_in(traces)
WHERE keys IS NULL OR list_contains(keys, task_key)
