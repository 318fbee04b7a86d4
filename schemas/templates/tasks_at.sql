-- Template: every task's decision at as_of(), from stored decisions made with every signal:
-- {tasks} (task_rows.sql rows), {attempts} and {signals} (one row per signal id). A task with
-- a signal later than as_of() is decided again from the signals in force then; every other
-- stored decision already is the one of that moment (decisions do not depend on the clock).
WITH later AS MATERIALIZED (
    SELECT DISTINCT coalesce(s.task_id, a.task_key) AS task_key
    FROM {signals} s
    LEFT JOIN {attempts} a ON s.task_id IS NULL AND a.attempt_id = s.correlation_id
    WHERE s.occurred_at > as_of() AND coalesce(s.task_id, a.task_key) IS NOT NULL
),
later_attempts AS MATERIALIZED (
    SELECT * FROM {attempts} WHERE task_key IN (SELECT task_key FROM later)
)
SELECT * FROM {tasks} WHERE task_key NOT IN (SELECT task_key FROM later)
UNION ALL
SELECT * FROM (
    {task_rows(attempts=later_attempts, signals=later_signals)}
)
