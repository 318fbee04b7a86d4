-- Template: the tasks of {task_facts} (task_rows.sql rows) with their outcome at as_of(): a
-- decision that waits (the reopen window, the abandon timeout) is pending until decided_at.
SELECT task_key, task_id, workflow, team, version, attempts, started_at, ended_at, duration_ms,
    outcome_at(final_outcome, waits, decided_at, clock.now) AS outcome,
    counted_as(outcome_at(final_outcome, waits, decided_at, clock.now)) AS counted_as,
    decided_at, signals, first_signal_at, last_signal_at, deciding_signal_id, reason, spans,
    model_calls, tool_calls, retrievals, errors, unpriced_spans, spend_usd, input_tokens,
    output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, total_tokens,
    rework_usd, rework_minutes, reopen_window, abandon_after, rework_counts_as_completed,
    final_outcome, waits
FROM {task_facts} AS tr_
CROSS JOIN (SELECT as_of() AS now) AS clock
