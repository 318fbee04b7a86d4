-- Template: the copies of spans received more than once that are NOT counted, from
-- {spans_table} (span rows with their filename and file_row_number, holding every copy of each
-- span it touches). Answers (filename, file_row_number) of each such copy.
--
-- A span is (trace_id, span_id): an exporter that lost an answer sends the same spans again,
-- and a span must count once in every figure. Of its copies the first received counts: the
-- smallest ingested_at, then the file name, then the row in the file, so every engine and
-- compaction keep the same copy. (Copies received in the same millisecond are one request
-- sent twice: the same content. Were they to differ, which one counts could change when
-- compaction merges their files.) Only keys seen more than once are ranked.
WITH keyed AS (
    SELECT trace_id, span_id, ingested_at, filename, file_row_number FROM {spans_table}
),
repeated AS (
    SELECT trace_id, span_id FROM keyed GROUP BY trace_id, span_id HAVING count(*) > 1
)
SELECT filename, file_row_number
FROM (
    SELECT k.filename, k.file_row_number,
        row_number() OVER (PARTITION BY k.trace_id, k.span_id
                           ORDER BY k.ingested_at, k.filename, k.file_row_number) AS copy_no
    FROM keyed k
    JOIN repeated r ON r.trace_id = k.trace_id AND r.span_id = k.span_id
)
WHERE copy_no > 1
