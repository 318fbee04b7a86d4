-- outcomes: what became of each task, and why.
CREATE OR REPLACE VIEW outcomes AS
SELECT task_key, task_id, workflow, team, version, started_at, ended_at, outcome,
    counted_as, decided_at, signals, first_signal_at, last_signal_at,
    deciding_signal_id, reason, reopen_window, abandon_after,
    rework_counts_as_completed
FROM tasks;
