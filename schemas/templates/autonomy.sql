-- Template: the autonomy gate of each workflow, inside a macro with the parameters of
-- autonomy_params.sql: has the workflow earned more autonomy? One row per workflow with tasks
-- in its window, each judged by its own rule (workflow_rules, rules_of.sql).
--
-- The window: the autonomy_window whole UTC days before end_at's day (default: as_of()'s), so
-- the day still running is not in it; start_at, when later, cuts it. Figures are those of the
-- tasks started in it, from the day rows of {cost_by} pooled (pooled_figures.sql); full_cost
-- judges the fully loaded cost.
--
-- quality_proven: target_success_rate is set, at least min_tasks tasks are decided, the
--   success rate (completed / decided) reaches the target, and so does its lower confidence
--   bound: the one-sided Wilson score bound at autonomy_confidence (z = autonomy_z),
--   (p + z^2/2n - z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n).
-- cost_proven: budget_per_completed_task is set, the window's cost per completed task is
--   within it, and there is no upward drift: the window's days pooled into drift_period
--   periods and diagnosed as trends are (diagnosis.sql: recent against baseline periods,
--   periods with too many pending tasks left out), cost per completed task has not risen by
--   more than drift_threshold. Drift is judged on cost per completed task itself, so a flat
--   per-token price cannot hide it; drift_cause names the part that grew most. When the
--   window has too few usable periods, drift cannot be judged and cost is not proven.
-- verdict: ready when both are proven, else not_ready; reasons say why, in words.
WITH bounds AS MATERIALIZED (
    SELECT utc_day(coalesce(end_at::TIMESTAMPTZ, as_of())) AS end_day,
        (SELECT max(autonomy_window) FROM workflow_rules) AS widest
),
days AS MATERIALIZED (
    SELECT * EXCLUDE (team, role, version, model, provider, week, month)
    FROM {cost_by}(
        by_workflow := true, by_day := true,
        start_at := (SELECT greatest((end_day - widest)::TIMESTAMPTZ, start_at::TIMESTAMPTZ)
                     FROM bounds),
        end_at := (SELECT end_day::TIMESTAMPTZ FROM bounds),
        workflows := workflows, teams := teams, full_cost := full_cost)
),
r AS (
    SELECT *, (SELECT end_day FROM bounds) AS end_day,
        ((SELECT end_day FROM bounds) - rules.autonomy_window)::DATE AS first_day
    FROM {rules_of(workflows=days)}
),
in_window AS MATERIALIZED (
    SELECT d.*, r.first_day, r.end_day, r.rules
    FROM days d JOIN r ON r.workflow IS NOT DISTINCT FROM d.workflow
    WHERE d.day >= r.first_day
),
window_days AS (
    SELECT *, 'window' AS grp, day AS period_start FROM in_window
),
totals AS (
    SELECT workflow, grp AS side,
        * EXCLUDE (workflow, grp, periods, first_period, last_period)
    FROM {cost_sums(summed=window_days)}
),
window_figures AS (
    SELECT * FROM {pooled_figures(pooled=totals)}
),
drift_days AS (
    SELECT *, day AS period_start,
        CASE rules.drift_period WHEN 'day' THEN day
             WHEN 'week' THEN date_trunc('week', day)::DATE
             ELSE date_trunc('month', day)::DATE END AS grp
    FROM in_window
),
drift_periods AS (
    SELECT workflow, grp AS period_start,
        * EXCLUDE (workflow, grp, periods, first_period, last_period)
    FROM {cost_sums(summed=drift_days)}
),
drift AS (
    SELECT * FROM {diagnosis(periods=drift_periods)}
),
g AS (
    SELECT r.workflow, r.rules, r.first_day, r.end_day,
        f.tasks, f.completed, f.pending, f.tasks - f.pending AS decided,
        f.success_rate, f.spend_usd, f.cost_per_completed_task_usd,
        r.rules.target_success_rate AS target_success_rate,
        r.rules.min_tasks AS min_tasks,
        r.rules.budget_per_completed_task AS budget_per_completed_task,
        r.rules.drift_threshold AS drift_threshold,
        r.rules.drift_period AS drift_period,
        r.rules.autonomy_confidence AS confidence,
        CASE WHEN f.tasks - f.pending > 0 THEN (
            f.success_rate + r.rules.autonomy_z ^ 2 / (2 * (f.tasks - f.pending))
            - r.rules.autonomy_z * sqrt(f.success_rate * (1 - f.success_rate)
                / (f.tasks - f.pending)
                + r.rules.autonomy_z ^ 2 / (4 * (f.tasks - f.pending) ^ 2)))
            / (1 + r.rules.autonomy_z ^ 2 / (f.tasks - f.pending)) END AS wilson_lower_bound,
        x.state AS drift_state, x.cost_change, x.largest_increase AS drift_cause,
        x.usable_periods AS drift_usable_periods,
        x.baseline AS drift_baseline, x.recent AS drift_recent
    FROM r
    JOIN window_figures f ON f.workflow IS NOT DISTINCT FROM r.workflow
    LEFT JOIN drift x ON x.workflow IS NOT DISTINCT FROM r.workflow
),
v AS (
    SELECT *,
        target_success_rate IS NOT NULL AND decided >= min_tasks
            AND success_rate >= target_success_rate
            AND wilson_lower_bound >= target_success_rate AS quality_proven,
        drift_state IS NOT NULL AND drift_state <> 'insufficient_data'
            AND cost_change > drift_threshold AS drifting,
        budget_per_completed_task IS NOT NULL
            AND cost_per_completed_task_usd <= budget_per_completed_task
            AND drift_state IS NOT NULL AND drift_state <> 'insufficient_data'
            AND cost_change <= drift_threshold AS cost_proven
    FROM g
)
SELECT workflow,
    CASE WHEN quality_proven AND cost_proven THEN 'ready' ELSE 'not_ready' END AS verdict,
    quality_proven, cost_proven,
    list_filter([
        CASE WHEN target_success_rate IS NULL
             THEN 'no target_success_rate is set for this workflow' END,
        CASE WHEN target_success_rate IS NOT NULL AND decided < min_tasks
             THEN printf('%d decided task(s) in the window, fewer than min_tasks (%d)',
                decided, min_tasks) END,
        CASE WHEN target_success_rate IS NOT NULL AND decided >= min_tasks
                 AND success_rate < target_success_rate
             THEN printf('success rate %.2f%% is below the target %.2f%%',
                100 * success_rate, 100 * target_success_rate) END,
        CASE WHEN target_success_rate IS NOT NULL AND decided >= min_tasks
                 AND success_rate >= target_success_rate
                 AND wilson_lower_bound < target_success_rate
             THEN printf('success rate %.2f%% meets the target %.2f%%, but its lower bound'
                || ' at %.0f%% confidence (Wilson) is %.2f%%: not proven yet',
                100 * success_rate, 100 * target_success_rate, 100 * confidence,
                100 * wilson_lower_bound) END,
        CASE WHEN quality_proven
             THEN printf('quality proven: success rate %.2f%%, lower bound %.2f%% at %.0f%%'
                || ' confidence (Wilson), over %d decided tasks, target %.2f%%',
                100 * success_rate, 100 * wilson_lower_bound, 100 * confidence, decided,
                100 * target_success_rate) END,
        CASE WHEN budget_per_completed_task IS NULL
             THEN 'no budget_per_completed_task is set for this workflow' END,
        CASE WHEN cost_per_completed_task_usd IS NULL
             THEN 'no cost per completed task in the window (nothing completed, or unpriced)'
        END,
        CASE WHEN cost_per_completed_task_usd > budget_per_completed_task
             THEN printf('cost per completed task $%s is over the budget $%s',
                cost_per_completed_task_usd::DECIMAL(38, 6)::VARCHAR,
                budget_per_completed_task::VARCHAR) END,
        CASE WHEN drift_state IS NULL OR drift_state = 'insufficient_data'
             THEN printf('drift cannot be judged: %d usable %s period(s) in the window',
                coalesce(drift_usable_periods, 0), drift_period) END,
        CASE WHEN drifting
             THEN printf('cost per completed task drifts up %.1f%% (recent against baseline'
                || ' %s periods; threshold %.1f%%), mostly %s', 100 * cost_change,
                drift_period, 100 * drift_threshold, coalesce(drift_cause, 'unsplit')) END,
        CASE WHEN cost_proven
             THEN printf('cost proven: $%s per completed task within the budget $%s, change'
                || ' %.1f%% (recent against baseline %s periods) within %.1f%%',
                cost_per_completed_task_usd::DECIMAL(38, 6)::VARCHAR,
                budget_per_completed_task::VARCHAR, 100 * cost_change, drift_period,
                100 * drift_threshold) END
    ], x -> x IS NOT NULL) AS reasons,
    success_rate, wilson_lower_bound, cost_per_completed_task_usd, cost_change AS drift,
    decided, tasks, completed, pending, spend_usd, target_success_rate, min_tasks, confidence,
    budget_per_completed_task, drift_threshold, drift_period, drift_state, drift_cause,
    drift_usable_periods, drift_baseline, drift_recent,
    first_day AS window_start, end_day AS window_end
FROM v
ORDER BY workflow NULLS LAST
