-- Breakdown roll-up of span files: spend by (attempt key, role, provider, model), one row per
-- (span file, trace, correlation id on the span, resource correlation id when none, role,
-- billable, provider, model). The attempt key columns are those of rollup_attempts.sql.
--
-- A span's role is its own (workflow.role / agent name), else its nearest ancestor's, else
-- derived from its operation (derived_role). Ancestors are walked inside the file; when the
-- walk leaves the file (a parent that arrived in another file) the row keeps that parent's id
-- in role_parent and the span's derived role in role_fallback, and the span_breakdown view
-- finishes the walk over the spans of that trace.
-- The input relation (placeholder rollup_input) is span rows with a `filename` column.
WITH RECURSIVE s AS (
    SELECT filename, trace_id, span_id, parent_span_id, role, operation, is_model_call,
        correlation_id, resource_correlation_id, cost_usd, input_tokens, output_tokens,
        total_tokens, provider, coalesce(response_model, request_model) AS model
    FROM {rollup_input}
),
seed AS (  -- spans that name a role, and role-less spans whose parent is not in the file
    SELECT s.filename, s.trace_id, s.span_id, s.role AS explicit_role,
        CASE WHEN s.role IS NULL THEN s.parent_span_id END AS role_parent
    FROM s
    WHERE s.role IS NOT NULL
       OR (s.parent_span_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM s p
            WHERE p.filename = s.filename AND p.trace_id = s.trace_id
              AND p.span_id = s.parent_span_id))
),
walk(filename, trace_id, span_id, explicit_role, role_parent) AS (
    SELECT * FROM seed
    UNION
    SELECT c.filename, c.trace_id, c.span_id, w.explicit_role, w.role_parent
    FROM walk w
    JOIN s c ON c.filename = w.filename AND c.trace_id = w.trace_id
            AND c.parent_span_id = w.span_id
    WHERE c.role IS NULL
),
inherited AS (  -- one answer per span even if a malformed trace repeats span ids
    SELECT filename, trace_id, span_id, min(explicit_role) AS explicit_role,
        min(role_parent) AS role_parent
    FROM walk GROUP BY ALL
),
r AS (
    SELECT s.*, i.role_parent,
        CASE WHEN i.role_parent IS NULL
             THEN coalesce(i.explicit_role, derived_role(s.operation, s.is_model_call)) END
            AS resolved_role,
        CASE WHEN i.role_parent IS NOT NULL
             THEN derived_role(s.operation, s.is_model_call) END AS role_fallback,
        coalesce(s.is_model_call, false) OR s.cost_usd IS NOT NULL AS billable
    FROM s LEFT JOIN inherited i USING (filename, trace_id, span_id)
)
SELECT
    filename,
    trace_id,
    correlation_id,
    CASE WHEN correlation_id IS NULL THEN resource_correlation_id END AS resource_correlation_id,
    resolved_role AS role,
    role_parent,
    role_fallback,
    billable,
    CASE WHEN billable THEN provider END AS provider,
    CASE WHEN billable THEN model END AS model,
    count(*)::BIGINT AS spans,
    count_if(is_model_call)::BIGINT AS model_calls,
    count_if(is_model_call AND cost_usd IS NULL)::BIGINT AS unpriced_spans,
    sum(cost_usd)::DECIMAL(38, 12) AS spend_usd,
    (sum(input_tokens) FILTER (WHERE is_model_call))::BIGINT AS input_tokens,
    (sum(output_tokens) FILTER (WHERE is_model_call))::BIGINT AS output_tokens,
    (sum(total_tokens) FILTER (WHERE is_model_call))::BIGINT AS total_tokens
FROM r
GROUP BY filename, trace_id, correlation_id,
    CASE WHEN correlation_id IS NULL THEN resource_correlation_id END,
    resolved_role, role_parent, role_fallback, billable,
    CASE WHEN billable THEN provider END, CASE WHEN billable THEN model END
