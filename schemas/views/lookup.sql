-- The drill-down behind every number, without aggregating the whole lake.

-- lookup_traces(id): every trace holding a span of an attempt that id names (as task id,
-- correlation id, resource correlation id or trace id): the traces mentioning id, then every
-- trace of the attempts found there. attempts_in() over these traces is exact for them.
CREATE OR REPLACE MACRO lookup_traces(lookup_id) AS (
    WITH first_traces AS (
        SELECT list(DISTINCT trace_id) AS traces FROM {spans_table}
        WHERE lookup_id IN (task_id, correlation_id, resource_correlation_id, trace_id)
    ),
    found AS (
        SELECT list(attempt_id) AS ids
        FROM attempts_in((SELECT traces FROM first_traces))
    )
    SELECT list_distinct(list_concat(
        (SELECT traces FROM first_traces),
        list(trace_id)))
    FROM {spans_table}
    WHERE list_contains((SELECT ids FROM found), correlation_id)
       OR list_contains((SELECT ids FROM found), resource_correlation_id)
       OR list_contains((SELECT ids FROM found), trace_id)
);

-- task_lookup(id): the attempts of the task id, or the attempt id.
CREATE OR REPLACE MACRO task_lookup(lookup_id) AS TABLE
SELECT * FROM attempts_in(lookup_traces(lookup_id))
WHERE task_key = lookup_id OR attempt_id = lookup_id;

-- span_tree(traces, days): the spans of some traces (and days; NULL: all) with their attempt,
-- resolved role, whether they bill, and cost (trace_spans.sql, over those traces only).
CREATE OR REPLACE MACRO span_tree(traces, days := NULL) AS TABLE
SELECT * EXCLUDE (filename, rk) FROM {span_details(span_rows=trace_spans_of_traces)}
ORDER BY start_time, span_id;
