-- Template: the change of cost per completed task between side 'a' and side 'b' of {sides}
-- (cohort_figures.sql rows with a side column), split exactly into its factors: one row per
-- workflow.
--
-- Cost per completed task C = I + N: I, inference per completed task, is the product
-- P x T x A (price per token x tokens per attempt x attempts per completed task); N, the
-- non-inference part (fully loaded cost only), a sum of components per completed task.
-- The method is LMDI-I (the additive logarithmic mean Divisia index): with
-- L(x, y) = (x - y) / ln(x / y) (the logarithmic mean; L(x, x) = x), the part of factor X is
-- L(I_b, I_a) x ln(X_b / X_a). Because ln(I_b / I_a) is the sum of the factors' logarithms,
-- the parts add up to I_b - I_a exactly (in DOUBLE: to about 1e-15 of it); each component of
-- N adds its own change (exact decimals). So
--   total_change_usd = part_price_per_token + part_tokens_per_attempt
--                      + part_attempts_per_completed_task + part_non_inference
-- and part_non_inference = part_rework + part_labor + part_infrastructure + part_licence
-- + part_other. sum_of_parts_usd and residual_usd (total - sum, rounding only) show it.
--
-- A factor that is zero or undefined has no logarithm: then the parts are NULL and
-- explanation says why (a side without tasks, without completed tasks, with an unknown cost,
-- without inference spend, or without reported tokens); total_change_usd is still given when
-- both sides have a cost per completed task. largest_increase names the part that grew most
-- (model_mix: price per token, tokens_per_attempt, failures: attempts per completed task,
-- rework, labor, infrastructure, licence, other); NULL when none grew.
WITH s AS MATERIALIZED (
    SELECT * FROM {sides}
),
j AS (
    SELECT coalesce(a.workflow, b.workflow) AS workflow,
        a.tasks AS tasks_a, b.tasks AS tasks_b,
        a.completed AS completed_a, b.completed AS completed_b,
        a.cost_per_completed_task_usd AS c_a, b.cost_per_completed_task_usd AS c_b,
        a.inference_per_completed_task_usd AS i_a, b.inference_per_completed_task_usd AS i_b,
        a.price_per_token_usd AS p_a, b.price_per_token_usd AS p_b,
        a.tokens_per_attempt AS t_a, b.tokens_per_attempt AS t_b,
        a.attempts_per_completed_task AS x_a, b.attempts_per_completed_task AS x_b,
        a.inference_usd IS NOT NULL OR b.inference_usd IS NOT NULL AS fully_loaded,
        b.non_inference_per_completed_task_usd - a.non_inference_per_completed_task_usd
            AS part_non_inference,
        b.rework_per_completed_task_usd - a.rework_per_completed_task_usd AS part_rework,
        b.labor_per_completed_task_usd - a.labor_per_completed_task_usd AS part_labor,
        b.infrastructure_per_completed_task_usd - a.infrastructure_per_completed_task_usd
            AS part_infrastructure,
        b.licence_per_completed_task_usd - a.licence_per_completed_task_usd AS part_licence,
        b.other_per_completed_task_usd - a.other_per_completed_task_usd AS part_other
    FROM (SELECT * FROM s WHERE side = 'a') a
    FULL JOIN (SELECT * FROM s WHERE side = 'b') b
      ON a.workflow IS NOT DISTINCT FROM b.workflow
),
e AS (
    SELECT *,
        CASE
            WHEN coalesce(tasks_a, 0) = 0 THEN 'side a has no tasks'
            WHEN coalesce(tasks_b, 0) = 0 THEN 'side b has no tasks'
            WHEN completed_a = 0
                THEN 'side a has no completed tasks: its cost per completed task is undefined'
            WHEN completed_b = 0
                THEN 'side b has no completed tasks: its cost per completed task is undefined'
            WHEN c_a IS NULL THEN 'side a''s model calls are all unpriced: its cost is unknown'
            WHEN c_b IS NULL THEN 'side b''s model calls are all unpriced: its cost is unknown'
            WHEN i_a = 0 THEN 'side a has no inference spend: a zero factor has no logarithm,'
                || ' so the inference change cannot be split (LMDI needs positive factors)'
            WHEN i_b = 0 THEN 'side b has no inference spend: a zero factor has no logarithm,'
                || ' so the inference change cannot be split (LMDI needs positive factors)'
            WHEN p_a IS NULL OR t_a = 0
                THEN 'side a reports no tokens: its price per token is undefined'
            WHEN p_b IS NULL OR t_b = 0
                THEN 'side b reports no tokens: its price per token is undefined'
        END AS explanation,
        CASE WHEN i_a = i_b THEN i_a::DOUBLE
             WHEN i_a > 0 AND i_b > 0 THEN (i_b - i_a)::DOUBLE / ln(i_b::DOUBLE / i_a::DOUBLE)
        END AS log_mean
    FROM j
),
parts AS (
    SELECT *,
        CASE WHEN explanation IS NULL THEN log_mean * ln(p_b / p_a) END AS part_price_per_token,
        CASE WHEN explanation IS NULL THEN log_mean * ln(t_b / t_a) END
            AS part_tokens_per_attempt,
        CASE WHEN explanation IS NULL THEN log_mean * ln(x_b / x_a) END
            AS part_attempts_per_completed_task
    FROM e
)
SELECT workflow,
    'LMDI-I (additive logarithmic mean Divisia index)' AS method,
    fully_loaded,
    c_b - c_a AS total_change_usd,
    i_b - i_a AS inference_change_usd,
    part_price_per_token,
    part_tokens_per_attempt,
    part_attempts_per_completed_task,
    CASE WHEN fully_loaded AND explanation IS NULL THEN part_non_inference END AS part_non_inference,
    CASE WHEN fully_loaded AND explanation IS NULL THEN part_rework END AS part_rework,
    CASE WHEN fully_loaded AND explanation IS NULL THEN part_labor END AS part_labor,
    CASE WHEN fully_loaded AND explanation IS NULL THEN part_infrastructure END
        AS part_infrastructure,
    CASE WHEN fully_loaded AND explanation IS NULL THEN part_licence END AS part_licence,
    CASE WHEN fully_loaded AND explanation IS NULL THEN part_other END AS part_other,
    part_price_per_token + part_tokens_per_attempt + part_attempts_per_completed_task
        + CASE WHEN fully_loaded THEN part_non_inference::DOUBLE ELSE 0 END AS sum_of_parts_usd,
    (c_b - c_a)::DOUBLE - (part_price_per_token + part_tokens_per_attempt
        + part_attempts_per_completed_task
        + CASE WHEN fully_loaded THEN part_non_inference::DOUBLE ELSE 0 END) AS residual_usd,
    CASE WHEN explanation IS NULL THEN list_sort(list_filter([
        {'usd': part_price_per_token, 'cause': 'model_mix'},
        {'usd': part_tokens_per_attempt, 'cause': 'tokens_per_attempt'},
        {'usd': part_attempts_per_completed_task, 'cause': 'failures'},
        {'usd': part_rework::DOUBLE, 'cause': 'rework'},
        {'usd': part_labor::DOUBLE, 'cause': 'labor'},
        {'usd': part_infrastructure::DOUBLE, 'cause': 'infrastructure'},
        {'usd': part_licence::DOUBLE, 'cause': 'licence'},
        {'usd': part_other::DOUBLE, 'cause': 'other'}
    ], p -> p.usd > 0), 'DESC')[1].cause END AS largest_increase,
    explanation
FROM parts
