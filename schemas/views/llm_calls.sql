-- llm_calls: the model calls that bill — the innermost ones (trace_spans.sql): a span that
-- wraps another model call is not listed (trace_spans shows it with billed = false). The
-- columns: llm_call_rows.sql.
CREATE OR REPLACE VIEW llm_calls AS
SELECT * FROM {llm_call_rows};
