-- Template: the per-unit figures of rows of {rows} that hold sums over a set of tasks
-- (attempts, tasks, completed, pending, tokens, model_calls, unpriced_spans; spend_usd: the
-- inference spend; total_usd: what the money figures divide, the inference spend or the fully
-- loaded total), every column kept. The one definition of these figures: cost_rows.sql ends
-- with it, and the analyses apply it to cohorts pooled from its rows.
--
--   success_rate = completed / decided tasks (pending ones are not decided yet);
--   cost_per_attempt_usd = total / attempts, cost_per_completed_task_usd = total / completed
--     (exact to 1e-12 USD: usd_per), both NULL when the cost is unknown (all_unpriced: every
--     model call unpriced) and the latter when nothing completed;
--   tokens_per_attempt = tokens / attempts.
SELECT *,
    completed / nullif(tasks - pending, 0) AS success_rate,
    CASE WHEN NOT all_unpriced(model_calls, spend_usd, unpriced_spans)
         THEN usd_per(total_usd, attempts) END AS cost_per_attempt_usd,
    CASE WHEN NOT all_unpriced(model_calls, spend_usd, unpriced_spans)
         THEN usd_per(total_usd, completed) END AS cost_per_completed_task_usd,
    tokens / nullif(attempts, 0) AS tokens_per_attempt
FROM {rows}
