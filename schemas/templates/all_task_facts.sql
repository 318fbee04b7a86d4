-- Template: every task's decision (task_rows.sql), whatever a query filters.
SELECT * FROM task_facts_in(NULL, NULL)
