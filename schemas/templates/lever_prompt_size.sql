-- Template: the prompt size lever, from {lever_calls} (model calls): input tokens per call of
-- each workflow by role (p50, p95: quantile_cont), the workflow's p50 over all its calls, and
-- the cost of the input above it (each call's input beyond the workflow's p50 at its model's
-- input price: excess_input_usd, lever_calls.sql). One row per (workflow, role); the lever's
-- dollars at stake are the sum over the workflow's roles.
SELECT workflow, role,
    count(*)::BIGINT AS calls,
    quantile_cont(input_tokens, 0.5) AS input_tokens_p50,
    quantile_cont(input_tokens, 0.95) AS input_tokens_p95,
    avg(input_tokens) AS input_tokens_mean,
    any_value(input_p50) AS workflow_input_p50,
    coalesce(sum(excess_input_usd), 0)::DECIMAL(38, 12) AS excess_input_usd,
    count(*) FILTER (WHERE input_per_token IS NULL)::BIGINT AS calls_without_prices
FROM {lever_calls}
WHERE kind = 'model'
GROUP BY workflow, role
ORDER BY workflow NULLS LAST, excess_input_usd DESC, role
