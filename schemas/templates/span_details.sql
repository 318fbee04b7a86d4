-- Template: the rows of {span_rows} (span rows with their typed columns) with
-- all_attributes: the span's attributes exactly as sent — the lossless rest plus what moved to
-- typed columns (source_keys says from which key) — and each event's time as an instant (the
-- table keeps it as time_unix_nano, like the span's own times).
SELECT
    s.* REPLACE (list_transform(s.events, lambda e: {
        'time': unix_nano_time(e.time_unix_nano),
        'name': e.name,
        'attributes': e.attributes,
        'attribute_types': e.attribute_types,
        'dropped_attributes_count': e.dropped_attributes_count
    }) AS events),
    map_concat(
        coalesce(s.attributes, MAP {}),
        -- list_distinct: one attribute may feed two columns (llm.model_name -> request and
        -- response model, gen_ai.agent.name -> role and agent_name) with the same value
        map_from_entries(list_distinct(list_filter([
            {'k': s.source_keys['operation'], 'v': s.operation},
            {'k': s.source_keys['provider'], 'v': s.provider},
            {'k': s.source_keys['request_model'], 'v': s.request_model},
            {'k': s.source_keys['response_model'], 'v': s.response_model},
            {'k': s.source_keys['input_tokens'], 'v': s.input_tokens::VARCHAR},
            {'k': s.source_keys['output_tokens'], 'v': s.output_tokens::VARCHAR},
            {'k': s.source_keys['cache_read_tokens'], 'v': s.cache_read_tokens::VARCHAR},
            {'k': s.source_keys['cache_write_tokens'], 'v': s.cache_write_tokens::VARCHAR},
            {'k': s.source_keys['reasoning_tokens'], 'v': s.reasoning_tokens::VARCHAR},
            {'k': s.source_keys['total_tokens'], 'v': s.total_tokens::VARCHAR},
            {'k': s.source_keys['reported_cost_usd'], 'v': s.reported_cost_usd::VARCHAR},
            {'k': s.source_keys['correlation_id'], 'v': s.correlation_id},
            {'k': s.source_keys['task_id'], 'v': s.task_id},
            {'k': s.source_keys['workflow'], 'v': s.workflow},
            {'k': s.source_keys['workflow_version'], 'v': s.workflow_version},
            {'k': s.source_keys['team'], 'v': s.team},
            {'k': s.source_keys['role'], 'v': s.role},
            {'k': s.source_keys['agent_name'], 'v': s.agent_name},
            {'k': s.source_keys['agent_id'], 'v': s.agent_id},
            {'k': s.source_keys['tool_name'], 'v': s.tool_name},
            {'k': s.source_keys['tool_call_id'], 'v': s.tool_call_id},
            {'k': s.source_keys['tool_type'], 'v': s.tool_type},
            {'k': s.source_keys['data_source_id'], 'v': s.data_source_id},
            {'k': s.source_keys['conversation_id'], 'v': s.conversation_id},
            {'k': s.source_keys['user_id'], 'v': s.user_id},
            {'k': s.source_keys['error_type'], 'v': s.error_type},
            {'k': s.source_keys['environment'], 'v': s.environment}
        ], lambda e: e.k IS NOT NULL AND e.v IS NOT NULL
                     AND NOT map_contains(coalesce(s.attributes, MAP {}), e.k))))
    ) AS all_attributes
FROM {span_rows} s
