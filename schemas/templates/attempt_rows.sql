-- Template: attempts from {attempt_parts} (attempt_parts.sql rows; every part of each attempt
-- it touches). Workflow, team, version and task: the first value on any span of the attempt,
-- root spans first; the resource stand-ins only when no span of the attempt names one.
SELECT
    attempt_id,
    CASE min(correlation_level) WHEN 1 THEN 'span' WHEN 2 THEN 'trace'
         WHEN 3 THEN 'resource' ELSE 'trace_id' END AS correlation_source,
    arg_min(task_id, task_id_rank) FILTER (WHERE task_id IS NOT NULL) AS task_id,
    coalesce(arg_min(task_id, task_id_rank) FILTER (WHERE task_id IS NOT NULL), attempt_id)
        AS task_key,
    coalesce(
        arg_min(workflow, workflow_rank) FILTER (WHERE workflow IS NOT NULL),
        arg_min(resource_workflow, resource_workflow_rank)
            FILTER (WHERE resource_workflow IS NOT NULL)) AS workflow,
    coalesce(
        arg_min(team, team_rank) FILTER (WHERE team IS NOT NULL),
        arg_min(resource_team, resource_team_rank) FILTER (WHERE resource_team IS NOT NULL))
        AS team,
    coalesce(
        arg_min(version, version_rank) FILTER (WHERE version IS NOT NULL),
        arg_min(resource_version, resource_version_rank)
            FILTER (WHERE resource_version IS NOT NULL)) AS version,
    arg_min(trace_id, first_rank) AS trace_id,
    count(DISTINCT trace_id) AS traces,
    arg_min(first_span_id, first_rank) AS root_span_id,
    arg_min(first_span_name, first_rank) AS name,
    unix_nano_time(min(started_ns)) AS started_at,
    unix_nano_time(max(ended_ns)) AS ended_at,
    (max(ended_ns) - min(started_ns)) / 1e6 AS duration_ms,
    sum(spans)::BIGINT AS spans,
    sum(model_calls)::BIGINT AS model_calls,
    sum(wrapped_model_calls)::BIGINT AS wrapped_model_calls,
    sum(tool_calls)::BIGINT AS tool_calls,
    sum(retrievals)::BIGINT AS retrievals,
    sum(errors)::BIGINT AS errors,
    sum(unpriced_spans)::BIGINT AS unpriced_spans,
    coalesce(sum(spend_usd), 0)::DECIMAL(38, 12) AS spend_usd,
    try_cast(coalesce(sum(input_tokens), 0) AS BIGINT) AS input_tokens,
    try_cast(coalesce(sum(output_tokens), 0) AS BIGINT) AS output_tokens,
    try_cast(coalesce(sum(cache_read_tokens), 0) AS BIGINT) AS cache_read_tokens,
    try_cast(coalesce(sum(cache_write_tokens), 0) AS BIGINT) AS cache_write_tokens,
    try_cast(coalesce(sum(reasoning_tokens), 0) AS BIGINT) AS reasoning_tokens,
    try_cast(coalesce(sum(total_tokens), 0) AS BIGINT) AS total_tokens
FROM {attempt_parts}
GROUP BY attempt_id
