-- Template: the rows of {spans_table} in the traces and days named by the enclosing macro's
-- `traces` and `days` parameters (NULL: all). Both filters reach the Parquet scan.
SELECT * FROM {spans_table}
WHERE (traces IS NULL OR list_contains(traces, trace_id))
  AND (days IS NULL OR list_contains(days, date))
