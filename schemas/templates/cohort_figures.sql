-- Template: rows of {rows} (cost_rows.sql rows: the counts, sums and per-unit figures of a set
-- of tasks; spend_usd the total, inference_usd its inference part or NULL unless fully
-- loaded) with the figures the analyses compare and the factors cost per completed task is
-- the product of:
--
--   failure_rate = tasks that ended failed (reopened included), escalated or abandoned, over
--     decided tasks (pending ones are not decided yet);
--   cost per completed task = inference per completed task + non-inference per completed task,
--   inference per completed task = price_per_token_usd x tokens_per_attempt
--     x attempts_per_completed_task, where price_per_token_usd = inference spend / tokens and
--     attempts_per_completed_task = attempts / completed;
--   non_inference_per_completed_task_usd and each component per completed task (rework,
--     labor, infrastructure, licence, other): NULL unless fully loaded.
-- Money per completed task is exact to 1e-12 USD (usd_per) and NULL when nothing completed or
-- the cost is unknown; the factors are DOUBLE, NULL when their denominator is 0.
SELECT *,
    (failed + escalated + abandoned) / nullif(tasks - pending, 0) AS failure_rate,
    coalesce(inference_usd, spend_usd)::DOUBLE / nullif(tokens, 0) AS price_per_token_usd,
    attempts / nullif(completed, 0) AS attempts_per_completed_task,
    CASE WHEN cost_per_completed_task_usd IS NOT NULL
         THEN usd_per(coalesce(inference_usd, spend_usd), completed) END
        AS inference_per_completed_task_usd,
    CASE WHEN cost_per_completed_task_usd IS NOT NULL AND inference_usd IS NOT NULL
         THEN usd_per(spend_usd - inference_usd, completed) END
        AS non_inference_per_completed_task_usd,
    CASE WHEN cost_per_completed_task_usd IS NOT NULL THEN usd_per(rework_usd, completed) END
        AS rework_per_completed_task_usd,
    CASE WHEN cost_per_completed_task_usd IS NOT NULL THEN usd_per(labor_usd, completed) END
        AS labor_per_completed_task_usd,
    CASE WHEN cost_per_completed_task_usd IS NOT NULL
         THEN usd_per(infrastructure_usd, completed) END
        AS infrastructure_per_completed_task_usd,
    CASE WHEN cost_per_completed_task_usd IS NOT NULL THEN usd_per(licence_usd, completed) END
        AS licence_per_completed_task_usd,
    CASE WHEN cost_per_completed_task_usd IS NOT NULL THEN usd_per(other_usd, completed) END
        AS other_per_completed_task_usd
FROM {rows}
