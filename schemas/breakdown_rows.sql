-- Template: the breakdown roll-up rows of {parts} (every row of each trace it touches) with
-- each row's role resolved, keyed like the roll-ups (trace_id, correlation_id,
-- resource_correlation_id). {spans} holds span rows (trace_id, span_id, parent_span_id, role)
-- of at least those traces.
--
-- A span's role: its own, else its nearest ancestor's, else derived from its operation
-- (derived_role). Roll-ups walk the ancestors inside their file; where the walk left the file
-- (a parent that arrived in another file) the row kept that parent's id in role_parent and
-- the span's derived role in role_fallback, and the walk up the ancestors finishes here, over
-- the spans of that trace only.
WITH RECURSIVE p AS MATERIALIZED (
    SELECT * FROM {parts}
),
pending AS (
    SELECT DISTINCT trace_id, role_parent FROM p WHERE role_parent IS NOT NULL
),
tree AS MATERIALIZED (
    SELECT trace_id, span_id, parent_span_id, role FROM {spans}
    WHERE trace_id IN (SELECT trace_id FROM pending)
),
up(trace_id, start_id, parent_span_id, role, depth) AS (
    SELECT pd.trace_id, pd.role_parent, t.parent_span_id, t.role, 0
    FROM pending pd JOIN tree t ON t.trace_id = pd.trace_id AND t.span_id = pd.role_parent
    UNION ALL
    SELECT u.trace_id, u.start_id, t.parent_span_id, t.role, u.depth + 1
    FROM up u JOIN tree t ON t.trace_id = u.trace_id AND t.span_id = u.parent_span_id
    WHERE u.role IS NULL AND u.depth < 1000
),
parent_role AS (
    SELECT trace_id, start_id AS role_parent, min(role) AS role FROM up GROUP BY ALL
)
SELECT p.trace_id, p.correlation_id, p.resource_correlation_id,
    CASE WHEN p.role_parent IS NULL THEN p.role
         ELSE coalesce(pr.role, p.role_fallback) END AS role,
    p.billable, p.provider, p.model, p.spans, p.model_calls, p.unpriced_spans,
    coalesce(p.spend_usd, 0)::DECIMAL(38, 12) AS spend_usd, p.input_tokens,
    p.output_tokens, p.total_tokens
FROM p
LEFT JOIN parent_role pr ON pr.trace_id = p.trace_id AND pr.role_parent = p.role_parent
