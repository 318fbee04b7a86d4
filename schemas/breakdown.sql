-- breakdown_parts: the breakdown roll-up of every span file (schemas/rollup_breakdown.sql).
CREATE OR REPLACE VIEW breakdown_parts AS
SELECT * FROM read_parquet({breakdown_rollup_files}, union_by_name = true,
                           hive_partitioning = false)
UNION ALL BY NAME
{breakdown_rollup_fallback};

-- span_breakdown: spend, calls and tokens of each attempt (and its task) by role, provider
-- and model; roles resolved as breakdown_rows.sql says.
CREATE OR REPLACE VIEW span_breakdown AS
SELECT a.task_key, b.* FROM (
    SELECT
        coalesce(r.correlation_id, tc.trace_correlation_id, r.resource_correlation_id,
                 r.trace_id) AS attempt_id,
        r.role, r.billable, r.provider, r.model, r.spans, r.model_calls, r.unpriced_spans,
        r.spend_usd, r.input_tokens, r.output_tokens, r.total_tokens
    FROM ({breakdown_rows}) r
    LEFT JOIN trace_correlations tc ON tc.trace_id = r.trace_id
) b JOIN attempts a USING (attempt_id);

-- task_breakdown: span_breakdown summed per task and (role, billable, provider, model).
CREATE OR REPLACE VIEW task_breakdown AS
{task_breakdown};
