-- costs: non-inference cost entries (rework, labor, infrastructure, licence, other), one per
-- entry_id (the first received wins; equal receipt times: the smallest content), each over
-- the half-open period [period_start, period_end).
CREATE OR REPLACE VIEW costs AS
SELECT * EXCLUDE (schema_version)
FROM {stored_costs}
QUALIFY row_number() OVER (
    PARTITION BY entry_id
    ORDER BY received_at, component, amount_usd, period_start, period_end, workflow, team, note
) = 1;
