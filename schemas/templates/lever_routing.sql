-- Template: the routing lever, from {lever_calls}: spend and calls of each workflow per role
-- and model, and what the calls would cost on a smaller model the workflow already runs
-- successfully in the same role. One row per (workflow, role, provider, model).
--
-- success_rate: completed over decided tasks among the tasks the model served in that role.
-- The candidate for a (role, model): another model of the same workflow and role that served
-- at least one completed task with a success rate at least as high, whose price list (the
-- model's prices in force on priced_on, tokens_cost) puts this model's tokens at less than
-- they cost: the cheapest such. saving_usd = spend - cost_on_candidate_usd (NULL without a
-- candidate); the lever's dollars at stake are their sum.
WITH m AS (
    SELECT workflow, role, provider, model,
        count(*)::BIGINT AS calls,
        sum(cost_usd)::DECIMAL(38, 12) AS spend_usd,
        count(*) FILTER (WHERE cost_usd IS NULL)::BIGINT AS unpriced_calls,
        try_cast(sum(input_tokens) AS BIGINT) AS input_tokens,
        try_cast(sum(cache_read_tokens) AS BIGINT) AS cache_read_tokens,
        try_cast(sum(cache_write_tokens) AS BIGINT) AS cache_write_tokens,
        try_cast(sum(output_tokens) AS BIGINT) AS output_tokens,
        try_cast(sum(reasoning_tokens) AS BIGINT) AS reasoning_tokens,
        count(DISTINCT task_key) AS tasks,
        count(DISTINCT task_key) FILTER (WHERE counted_as <> 'pending') AS decided_tasks,
        count(DISTINCT task_key) FILTER (WHERE counted_as = 'completed') AS completed_tasks,
        any_value(input_per_token) AS input_per_token,
        any_value(cache_read_per_token) AS cache_read_per_token,
        any_value(cache_write_per_token) AS cache_write_per_token,
        any_value(output_per_token) AS output_per_token,
        any_value(reasoning_per_token) AS reasoning_per_token
    FROM {lever_calls}
    WHERE kind = 'model'
    GROUP BY workflow, role, provider, model
),
r AS (
    SELECT *, completed_tasks / nullif(decided_tasks, 0) AS success_rate FROM m
),
candidates AS (
    SELECT x.workflow, x.role, x.provider, x.model, y.provider AS to_provider,
        y.model AS to_model, y.success_rate AS to_success_rate,
        tokens_cost(x.input_tokens, x.cache_read_tokens, x.cache_write_tokens,
            x.output_tokens, x.reasoning_tokens, y.input_per_token, y.cache_read_per_token,
            y.cache_write_per_token, y.output_per_token, y.reasoning_per_token)
            ::DECIMAL(38, 12) AS cost_on_candidate_usd,
        x.spend_usd
    FROM r x JOIN r y
      ON y.workflow IS NOT DISTINCT FROM x.workflow AND y.role IS NOT DISTINCT FROM x.role
     AND (y.provider IS DISTINCT FROM x.provider OR y.model IS DISTINCT FROM x.model)
    WHERE y.completed_tasks > 0 AND y.success_rate >= x.success_rate
      AND y.input_per_token IS NOT NULL AND y.model IS NOT NULL
),
best AS (
    SELECT workflow, role, provider, model,
        arg_min({'provider': to_provider, 'model': to_model, 'success_rate': to_success_rate,
                 'cost_usd': cost_on_candidate_usd},
                (cost_on_candidate_usd, to_provider, to_model)) AS pick
    FROM candidates
    WHERE cost_on_candidate_usd < spend_usd
    GROUP BY ALL
)
SELECT r.workflow, r.role, r.provider, r.model, r.calls, r.spend_usd, r.unpriced_calls,
    r.input_tokens, r.output_tokens, r.tasks, r.decided_tasks, r.completed_tasks,
    r.success_rate,
    b.pick.provider AS candidate_provider, b.pick.model AS candidate_model,
    b.pick.success_rate AS candidate_success_rate,
    b.pick.cost_usd AS cost_on_candidate_usd,
    r.spend_usd - b.pick.cost_usd AS saving_usd
FROM r
LEFT JOIN best b
  ON b.workflow IS NOT DISTINCT FROM r.workflow AND b.role IS NOT DISTINCT FROM r.role
 AND b.provider IS NOT DISTINCT FROM r.provider AND b.model IS NOT DISTINCT FROM r.model
ORDER BY r.workflow NULLS LAST, r.spend_usd DESC NULLS LAST, r.role, r.provider, r.model
