-- unmatched_signals: the signals in force at as_of() that count for no task (a task or attempt
-- not known, or another workflow named), with their reason (signals_for_no_task.sql).
CREATE OR REPLACE VIEW unmatched_signals AS
SELECT * FROM {signals_for_no_task(signals=signals_in_force_all, attempts=attempts, tasks=all_task_facts)};

-- unallocated_costs_in(start_at, end_at, workflows, teams): what cost=full puts in no row:
-- entries without spend in their scope, rework of unmatched signals (unallocated.sql).
CREATE OR REPLACE MACRO unallocated_costs_in({unallocated_params}) AS TABLE
{unallocated(entry_allocations=cost_allocations, unmatched=unmatched_signals)};
