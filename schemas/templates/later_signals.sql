-- Template: the signals in force at as_of() about the tasks of `later` and their attempts
-- (inside tasks_at.sql).
SELECT * FROM {signals}
WHERE occurred_at <= as_of()
  AND (task_id IN (SELECT task_key FROM later)
       OR correlation_id IN (SELECT attempt_id FROM later_attempts))
