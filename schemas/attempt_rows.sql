-- Template: attempts from {resolved}: roll-up rows with their attempt_id and level
-- (part_attempts.sql), every row of each attempt it touches. Workflow, team, version and
-- task: the first value on any span of the attempt, root spans first; the resource
-- stand-ins only when no span of the attempt names one.
SELECT
    attempt_id,
    ['span', 'trace', 'resource', 'trace_id'][min(level)] AS correlation_source,
    arg_min(task_id, task_id_rank) AS task_id,
    coalesce(arg_min(task_id, task_id_rank), attempt_id) AS task_key,
    coalesce(arg_min(workflow, workflow_rank),
             arg_min(resource_workflow, resource_workflow_rank)) AS workflow,
    coalesce(arg_min(team, team_rank), arg_min(resource_team, resource_team_rank)) AS team,
    coalesce(arg_min(version, version_rank),
             arg_min(resource_version, resource_version_rank)) AS version,
    arg_min(trace_id, first_rank) AS trace_id,
    count(DISTINCT trace_id) AS traces,
    arg_min(first_span_id, first_rank) AS root_span_id,
    arg_min(first_span_name, first_rank) AS name,
    min(started_at) AS started_at,
    max(ended_at) AS ended_at,
    date_diff('microsecond', min(started_at), max(ended_at)) / 1000.0 AS duration_ms,
    sum(spans)::BIGINT AS spans,
    sum(model_calls)::BIGINT AS model_calls,
    sum(tool_calls)::BIGINT AS tool_calls,
    sum(retrievals)::BIGINT AS retrievals,
    sum(errors)::BIGINT AS errors,
    sum(unpriced_spans)::BIGINT AS unpriced_spans,
    coalesce(sum(spend_usd), 0)::DECIMAL(38, 12) AS spend_usd,
    coalesce(sum(input_tokens), 0)::BIGINT AS input_tokens,
    coalesce(sum(output_tokens), 0)::BIGINT AS output_tokens,
    coalesce(sum(cache_read_tokens), 0)::BIGINT AS cache_read_tokens,
    coalesce(sum(cache_write_tokens), 0)::BIGINT AS cache_write_tokens,
    coalesce(sum(reasoning_tokens), 0)::BIGINT AS reasoning_tokens,
    coalesce(sum(total_tokens), 0)::BIGINT AS total_tokens
FROM {resolved}
GROUP BY attempt_id
