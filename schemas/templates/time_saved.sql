-- Template: the human time each workflow saves and what it is worth, inside a macro with the
-- parameters start_at, end_at, workflows, teams: for the tasks started in [start_at, end_at),
-- hours_saved = completed tasks x human_minutes_per_task / 60, value_usd = hours_saved x
-- human_cost_per_hour, and net_value_usd = value_usd - the fully loaded spend of all their
-- tasks (cost_per_task_by with full_cost: inference and every component, failed and
-- abandoned tasks included). NULL where the workflow's rule sets no minutes or no hourly
-- cost.
WITH c AS (
    SELECT * FROM {cost_by}(
        by_workflow := true, start_at := start_at, end_at := end_at, workflows := workflows,
        teams := teams, full_cost := true)
),
r AS (
    SELECT * FROM {rules_of(workflows=c)}
),
v AS (
    SELECT c.workflow, c.tasks, c.completed, c.pending,
        r.rules.human_minutes_per_task AS human_minutes_per_task,
        r.rules.human_cost_per_hour AS human_cost_per_hour,
        (c.completed * r.rules.human_minutes_per_task::DECIMAL(38, 12) / 60)::DECIMAL(38, 12)
            AS hours_saved,
        c.spend_usd AS fully_loaded_spend_usd, c.cost_per_completed_task_usd
    FROM c JOIN r ON r.workflow IS NOT DISTINCT FROM c.workflow
)
SELECT workflow, tasks, completed, pending, human_minutes_per_task, hours_saved,
    human_cost_per_hour,
    (hours_saved * human_cost_per_hour)::DECIMAL(38, 12) AS value_usd,
    fully_loaded_spend_usd,
    (hours_saved * human_cost_per_hour - fully_loaded_spend_usd)::DECIMAL(38, 12)
        AS net_value_usd,
    cost_per_completed_task_usd
FROM v
ORDER BY workflow NULLS LAST
