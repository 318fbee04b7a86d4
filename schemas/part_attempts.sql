-- Template: each attempt roll-up row of {parts} with the attempt it belongs to. {parts} must
-- hold every roll-up row of each trace it touches (the whole lake, or whole traces):
-- correlation ids are resolved inside it.
--
-- Correlation id, first hit wins (DESIGN §2): on the span; on any span of its trace, root
-- spans first; on the resource; else the trace id.
WITH p AS NOT MATERIALIZED (
    SELECT * FROM {parts}
),
trace_correlation AS (
    SELECT trace_id, arg_min(correlation_id, first_rank) AS trace_correlation_id
    FROM p WHERE correlation_id IS NOT NULL
    GROUP BY trace_id
)
SELECT p.*,
    CASE WHEN p.correlation_id IS NOT NULL THEN 1
         WHEN tc.trace_correlation_id IS NOT NULL THEN 2
         WHEN p.resource_correlation_id IS NOT NULL THEN 3 ELSE 4 END AS level,
    coalesce(p.correlation_id, tc.trace_correlation_id, p.resource_correlation_id,
             p.trace_id) AS attempt_id
FROM p LEFT JOIN trace_correlation tc ON tc.trace_id = p.trace_id
