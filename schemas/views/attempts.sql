-- attempts_in(traces, days): the attempts with spans in those traces (and days; NULL: all),
-- computed from those traces only: pass every trace of an attempt, as lookup_traces() does.
CREATE OR REPLACE MACRO attempts_in(traces, days := NULL) AS TABLE
{attempt_rows(spans_table=spans_of_traces)};

-- attempts: every attempt — all spans sharing a correlation id (trace_spans.sql) — with its
-- task, workflow, team, version, spend, tokens, calls and errors (attempt_rows.sql).
CREATE OR REPLACE VIEW attempts AS
SELECT * FROM {attempt_rows};
