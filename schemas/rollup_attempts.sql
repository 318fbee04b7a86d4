-- Attempt roll-up of span files: one row per (span file, trace, correlation id on the span,
-- resource correlation id when the span has none). Every column merges across files: counts
-- and sums add, min/max combine, and each "first value, root spans first" is kept with the
-- rank of the span it came from (span_rank), so arg_min over the ranks picks the same value a
-- query over all spans would. Written next to each span file by schemas.rollup.build_rollup
-- and computed on the fly by the attempt_parts view for span files that have none.
-- The input relation (placeholder rollup_input) is span rows with a `filename` column.
SELECT
    filename,
    trace_id,
    correlation_id,
    CASE WHEN correlation_id IS NULL THEN resource_correlation_id END AS resource_correlation_id,
    count(*)::BIGINT AS spans,
    count_if(is_model_call)::BIGINT AS model_calls,
    count_if(operation = 'execute_tool')::BIGINT AS tool_calls,
    count_if(operation = 'retrieval')::BIGINT AS retrievals,
    count_if(status_code = 2)::BIGINT AS errors,
    count_if(is_model_call AND cost_usd IS NULL)::BIGINT AS unpriced_spans,
    sum(cost_usd)::DECIMAL(38, 12) AS spend_usd,
    (sum(input_tokens) FILTER (WHERE is_model_call))::BIGINT AS input_tokens,
    (sum(output_tokens) FILTER (WHERE is_model_call))::BIGINT AS output_tokens,
    (sum(cache_read_tokens) FILTER (WHERE is_model_call))::BIGINT AS cache_read_tokens,
    (sum(cache_write_tokens) FILTER (WHERE is_model_call))::BIGINT AS cache_write_tokens,
    (sum(reasoning_tokens) FILTER (WHERE is_model_call))::BIGINT AS reasoning_tokens,
    (sum(total_tokens) FILTER (WHERE is_model_call))::BIGINT AS total_tokens,
    min(start_time) AS started_at,
    max(start_time + to_microseconds(duration_ns // 1000)) AS ended_at,
    min(rk) AS first_rank,
    arg_min(span_id, rk) AS first_span_id,
    arg_min(name, rk) AS first_span_name,
    arg_min(task_id, rk) AS task_id,
    min(rk) FILTER (WHERE task_id IS NOT NULL) AS task_id_rank,
    arg_min(workflow, rk) AS workflow,
    min(rk) FILTER (WHERE workflow IS NOT NULL) AS workflow_rank,
    arg_min(team, rk) AS team,
    min(rk) FILTER (WHERE team IS NOT NULL) AS team_rank,
    arg_min(workflow_version, rk) AS version,
    min(rk) FILTER (WHERE workflow_version IS NOT NULL) AS version_rank,
    arg_min(resource_workflow, rk) AS resource_workflow,
    min(rk) FILTER (WHERE resource_workflow IS NOT NULL) AS resource_workflow_rank,
    arg_min(resource_team, rk) AS resource_team,
    min(rk) FILTER (WHERE resource_team IS NOT NULL) AS resource_team_rank,
    arg_min(resource_version, rk) AS resource_version,
    min(rk) FILTER (WHERE resource_version IS NOT NULL) AS resource_version_rank
FROM (
    SELECT *, span_rank(parent_span_id, start_time, span_id) AS rk FROM {rollup_input}
)
GROUP BY filename, trace_id, correlation_id,
    CASE WHEN correlation_id IS NULL THEN resource_correlation_id END
