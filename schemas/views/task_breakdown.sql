-- task_breakdown: span_breakdown summed per task and (role, billable, provider, model): the
-- grain at which cost=full shares a task's other costs out (cost_rows.sql).
CREATE OR REPLACE VIEW task_breakdown AS
SELECT * FROM {breakdown_sums(rows=span_breakdown)};
