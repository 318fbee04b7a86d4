-- Template: spend by role, provider and model of each attempt in each trace, from
-- {trace_spans}: one row per (trace_id, attempt_id, role, billable, provider, model). Roles
-- are resolved as trace_spans.sql says; only billed model calls are split by provider and
-- model, and only they carry spend and tokens.
SELECT
    trace_id,
    attempt_id,
    resolved_role AS role,
    billed AS billable,
    CASE WHEN billed THEN provider END AS provider,
    CASE WHEN billed THEN coalesce(response_model, request_model) END AS model,
    count(*)::BIGINT AS spans,
    count_if(billed)::BIGINT AS model_calls,
    count_if(billed AND cost_usd IS NULL)::BIGINT AS unpriced_spans,
    coalesce(sum(cost_usd) FILTER (WHERE billed), 0)::DECIMAL(38, 12) AS spend_usd,
    try_cast(sum(input_tokens) FILTER (WHERE billed) AS BIGINT) AS input_tokens,
    try_cast(sum(output_tokens) FILTER (WHERE billed) AS BIGINT) AS output_tokens,
    try_cast(sum(total_tokens) FILTER (WHERE billed) AS BIGINT) AS total_tokens
FROM {trace_spans}
GROUP BY trace_id, attempt_id, resolved_role, billed,
    CASE WHEN billed THEN provider END,
    CASE WHEN billed THEN coalesce(response_model, request_model) END
