-- Template: breakdown rows of {rows} (task_key, role, billable, provider, model and their
-- counts and sums) summed to one row per task and (role, billable, provider, model): the
-- grain at which cost=full shares a task's other costs out (cost_rows.sql).
SELECT task_key, role, billable, provider, model,
    sum(spans)::BIGINT AS spans,
    sum(model_calls)::BIGINT AS model_calls,
    sum(unpriced_spans)::BIGINT AS unpriced_spans,
    sum(spend_usd)::DECIMAL(38, 12) AS spend_usd,
    try_cast(sum(input_tokens) AS BIGINT) AS input_tokens,
    try_cast(sum(output_tokens) AS BIGINT) AS output_tokens,
    try_cast(sum(total_tokens) AS BIGINT) AS total_tokens
FROM {rows} b
GROUP BY ALL
