-- Template: trace_spans.sql over the spans of the enclosing macro's `traces` and `days`.
SELECT * FROM {trace_spans(spans_table=spans_of_traces)}
