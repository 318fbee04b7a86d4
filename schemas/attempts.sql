-- Span files whose companion roll-up has not been written (yet): their roll-up is computed on
-- the fly, so answers never depend on whether a companion exists. The filename filter reaches
-- the Parquet scan as a dynamic filter: files that have a companion are not read at all.
-- Both arguments are lists of files (schemas/snapshot.py: listed_files).
CREATE OR REPLACE MACRO span_files_missing(span_files, companion_files) AS TABLE
SELECT file FROM (SELECT unnest(span_files) AS file)
WHERE NOT starts_with(parse_filename(file), '_schema')  -- zero-row schema seeds
EXCEPT
SELECT parse_dirpath(parse_dirpath(file)) || '/' || parse_filename(file)
FROM (SELECT unnest(companion_files) AS file);

-- attempt_parts: the attempt roll-up of every span file (schemas/rollup_attempts.sql).
CREATE OR REPLACE VIEW attempt_parts AS
SELECT * FROM read_parquet({attempt_rollup_files}, union_by_name = true,
                           hive_partitioning = false)
UNION ALL BY NAME
{attempt_rollup_fallback};

-- trace_correlations: the correlation id a trace lends to its spans that carry none: the
-- first one on any span of the trace, root spans first.
CREATE OR REPLACE VIEW trace_correlations AS
SELECT trace_id, arg_min(correlation_id, first_rank) AS trace_correlation_id
FROM attempt_parts WHERE correlation_id IS NOT NULL
GROUP BY trace_id;
