-- span_breakdown: spend, calls and tokens of each attempt (in each of its traces) by role,
-- provider and model, with the attempt's task; roles resolved as trace_spans.sql says.
CREATE OR REPLACE VIEW span_breakdown AS
SELECT a.task_key, b.*
FROM {breakdown_parts} b
JOIN attempts a USING (attempt_id);
