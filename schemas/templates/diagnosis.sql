-- Template: what the recent periods of each workflow say about its cost, from {periods} (rows
-- of workflow, period_start and the sums of cost_rows.sql for the tasks started in that
-- period), with each workflow's thresholds (workflow_rules, rules_of.sql). One row per
-- workflow.
--
-- Periods with more than trend_max_pending of their tasks still pending are left out (their
-- cost per completed task is not final: pending tasks' spend counts, their completion not
-- yet); so are periods without tasks. Of the rest, the latest trend_recent_periods are pooled
-- as side b ("recent") and the trend_baseline_periods before them as side a ("baseline"):
-- cohorts by task start, so each side is one cohort (pooled_figures.sql), and the change of
-- cost per completed task between them is split by decomposition.sql (LMDI). Changes are
-- relative to the baseline: cost_change of cost per completed task, volume_change of tasks
-- per period and spend_change of spend per period (averages over each side's periods).
--
-- state, with t = trend_threshold and v = trend_volume_threshold:
--   insufficient_data  fewer usable periods than both sides need, or a side without a cost
--                      per completed task (nothing completed, or every call unpriced);
--   rising             cost_change > t while volume_change <= v (volume stable or falling):
--                      cause names the part of the decomposition that grew most (model_mix,
--                      tokens_per_attempt, failures, rework, infrastructure, labor, licence,
--                      other);
--   flat_with_growth   |cost_change| <= t while spend_change > v: volume growth without an
--                      efficiency gain;
--   improving          cost_change < -t while spend_change >= -v (spend rises or holds);
--   stable             anything else (note says when cost moved in a way no pattern names).
WITH pr AS MATERIALIZED (
    SELECT * FROM {periods}
),
r AS (
    SELECT * FROM {rules_of(workflows=pr)}
),
p AS (
    SELECT p.*, r.rules,
        p.tasks > 0 AND p.pending <= r.rules.trend_max_pending * p.tasks AS usable
    FROM pr p JOIN r ON r.workflow IS NOT DISTINCT FROM p.workflow
),
ranked AS (
    SELECT *,
        CASE WHEN usable THEN row_number() OVER (
            PARTITION BY workflow, usable ORDER BY period_start DESC) END AS back
    FROM p
),
sided AS (
    SELECT *,
        CASE WHEN back <= rules.trend_recent_periods THEN 'b'
             WHEN back <= rules.trend_recent_periods + rules.trend_baseline_periods THEN 'a'
        END AS side
    FROM ranked
),
sided_rows AS (
    SELECT *, side AS grp FROM sided WHERE side IS NOT NULL
),
pooled AS (
    SELECT workflow, grp AS side, * EXCLUDE (workflow, grp)
    FROM {cost_sums(summed=sided_rows)}
),
sides AS MATERIALIZED (
    SELECT * FROM {pooled_figures(pooled=pooled)}
),
d AS (
    SELECT * FROM {decomposition(sides=sides)}
),
w AS (
    SELECT workflow, any_value(rules) AS rules,
        count(*) FILTER (WHERE usable)::BIGINT AS usable_periods,
        list(period_start ORDER BY period_start) FILTER (WHERE NOT usable) AS left_out
    FROM p GROUP BY workflow
),
m AS (
    SELECT w.workflow, w.rules, w.usable_periods, coalesce(w.left_out, []) AS left_out,
        CASE WHEN a.side IS NOT NULL THEN a END AS baseline,
        CASE WHEN b.side IS NOT NULL THEN b END AS recent, d.* EXCLUDE (workflow),
        w.usable_periods < w.rules.trend_baseline_periods + w.rules.trend_recent_periods
            OR a.cost_per_completed_task_usd IS NULL OR b.cost_per_completed_task_usd IS NULL
            AS insufficient,
        b.cost_per_completed_task_usd::DOUBLE / nullif(a.cost_per_completed_task_usd, 0) - 1
            AS cost_change,
        (b.tasks::DOUBLE / b.periods) / nullif(a.tasks::DOUBLE / a.periods, 0) - 1
            AS volume_change,
        (b.spend_usd::DOUBLE / b.periods) / nullif(a.spend_usd::DOUBLE / a.periods, 0) - 1
            AS spend_change
    FROM w
    LEFT JOIN (SELECT * FROM sides WHERE side = 'a') a
      ON a.workflow IS NOT DISTINCT FROM w.workflow
    LEFT JOIN (SELECT * FROM sides WHERE side = 'b') b
      ON b.workflow IS NOT DISTINCT FROM w.workflow
    LEFT JOIN d ON d.workflow IS NOT DISTINCT FROM w.workflow
),
s AS (
    SELECT *,
        CASE
            WHEN insufficient THEN 'insufficient_data'
            WHEN cost_change > rules.trend_threshold
                 AND volume_change <= rules.trend_volume_threshold THEN 'rising'
            WHEN abs(cost_change) <= rules.trend_threshold
                 AND spend_change > rules.trend_volume_threshold THEN 'flat_with_growth'
            WHEN cost_change < -rules.trend_threshold
                 AND spend_change >= -rules.trend_volume_threshold THEN 'improving'
            ELSE 'stable'
        END AS state
    FROM m
)
SELECT workflow, state,
    CASE WHEN state = 'rising' THEN largest_increase END AS cause,
    CASE
        WHEN state = 'insufficient_data' AND usable_periods
                < rules.trend_baseline_periods + rules.trend_recent_periods
            THEN printf('%d usable period(s); the diagnosis needs %d (%d baseline, %d recent)',
                usable_periods, rules.trend_baseline_periods + rules.trend_recent_periods,
                rules.trend_baseline_periods, rules.trend_recent_periods)
        WHEN state = 'insufficient_data'
            THEN 'a side has no cost per completed task (nothing completed, or unpriced)'
        WHEN state = 'stable' AND cost_change > rules.trend_threshold
            THEN printf('cost per completed task rose %.1f%% with volume up %.1f%%: not'
                || ' the rising pattern (it needs stable or falling volume)',
                100 * cost_change, 100 * volume_change)
        WHEN state = 'stable' AND cost_change < -rules.trend_threshold
            THEN printf('cost per completed task fell %.1f%% with spend down %.1f%%',
                -100 * cost_change, -100 * spend_change)
    END AS note,
    cost_change, volume_change, spend_change,
    rules.trend_threshold AS trend_threshold,
    rules.trend_volume_threshold AS trend_volume_threshold,
    rules.trend_baseline_periods AS baseline_periods,
    rules.trend_recent_periods AS recent_periods,
    rules.trend_max_pending AS max_pending,
    usable_periods, left_out,
    baseline, recent,
    method, total_change_usd, part_price_per_token, part_tokens_per_attempt,
    part_attempts_per_completed_task, part_non_inference, part_rework, part_labor,
    part_infrastructure, part_licence, part_other, sum_of_parts_usd, largest_increase,
    explanation
FROM s
ORDER BY workflow NULLS LAST
