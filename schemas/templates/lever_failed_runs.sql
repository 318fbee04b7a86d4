-- Template: the failed-runs lever of each workflow, from {lever_scope} (attempts with their
-- task's outcome): spend on attempts that did not produce a completion, pure cost with zero
-- output: every attempt of a task that ended failed, escalated or abandoned, and every
-- attempt but the last of a task that completed (pending tasks are not decided: not
-- counted). Also retries per completed task ((attempts of completed tasks - completed tasks)
-- / completed tasks) and the share of attempts with an error span. Dollars at stake: that
-- spend.
SELECT workflow,
    count(*)::BIGINT AS attempts,
    count(DISTINCT task_key) FILTER (WHERE counted_as = 'completed')::BIGINT
        AS completed_tasks,
    coalesce(sum(spend_usd) FILTER (WHERE counted_as IN ('failed', 'escalated', 'abandoned')),
        0)::DECIMAL(38, 12) AS unfinished_tasks_usd,
    coalesce(sum(spend_usd) FILTER (WHERE counted_as = 'completed' AND NOT last_attempt), 0)
        ::DECIMAL(38, 12) AS earlier_attempts_usd,
    coalesce(sum(spend_usd) FILTER (WHERE counted_as IN ('failed', 'escalated', 'abandoned')
        OR (counted_as = 'completed' AND NOT last_attempt)), 0)::DECIMAL(38, 12)
        AS usd_at_stake,
    (count(*) FILTER (WHERE counted_as = 'completed')
        - count(DISTINCT task_key) FILTER (WHERE counted_as = 'completed'))
        / nullif(count(DISTINCT task_key) FILTER (WHERE counted_as = 'completed'), 0)
        AS retries_per_completed_task,
    count(*) FILTER (WHERE errors > 0) / count(*) AS error_attempt_share
FROM {lever_scope}
GROUP BY workflow
