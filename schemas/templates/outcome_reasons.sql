-- Template: why tasks did not complete, inside a macro with the parameters start_at, end_at,
-- workflows, teams (the filters of cost_per_task_by): the tasks of {analysis_tasks} (tasks
-- with their outcome at as_of()) started in [start_at, end_at) that ended escalated, failed
-- (reopened and uncounted rework included: counted_as) or abandoned, grouped by workflow,
-- outcome and the reason their signals gave (NULL: none given; abandoned tasks have no
-- signal), with how many tasks and their inference spend, ranked within each workflow by
-- tasks, then spend. share_of_decided: those tasks over the workflow's decided tasks.
WITH t AS (
    SELECT * FROM {analysis_tasks}
    WHERE (start_at IS NULL OR started_at >= start_at::TIMESTAMPTZ)
      AND (end_at IS NULL OR started_at < end_at::TIMESTAMPTZ)
      AND (workflows IS NULL OR list_contains(workflows, workflow))
      AND (teams IS NULL OR list_contains(teams, team))
),
decided AS (
    SELECT workflow, count(*) FILTER (WHERE counted_as <> 'pending') AS decided
    FROM t GROUP BY workflow
),
g AS (
    SELECT workflow, counted_as, outcome, reason,
        count(*)::BIGINT AS tasks,
        sum(attempts)::BIGINT AS attempts,
        coalesce(sum(spend_usd), 0)::DECIMAL(38, 12) AS spend_usd,
        sum(rework_usd)::DECIMAL(38, 12) AS signal_rework_usd
    FROM t
    WHERE counted_as IN ('escalated', 'failed', 'abandoned')
    GROUP BY ALL
)
SELECT g.workflow,
    row_number() OVER (PARTITION BY g.workflow ORDER BY g.tasks DESC, g.spend_usd DESC,
        g.counted_as, g.outcome, g.reason NULLS LAST) AS rank,
    g.counted_as, g.outcome, g.reason, g.tasks, g.attempts, g.spend_usd, g.signal_rework_usd,
    g.tasks / nullif(d.decided, 0) AS share_of_decided
FROM g JOIN decided d ON d.workflow IS NOT DISTINCT FROM g.workflow
ORDER BY g.workflow NULLS LAST, rank
