-- Template: the model calls that bill among {trace_spans} (trace_spans.sql rows) — the
-- innermost ones: a span that wraps another model call is not listed (it stays in
-- trace_spans with billed = false) — with the columns of the llm_calls view.
SELECT
    date, start_time, end_time, duration_ms, trace_id, span_id, parent_span_id, name,
    service_name, operation, provider, request_model, response_model,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
    total_tokens,
    input_tokens - coalesce(cache_read_tokens, 0) - coalesce(cache_write_tokens, 0)
        AS uncached_input_tokens,
    usage_basis, cost_usd, cost_source, price_ref, reported_cost_usd,
    correlation_id, attempt_id, task_id, workflow, workflow_version, team,
    resolved_role AS role, agent_name, conversation_id, user_id, status, error_type, environment
FROM {trace_spans}
WHERE billed
