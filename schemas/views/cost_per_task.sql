-- cost_per_task_by(...): cost per completed task for any grouping (cost_rows.sql); the API's
-- GET /api/v1/cost-per-task selects from it.
CREATE OR REPLACE MACRO cost_per_task_by({cost_params}) AS TABLE
{cost_rows(tasks=tasks, breakdown=task_breakdown, allocations=task_allocations)};

-- cost_per_task: by workflow (the API's default grouping).
CREATE OR REPLACE VIEW cost_per_task AS
SELECT * EXCLUDE (team, role, version, model, provider, day, week, month,
    inference_usd, rework_usd, labor_usd, infrastructure_usd, licence_usd, other_usd)
FROM cost_per_task_by(by_workflow := true);
