-- Template: the part of each attempt that each trace holds, from {trace_spans}: one row per
-- (trace_id, attempt_id). Every column merges across the traces of an attempt
-- (attempt_rows.sql): counts and sums add, min/max combine, and each "first value" is kept
-- with the rank of the span it came from, so the pick over all traces is the pick over all
-- spans. Spend, tokens and model calls count billed spans only (trace_spans.sql).
SELECT
    trace_id,
    attempt_id,
    min(correlation_level) AS correlation_level,
    count(*)::BIGINT AS spans,
    count_if(billed)::BIGINT AS model_calls,
    count_if(is_model_call AND NOT billed)::BIGINT AS wrapped_model_calls,
    count_if(operation = 'execute_tool')::BIGINT AS tool_calls,
    count_if(operation = 'retrieval')::BIGINT AS retrievals,
    count_if(status_code = 2)::BIGINT AS errors,
    count_if(billed AND cost_usd IS NULL)::BIGINT AS unpriced_spans,
    sum(cost_usd) FILTER (WHERE billed) AS spend_usd,
    try_cast(sum(input_tokens) FILTER (WHERE billed) AS BIGINT) AS input_tokens,
    try_cast(sum(output_tokens) FILTER (WHERE billed) AS BIGINT) AS output_tokens,
    try_cast(sum(cache_read_tokens) FILTER (WHERE billed) AS BIGINT) AS cache_read_tokens,
    try_cast(sum(cache_write_tokens) FILTER (WHERE billed) AS BIGINT) AS cache_write_tokens,
    try_cast(sum(reasoning_tokens) FILTER (WHERE billed) AS BIGINT) AS reasoning_tokens,
    try_cast(sum(total_tokens) FILTER (WHERE billed) AS BIGINT) AS total_tokens,
    min(start_time_unix_nano) AS started_ns,
    max(start_time_unix_nano + duration_ns) AS ended_ns,
    min(rk) AS first_rank,
    arg_min(span_id, rk) AS first_span_id,
    arg_min(name, rk) AS first_span_name,
    arg_min(task_id, rk) FILTER (WHERE task_id IS NOT NULL) AS task_id,
    min(rk) FILTER (WHERE task_id IS NOT NULL) AS task_id_rank,
    arg_min(workflow, rk) FILTER (WHERE workflow IS NOT NULL) AS workflow,
    min(rk) FILTER (WHERE workflow IS NOT NULL) AS workflow_rank,
    arg_min(team, rk) FILTER (WHERE team IS NOT NULL) AS team,
    min(rk) FILTER (WHERE team IS NOT NULL) AS team_rank,
    arg_min(workflow_version, rk) FILTER (WHERE workflow_version IS NOT NULL) AS version,
    min(rk) FILTER (WHERE workflow_version IS NOT NULL) AS version_rank,
    arg_min(resource_workflow, rk) FILTER (WHERE resource_workflow IS NOT NULL)
        AS resource_workflow,
    min(rk) FILTER (WHERE resource_workflow IS NOT NULL) AS resource_workflow_rank,
    arg_min(resource_team, rk) FILTER (WHERE resource_team IS NOT NULL) AS resource_team,
    min(rk) FILTER (WHERE resource_team IS NOT NULL) AS resource_team_rank,
    arg_min(resource_version, rk) FILTER (WHERE resource_version IS NOT NULL)
        AS resource_version,
    min(rk) FILTER (WHERE resource_version IS NOT NULL) AS resource_version_rank
FROM {trace_spans}
GROUP BY trace_id, attempt_id
