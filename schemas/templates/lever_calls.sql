-- Template: the model calls and retrievals ({analysis_calls}: call_parts.sql rows) of the
-- attempts of {lever_scope}, each with its task's workflow and outcome and its model's prices
-- (model_prices: USD per token, in force on priced_on; NULL when nothing prices the
-- model). uncached_input_tokens: input - cache reads - cache writes. cache_pricing: the model
-- reads cache for less than input. For model calls, input_p50 is the median input tokens per
-- call of the workflow's calls, and excess_input_usd the call's input above it at the model's
-- input price (prompt size and retrieval levers).
WITH c AS (
    SELECT c.*, s.workflow, s.task_key, s.counted_as,
        c.input_tokens - coalesce(c.cache_read_tokens, 0) - coalesce(c.cache_write_tokens, 0)
            AS uncached_input_tokens,
        p.input_per_token, p.cache_read_per_token, p.cache_write_per_token,
        p.output_per_token, p.reasoning_per_token, p.price_ref,
        coalesce(p.cache_read_per_token < p.input_per_token, false) AS cache_pricing
    FROM {analysis_calls} c
    JOIN {lever_scope} s USING (attempt_id)
    LEFT JOIN model_prices p
      ON p.provider IS NOT DISTINCT FROM c.provider AND p.model IS NOT DISTINCT FROM c.model
),
p50 AS (
    SELECT workflow, quantile_cont(input_tokens, 0.5) AS input_p50
    FROM c WHERE kind = 'model' AND input_tokens IS NOT NULL
    GROUP BY workflow
)
SELECT c.*,
    CASE WHEN c.kind = 'model' THEN p50.input_p50 END AS input_p50,
    CASE WHEN c.kind = 'model' THEN
        (greatest(c.input_tokens - p50.input_p50, 0) * c.input_per_token)::DECIMAL(38, 12)
        END AS excess_input_usd
FROM c LEFT JOIN p50 ON p50.workflow IS NOT DISTINCT FROM c.workflow
