-- The straightforward definitions over `spans`, straight from DESIGN §2, for the tests: no
-- templates, no struct ranks, one pass over every span, and the innermost-model-call rule
-- walked downwards (trace_spans.sql walks up). The views must answer the same.

-- A model call bills unless another model call sits below it with no tool execution between.
CREATE OR REPLACE TEMP VIEW ref_wrappers AS
WITH RECURSIVE down(trace_id, top_id, span_id) AS (
    SELECT c.trace_id, m.span_id, c.span_id
    FROM spans m JOIN spans c ON c.trace_id = m.trace_id AND c.parent_span_id = m.span_id
    WHERE m.is_model_call
    UNION
    SELECT c.trace_id, d.top_id, c.span_id
    FROM down d
    JOIN spans p ON p.trace_id = d.trace_id AND p.span_id = d.span_id
    JOIN spans c ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
    WHERE coalesce(p.operation, '') <> 'execute_tool' AND NOT p.is_model_call
)
SELECT DISTINCT d.trace_id, d.top_id AS span_id
FROM down d JOIN spans s ON s.trace_id = d.trace_id AND s.span_id = d.span_id
WHERE s.is_model_call;

CREATE OR REPLACE TEMP VIEW ref_spans AS
SELECT s.* EXCLUDE (is_model_call, cost_usd, total_tokens),
    s.is_model_call AS listed_model_call,
    s.is_model_call AND w.span_id IS NULL AS is_model_call,
    CASE WHEN w.span_id IS NULL THEN s.cost_usd END AS cost_usd,
    CASE WHEN w.span_id IS NULL THEN s.total_tokens END AS total_tokens
FROM spans s LEFT JOIN ref_wrappers w USING (trace_id, span_id);

CREATE OR REPLACE TEMP VIEW ref_span_attempts AS
WITH trace_correlation AS (
    SELECT trace_id, correlation_id AS trace_correlation_id
    FROM ref_spans WHERE correlation_id IS NOT NULL
    QUALIFY row_number() OVER (
        PARTITION BY trace_id ORDER BY parent_span_id IS NOT NULL, start_time, span_id) = 1
)
SELECT s.*,
    coalesce(s.correlation_id, tc.trace_correlation_id, s.resource_correlation_id, s.trace_id)
        AS attempt_id
FROM ref_spans s LEFT JOIN trace_correlation tc USING (trace_id);

CREATE OR REPLACE TEMP VIEW ref_attempts AS
SELECT
    attempt_id,
    first(task_id ORDER BY parent_span_id IS NOT NULL, start_time, span_id)
        FILTER (WHERE task_id IS NOT NULL) AS task_id,
    coalesce(
        first(workflow ORDER BY parent_span_id IS NOT NULL, start_time, span_id)
            FILTER (WHERE workflow IS NOT NULL),
        first(resource_workflow ORDER BY parent_span_id IS NOT NULL, start_time, span_id)
            FILTER (WHERE resource_workflow IS NOT NULL)) AS workflow,
    coalesce(
        first(team ORDER BY parent_span_id IS NOT NULL, start_time, span_id)
            FILTER (WHERE team IS NOT NULL),
        first(resource_team ORDER BY parent_span_id IS NOT NULL, start_time, span_id)
            FILTER (WHERE resource_team IS NOT NULL)) AS team,
    coalesce(
        first(workflow_version ORDER BY parent_span_id IS NOT NULL, start_time, span_id)
            FILTER (WHERE workflow_version IS NOT NULL),
        first(resource_version ORDER BY parent_span_id IS NOT NULL, start_time, span_id)
            FILTER (WHERE resource_version IS NOT NULL)) AS version,
    first(span_id ORDER BY parent_span_id IS NOT NULL, start_time, span_id) AS root_span_id,
    count(DISTINCT trace_id) AS traces,
    count(*) AS spans,
    count_if(is_model_call) AS model_calls,
    count_if(operation = 'execute_tool') AS tool_calls,
    count_if(operation = 'retrieval') AS retrievals,
    count_if(status_code = 2) AS errors,
    count_if(is_model_call AND cost_usd IS NULL) AS unpriced_spans,
    coalesce(sum(cost_usd), 0) AS spend_usd,
    coalesce(sum(total_tokens) FILTER (WHERE is_model_call), 0) AS total_tokens,
    min(start_time) AS started_at,
    max(end_time) AS ended_at
FROM ref_span_attempts
GROUP BY attempt_id;

CREATE OR REPLACE TEMP VIEW ref_tasks AS
SELECT
    coalesce(task_id, attempt_id) AS task_key,
    first(workflow ORDER BY started_at, root_span_id) FILTER (WHERE workflow IS NOT NULL)
        AS workflow,
    first(team ORDER BY started_at, root_span_id) FILTER (WHERE team IS NOT NULL) AS team,
    first(version ORDER BY started_at, root_span_id) FILTER (WHERE version IS NOT NULL)
        AS version,
    count(*) AS attempts,
    sum(spend_usd) AS spend_usd,
    min(started_at) AS started_at,
    max(ended_at) AS ended_at
FROM ref_attempts
GROUP BY ALL;

CREATE OR REPLACE TEMP VIEW ref_span_roles AS
WITH RECURSIVE walk(trace_id, span_id, role) AS (
    SELECT trace_id, span_id, role FROM ref_spans WHERE role IS NOT NULL
    UNION
    SELECT c.trace_id, c.span_id, w.role
    FROM walk w JOIN ref_spans c ON c.trace_id = w.trace_id AND c.parent_span_id = w.span_id
    WHERE c.role IS NULL
)
SELECT s.attempt_id, s.span_id,
    coalesce(w.role, derived_role(s.operation, s.listed_model_call)) AS role,
    s.is_model_call AS billable,
    s.provider, coalesce(s.response_model, s.request_model) AS model,
    s.cost_usd, s.is_model_call, s.total_tokens
FROM ref_span_attempts s LEFT JOIN walk w USING (trace_id, span_id);

CREATE OR REPLACE TEMP VIEW ref_breakdown AS
SELECT attempt_id, role, billable,
    CASE WHEN billable THEN provider END AS provider,
    CASE WHEN billable THEN model END AS model,
    count(*) AS spans,
    coalesce(sum(cost_usd), 0) AS spend_usd,
    count_if(is_model_call AND cost_usd IS NULL) AS unpriced_spans
FROM ref_span_roles
GROUP BY ALL;
