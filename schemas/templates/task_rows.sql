-- Template: tasks (key: task.id, else the attempt) from {attempts} (every attempt of each task
-- it touches) and {signals} (the deduplicated signals that may name them, already limited to
-- those in force). Dimensions (workflow, team, version) are those of the first attempt that
-- names one; the cohort is the task's start, its first attempt's start.
--
-- The outcome is kept as a decision that does not depend on the clock: final_outcome, and
-- whether it waits until decided_at (pending before). outcome_at() reads it at a time:
--   * no signal (in force): abandoned once abandon_after has passed since the task's last
--     span, pending before. Abandoned is provisional: a signal arriving later, however late,
--     decides the task like any other;
--   * else the latest signal decides, except that a `reopened` later than the reopen window
--     of the acceptance before it changes nothing;
--   * an acceptance (`completed`, or `rework` when the workflow's rule counts it) is
--     `completed` once its reopen window has elapsed, pending inside it;
--   * `reopened`, `failed` and `rework` (when it does not count) are counted as failed.
-- Attempts are ordered by start, then root span id; signals by occurred_at, then signal_id
-- (at the same instant). Both orders are structs of non-NULL fields, which every engine
-- compares field by field alike (span ids are fixed-length lowercase hex: text order is their
-- number's).
WITH a AS MATERIALIZED (  -- used twice: by the tasks, and to map signals naming an attempt
    SELECT attempt_id, task_key, task_id, workflow, team, version, started_at, ended_at,
        {'started_at': started_at, 'root_span_id': coalesce(root_span_id, '')}
            AS attempt_order,
        spans, model_calls, tool_calls, retrievals, errors, unpriced_spans, spend_usd,
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
        total_tokens
    FROM {attempts}
),
t AS (
    SELECT
        task_key,
        any_value(task_id) AS task_id,
        arg_min(workflow, attempt_order) AS workflow,
        arg_min(team, attempt_order) AS team,
        arg_min(version, attempt_order) AS version,
        count(*)::BIGINT AS attempts,
        min(started_at) AS started_at,
        max(ended_at) AS ended_at,
        sum(spans)::BIGINT AS spans,
        sum(model_calls)::BIGINT AS model_calls,
        sum(tool_calls)::BIGINT AS tool_calls,
        sum(retrievals)::BIGINT AS retrievals,
        sum(errors)::BIGINT AS errors,
        sum(unpriced_spans)::BIGINT AS unpriced_spans,
        sum(spend_usd)::DECIMAL(38, 12) AS spend_usd,
        try_cast(sum(input_tokens) AS BIGINT) AS input_tokens,
        try_cast(sum(output_tokens) AS BIGINT) AS output_tokens,
        try_cast(sum(cache_read_tokens) AS BIGINT) AS cache_read_tokens,
        try_cast(sum(cache_write_tokens) AS BIGINT) AS cache_write_tokens,
        try_cast(sum(reasoning_tokens) AS BIGINT) AS reasoning_tokens,
        try_cast(sum(total_tokens) AS BIGINT) AS total_tokens
    FROM a
    GROUP BY task_key
),
tr AS MATERIALIZED (  -- each task with its workflow's rule
    SELECT t.*,
        CASE WHEN r.workflow IS NULL THEN d.reopen_window ELSE r.reopen_window END
            AS reopen_window,
        CASE WHEN r.workflow IS NULL THEN d.abandon_after ELSE r.abandon_after END
            AS abandon_after,
        CASE WHEN r.workflow IS NULL THEN d.rework_counts_as_completed
             ELSE r.rework_counts_as_completed END AS rework_counts_as_completed
    FROM t
    LEFT JOIN workflow_rules r ON r.workflow = t.workflow
    CROSS JOIN (SELECT * FROM workflow_rules WHERE workflow IS NULL) d
),
s AS MATERIALIZED (  -- the signals about these tasks, in order
    SELECT tr.task_key, sg.signal_id, sg.outcome, sg.occurred_at, sg.reason,
        sg.rework_cost_usd, sg.rework_minutes, tr.reopen_window,
        {'occurred_at': sg.occurred_at, 'signal_id': sg.signal_id} AS signal_order,
        sg.outcome = 'completed' OR (sg.outcome = 'rework' AND tr.rework_counts_as_completed)
            AS accepts
    FROM {signals} sg
    LEFT JOIN a ON a.attempt_id = CASE WHEN sg.task_id IS NULL THEN sg.correlation_id END
    JOIN tr ON tr.task_key = coalesce(sg.task_id, a.task_key)
    WHERE sg.workflow IS NULL OR sg.workflow IS NOT DISTINCT FROM tr.workflow
),
late_reopens AS (  -- reopens after the window of the acceptance before them: no effect
    SELECT r.task_key, r.signal_id
    FROM s r JOIN s c ON c.task_key = r.task_key AND c.accepts
                     AND c.signal_order < r.signal_order
    WHERE r.outcome = 'reopened'
    GROUP BY r.task_key, r.signal_id, r.occurred_at, r.reopen_window
    HAVING r.occurred_at > max(c.occurred_at) + r.reopen_window
),
d AS (
    SELECT s.task_key,
        count(*)::BIGINT AS signals,
        min(s.occurred_at) AS first_signal_at,
        max(s.occurred_at) AS last_signal_at,
        sum(s.rework_cost_usd)::DECIMAL(38, 12) AS rework_usd,
        sum(s.rework_minutes) AS rework_minutes,
        arg_max(s.outcome, s.signal_order) FILTER (WHERE lr.signal_id IS NULL) AS last_outcome,
        arg_max(s.accepts, s.signal_order) FILTER (WHERE lr.signal_id IS NULL) AS last_accepts,
        arg_max(s.occurred_at, s.signal_order) FILTER (WHERE lr.signal_id IS NULL) AS last_at,
        arg_max(s.signal_id, s.signal_order) FILTER (WHERE lr.signal_id IS NULL)
            AS deciding_signal_id,
        arg_max_null(s.reason, s.signal_order) FILTER (WHERE lr.signal_id IS NULL) AS reason
    FROM s LEFT JOIN late_reopens lr ON lr.task_key = s.task_key AND lr.signal_id = s.signal_id
    GROUP BY s.task_key
),
o AS (
    SELECT tr.*, d.signals, d.first_signal_at, d.last_signal_at, d.rework_usd,
        d.rework_minutes, d.deciding_signal_id, d.reason, d.last_accepts, d.last_at,
        d.last_outcome,
        d.first_signal_at IS NULL AS unsignalled
    FROM tr LEFT JOIN d ON d.task_key = tr.task_key
)
SELECT
    task_key, task_id, workflow, team, version, attempts, started_at, ended_at,
    date_diff('microsecond', started_at, ended_at) / 1000.0 AS duration_ms,
    CASE WHEN unsignalled THEN 'abandoned' WHEN last_accepts THEN 'completed'
         ELSE last_outcome END AS final_outcome,
    unsignalled OR last_accepts AS waits,
    CASE WHEN unsignalled THEN ended_at + abandon_after
         WHEN last_accepts THEN last_at + reopen_window
         ELSE last_at END AS decided_at,
    coalesce(signals, 0)::BIGINT AS signals,
    first_signal_at, last_signal_at, deciding_signal_id, reason,
    spans, model_calls, tool_calls, retrievals, errors, unpriced_spans, spend_usd,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
    total_tokens, rework_usd, rework_minutes,
    reopen_window, abandon_after, rework_counts_as_completed
FROM o
