-- Template: every span of {spans_table} exactly once (the copies span_copies.sql does not
-- count are left out), with its times as instants. The rows keep their filename: which data
-- file holds the counted copy.
SELECT
    s.* EXCLUDE (file_row_number),
    unix_nano_time(s.start_time_unix_nano) AS start_time,
    unix_nano_time(s.start_time_unix_nano + s.duration_ns) AS end_time,
    s.duration_ns / 1e6 AS duration_ms,
    CASE s.kind WHEN 0 THEN 'UNSPECIFIED' WHEN 1 THEN 'INTERNAL' WHEN 2 THEN 'SERVER'
         WHEN 3 THEN 'CLIENT' WHEN 4 THEN 'PRODUCER' WHEN 5 THEN 'CONSUMER' END AS kind_name,
    CASE s.status_code WHEN 0 THEN 'UNSET' WHEN 1 THEN 'OK' WHEN 2 THEN 'ERROR' END AS status
FROM {spans_table} s
ANTI JOIN {span_copies} c
    ON c.filename = s.filename AND c.file_row_number = s.file_row_number
