-- costs: non-inference cost entries (rework, labor, infrastructure, licence, other), one per
-- entry_id (the first received wins), each over the half-open period [period_start, period_end).
CREATE OR REPLACE VIEW costs AS
SELECT * EXCLUDE (schema_version)
FROM read_parquet({costs_files}, union_by_name = true, hive_partitioning = false)
QUALIFY row_number() OVER (
    PARTITION BY entry_id
    ORDER BY received_at, hash(component, amount_usd, period_start, period_end, workflow, team,
                               note)
) = 1;
