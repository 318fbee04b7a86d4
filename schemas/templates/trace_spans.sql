-- Template: every span of {unique_spans} (rows holding whole traces) with what its trace says
-- about it. Only the span's own trace is looked at, so any set of whole traces gives each of
-- its spans the answer the whole lake gives.
--
--   attempt_id: the correlation id on the span; else the first one on any span of its trace
--     (root spans first, then the earliest, then by span id: span_rank); else the one on its
--     resource; else its trace id. correlation_level: 1 span, 2 trace, 3 resource, 4 trace id.
--   billed: a model call with no model call below it. Only the innermost model call bills:
--     a span wrapping the SDK's call, or a span carrying a model and its calls' token roll-up,
--     is not counted again (it stays visible, with billed = false). A model call under a tool
--     execution is the tool's own work, not a roll-up: the walk up stops at execute_tool.
--   resolved_role, role_source: the span's own role (workflow.role, the agent name); else its
--     nearest ancestor's ('ancestor'); else derived from its operation ('operation').
--   rk: the span's span_rank, for "first value" picks.
--
-- The walks recurse with UNION ALL (what every engine's recursive CTE runs), so they must end
-- by themselves: a span has one parent, so walking down from the spans with a role meets each
-- span at most once, and the walk up from a model call stops after as many steps as its trace
-- has spans (by then a malformed trace whose parents form a cycle has shown every ancestor).
WITH RECURSIVE tree AS MATERIALIZED (
    SELECT trace_id, span_id, parent_span_id, role, is_model_call, correlation_id,
        coalesce(lower(operation), '') = 'execute_tool' AS is_tool,
        span_rank(parent_span_id, start_time_unix_nano, span_id) AS rk
    FROM {unique_spans}
),
trace_sizes AS (
    SELECT trace_id, count(*) AS spans FROM tree GROUP BY trace_id
),
above_model(trace_id, span_id, steps, trace_size) AS (  -- spans with a model call below
                                                        -- them, no tool between
    SELECT m.trace_id, m.parent_span_id, 1, z.spans
    FROM tree m JOIN trace_sizes z ON z.trace_id = m.trace_id
    WHERE m.is_model_call AND m.parent_span_id IS NOT NULL
    UNION ALL
    SELECT t.trace_id, t.parent_span_id, a.steps + 1, a.trace_size
    FROM above_model a JOIN tree t ON t.trace_id = a.trace_id AND t.span_id = a.span_id
    WHERE t.parent_span_id IS NOT NULL AND NOT t.is_tool AND a.steps < a.trace_size
),
trace_correlation AS (
    SELECT trace_id, arg_min(correlation_id, rk) AS trace_correlation_id
    FROM tree WHERE correlation_id IS NOT NULL
    GROUP BY trace_id
),
walk(trace_id, span_id, role) AS (  -- roles handed down to the spans without one
    SELECT trace_id, span_id, role FROM tree WHERE role IS NOT NULL
    UNION ALL
    SELECT c.trace_id, c.span_id, w.role
    FROM walk w JOIN tree c ON c.trace_id = w.trace_id AND c.parent_span_id = w.span_id
    WHERE c.role IS NULL
),
inherited AS (  -- a malformed trace may hand a span two roles: the smallest wins
    SELECT trace_id, span_id, min(role) AS role FROM walk GROUP BY trace_id, span_id
),
wrappers AS (
    SELECT DISTINCT trace_id, span_id FROM above_model
)
SELECT s.*,
    span_rank(s.parent_span_id, s.start_time_unix_nano, s.span_id) AS rk,
    coalesce(s.correlation_id, tc.trace_correlation_id, s.resource_correlation_id, s.trace_id)
        AS attempt_id,
    CASE WHEN s.correlation_id IS NOT NULL THEN 1
         WHEN tc.trace_correlation_id IS NOT NULL THEN 2
         WHEN s.resource_correlation_id IS NOT NULL THEN 3
         ELSE 4 END AS correlation_level,
    coalesce(s.is_model_call, false) AND w.span_id IS NULL AS billed,
    coalesce(s.role, i.role, derived_role(s.operation, s.is_model_call)) AS resolved_role,
    CASE WHEN s.role IS NOT NULL THEN 'span'
         WHEN i.role IS NOT NULL THEN 'ancestor'
         ELSE 'operation' END AS role_source
FROM {unique_spans} s
LEFT JOIN trace_correlation tc ON tc.trace_id = s.trace_id
LEFT JOIN inherited i ON i.trace_id = s.trace_id AND i.span_id = s.span_id
LEFT JOIN wrappers w ON w.trace_id = s.trace_id AND w.span_id = s.span_id
