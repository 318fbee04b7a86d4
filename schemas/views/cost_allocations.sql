-- cost_allocations: every cost entry with the inference spend of its scope and whether it was
-- allocated (allocation.sql).
CREATE OR REPLACE VIEW cost_allocations AS
SELECT * FROM {allocation(tasks=all_task_facts, costs=costs, output=entry_allocations)};
