-- Template: cost per completed task of each workflow per period, inside a macro with the
-- parameters of trends_params.sql (period: day, week or month; the filters of
-- cost_per_task_by): the rows of {cost_by} grouped by workflow and the period the tasks
-- started in (period_start: the DATE it starts on; weeks start on Monday, UTC), with the
-- figures of cohort_figures.sql. A period without tasks has no row.
WITH per_period AS (
    SELECT * EXCLUDE (team, role, version, model, provider, day, week, month),
        coalesce(day, week, month) AS period_start
    FROM {cost_by}(
        by_workflow := true, by_day := period = 'day', by_week := period = 'week',
        by_month := period = 'month', start_at := start_at, end_at := end_at,
        workflows := workflows, teams := teams, full_cost := full_cost)
)
SELECT * FROM {cohort_figures(rows=per_period)}
ORDER BY workflow NULLS LAST, period_start
