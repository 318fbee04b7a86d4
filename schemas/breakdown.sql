-- breakdown_parts: the breakdown roll-up of every span file (schemas/rollup_breakdown.sql).
CREATE OR REPLACE VIEW breakdown_parts AS
SELECT * FROM read_parquet('{breakdown_rollup_glob}', union_by_name = true,
                           hive_partitioning = false)
UNION ALL BY NAME
{breakdown_rollup_fallback};

-- span_breakdown: spend, calls and tokens of each task by role, provider and model.
-- A span's role: its own, else its nearest ancestor's, else derived from its operation
-- (derived_role). Where a roll-up stopped at a parent that arrived in another file, the walk
-- up the ancestors finishes here, over the spans of that trace only.
CREATE OR REPLACE VIEW span_breakdown AS
WITH RECURSIVE p AS MATERIALIZED (
    SELECT * FROM breakdown_parts
),
pending AS (
    SELECT DISTINCT trace_id, role_parent FROM p WHERE role_parent IS NOT NULL
),
tree AS MATERIALIZED (
    SELECT trace_id, span_id, parent_span_id, role FROM spans
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
),
b AS (
    SELECT
        coalesce(p.correlation_id, tc.trace_correlation_id, p.resource_correlation_id,
                 p.trace_id) AS attempt_id,
        CASE WHEN p.role_parent IS NULL THEN p.role
             ELSE coalesce(pr.role, p.role_fallback) END AS role,
        p.billable, p.provider, p.model, p.spans, p.model_calls, p.unpriced_spans,
        coalesce(p.spend_usd, 0)::DECIMAL(38, 12) AS spend_usd, p.input_tokens,
        p.output_tokens, p.total_tokens
    FROM p
    LEFT JOIN trace_correlations tc ON tc.trace_id = p.trace_id
    LEFT JOIN parent_role pr ON pr.trace_id = p.trace_id AND pr.role_parent = p.role_parent
)
SELECT a.task_key, b.* FROM b JOIN attempts a USING (attempt_id);
