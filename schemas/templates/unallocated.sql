-- Template: what cost=full could put in no row, inside a macro with the parameters start_at,
-- end_at, workflows, teams (the filters of cost_per_task_by): the cost entries of
-- {entry_allocations} that were not allocated (no inference spend in their scope) and whose
-- period overlaps [start_at, end_at), and the rework money of the signals of
-- {unmatched} (unknown task, or another workflow: signals_for_no_task.sql) dated in
-- [start_at, end_at). An entry or signal naming a workflow (team) is listed when the filter
-- keeps that workflow (team); one naming none, always. Nothing here is in any row, and
-- nothing is dropped: the answer's unallocated_usd is the sum of amount_usd.
SELECT * FROM (
SELECT 'entry' AS kind, entry_id, NULL::VARCHAR AS signal_id, NULL::VARCHAR AS task_id,
    NULL::VARCHAR AS correlation_id, component, amount_usd, period_start, period_end,
    NULL::TIMESTAMPTZ AS occurred_at, workflow, team, note,
    'no inference spend in its scope' AS reason
FROM {entry_allocations}
WHERE NOT allocated
  AND (start_at IS NULL OR period_end > start_at::TIMESTAMPTZ)
  AND (end_at IS NULL OR period_start < end_at::TIMESTAMPTZ)
  AND (workflow IS NULL OR workflows IS NULL OR list_contains(workflows, workflow))
  AND (team IS NULL OR teams IS NULL OR list_contains(teams, team))
UNION ALL
SELECT 'signal', NULL, signal_id, task_id, correlation_id, 'rework',
    rework_cost_usd::DECIMAL(38, 12), NULL, NULL, occurred_at, workflow, NULL, NULL, reason
FROM {unmatched}
WHERE rework_cost_usd > 0
  AND (start_at IS NULL OR occurred_at >= start_at::TIMESTAMPTZ)
  AND (end_at IS NULL OR occurred_at < end_at::TIMESTAMPTZ)
  AND (workflow IS NULL OR workflows IS NULL OR list_contains(workflows, workflow))
)
ORDER BY kind, coalesce(period_start, occurred_at), entry_id, signal_id
