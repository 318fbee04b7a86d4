-- spans: every span in the lake once — a span received more than once counts once
-- (span_copies.sql says which copy) — with its times as instants (start_time, end_time; the
-- table keeps start_time_unix_nano and duration_ns), duration_ms, kind and status names, and
-- all_attributes: every attribute exactly as sent.
CREATE OR REPLACE VIEW spans AS
SELECT * EXCLUDE (filename) FROM {span_details(span_rows=unique_spans)};
