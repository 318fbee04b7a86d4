-- Template: two cohorts of one workflow side by side, inside a macro with the parameters of
-- compare_params.sql: side 'a' holds the tasks of workflow_name that started in
-- [a_start, a_end) (within [start_at, end_at)), of version a_version and team a_team (each
-- NULL: any); side 'b' likewise. Each side is one row of {cost_by} (cost_per_task_by, or the
-- store's twin: the one definition of cost per completed task; a cohort is a grouping by
-- version and team of the tasks started in its period) with the figures of
-- cohort_figures.sql. A side without tasks is a row of zeros and NULL figures. Both sides may
-- hold the same task (version:v2 against period:2026-11). A third row, 'change', holds b - a
-- of every figure (NULL where a side has none).
WITH found AS (
    SELECT 'a' AS side, * FROM {cost_by}(
        by_workflow := true, by_version := a_version IS NOT NULL, by_team := a_team IS NOT NULL,
        start_at := greatest(start_at::TIMESTAMPTZ, a_start::TIMESTAMPTZ),
        end_at := least(end_at::TIMESTAMPTZ, a_end::TIMESTAMPTZ),
        workflows := [workflow_name], teams := teams, full_cost := full_cost)
    WHERE (a_version IS NULL OR version = a_version) AND (a_team IS NULL OR team = a_team)
    UNION ALL
    SELECT 'b' AS side, * FROM {cost_by}(
        by_workflow := true, by_version := b_version IS NOT NULL, by_team := b_team IS NOT NULL,
        start_at := greatest(start_at::TIMESTAMPTZ, b_start::TIMESTAMPTZ),
        end_at := least(end_at::TIMESTAMPTZ, b_end::TIMESTAMPTZ),
        workflows := [workflow_name], teams := teams, full_cost := full_cost)
    WHERE (b_version IS NULL OR version = b_version) AND (b_team IS NULL OR team = b_team)
),
figures AS (
    SELECT * FROM {cohort_figures(rows=found)}
),
sides AS (
    SELECT s.side, workflow_name AS workflow,
        CASE s.side WHEN 'a' THEN a_version ELSE b_version END AS version,
        CASE s.side WHEN 'a' THEN a_team ELSE b_team END AS team,
        greatest(start_at::TIMESTAMPTZ,
            CASE s.side WHEN 'a' THEN a_start ELSE b_start END::TIMESTAMPTZ) AS started_from,
        least(end_at::TIMESTAMPTZ,
            CASE s.side WHEN 'a' THEN a_end ELSE b_end END::TIMESTAMPTZ) AS started_before,
        coalesce(f.attempts, 0) AS attempts, coalesce(f.tasks, 0) AS tasks,
        coalesce(f.completed, 0) AS completed, coalesce(f.failed, 0) AS failed,
        coalesce(f.escalated, 0) AS escalated, coalesce(f.abandoned, 0) AS abandoned,
        coalesce(f.pending, 0) AS pending,
        f.success_rate, f.failure_rate,
        coalesce(f.tokens, 0) AS tokens, f.tokens_per_attempt,
        coalesce(f.spend_usd, 0) AS spend_usd, f.cost_per_attempt_usd,
        f.cost_per_completed_task_usd,
        coalesce(f.unpriced_spans, 0) AS unpriced_spans,
        coalesce(f.model_calls, 0) AS model_calls,
        f.price_per_token_usd, f.attempts_per_completed_task,
        f.inference_per_completed_task_usd, f.non_inference_per_completed_task_usd,
        f.rework_per_completed_task_usd, f.labor_per_completed_task_usd,
        f.infrastructure_per_completed_task_usd, f.licence_per_completed_task_usd,
        f.other_per_completed_task_usd,
        f.inference_usd, f.rework_usd, f.labor_usd, f.infrastructure_usd, f.licence_usd,
        f.other_usd
    FROM (VALUES ('a'), ('b')) s(side)
    LEFT JOIN figures f USING (side)
),
a AS (SELECT * FROM sides WHERE side = 'a'),
b AS (SELECT * FROM sides WHERE side = 'b')
SELECT * FROM sides
UNION ALL
SELECT 'change', b.workflow, NULL, NULL, NULL, NULL,
    b.attempts - a.attempts, b.tasks - a.tasks, b.completed - a.completed,
    b.failed - a.failed, b.escalated - a.escalated, b.abandoned - a.abandoned,
    b.pending - a.pending, b.success_rate - a.success_rate, b.failure_rate - a.failure_rate,
    b.tokens - a.tokens, b.tokens_per_attempt - a.tokens_per_attempt,
    b.spend_usd - a.spend_usd, b.cost_per_attempt_usd - a.cost_per_attempt_usd,
    b.cost_per_completed_task_usd - a.cost_per_completed_task_usd,
    b.unpriced_spans - a.unpriced_spans, b.model_calls - a.model_calls,
    b.price_per_token_usd - a.price_per_token_usd,
    b.attempts_per_completed_task - a.attempts_per_completed_task,
    b.inference_per_completed_task_usd - a.inference_per_completed_task_usd,
    b.non_inference_per_completed_task_usd - a.non_inference_per_completed_task_usd,
    b.rework_per_completed_task_usd - a.rework_per_completed_task_usd,
    b.labor_per_completed_task_usd - a.labor_per_completed_task_usd,
    b.infrastructure_per_completed_task_usd - a.infrastructure_per_completed_task_usd,
    b.licence_per_completed_task_usd - a.licence_per_completed_task_usd,
    b.other_per_completed_task_usd - a.other_per_completed_task_usd,
    b.inference_usd - a.inference_usd, b.rework_usd - a.rework_usd,
    b.labor_usd - a.labor_usd, b.infrastructure_usd - a.infrastructure_usd,
    b.licence_usd - a.licence_usd, b.other_usd - a.other_usd
FROM a, b
ORDER BY side
