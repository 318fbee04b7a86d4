-- task_allocations: each task's share of every component of the cost entries (allocation.sql).
CREATE OR REPLACE VIEW task_allocations AS
SELECT * FROM {allocation(tasks=all_task_facts, costs=costs, output=task_allocations)};
