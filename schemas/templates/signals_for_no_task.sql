-- Template: the signals of {signals} that count for no task: those naming a task or attempt
-- that {tasks} (task_rows.sql rows: task_key, workflow) and {attempts} (attempt_id, task_key)
-- do not know (yet: a signal may arrive before its spans), and those naming another workflow
-- than their task's. It is the complement of the signals task_rows.sql joins to a task, by the
-- same rule: task_id names the task, else correlation_id names an attempt of it; a signal's
-- workflow, when it names one, must be its task's.
--
-- Such a signal is stored and stays visible here; its rework_cost_usd is in no row of
-- cost=full, which lists it as unallocated instead (unallocated.sql); the unmatched_signals
-- view lists them. Once the task's spans
-- arrive (or the workflow matches), it leaves this list and counts for its task.
SELECT s.signal_id, s.task_id, s.correlation_id, s.workflow, s.outcome, s.occurred_at,
    CASE WHEN tk.task_key IS NULL THEN 'unknown task' ELSE 'workflow mismatch' END AS reason,
    tk.workflow AS task_workflow,
    s.rework_cost_usd
FROM {signals} s
LEFT JOIN {attempts} a ON s.task_id IS NULL AND a.attempt_id = s.correlation_id
LEFT JOIN {tasks} tk ON tk.task_key = coalesce(s.task_id, a.task_key)
WHERE tk.task_key IS NULL OR (s.workflow IS NOT NULL AND s.workflow IS DISTINCT FROM tk.workflow)
