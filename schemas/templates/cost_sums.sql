-- Template: the rows of {summed} (rows of cost_rows.sql, each with a group key grp and a
-- period_start) added up per workflow and grp: every column of cost_rows that adds up, as
-- pooled_figures.sql reads them, with how many rows (periods) were added and the first and
-- last period_start.
SELECT workflow, grp,
    count(*)::BIGINT AS periods, min(period_start) AS first_period,
    max(period_start) AS last_period,
    sum(attempts)::BIGINT AS attempts, sum(tasks)::BIGINT AS tasks,
    sum(completed)::BIGINT AS completed, sum(failed)::BIGINT AS failed,
    sum(escalated)::BIGINT AS escalated, sum(abandoned)::BIGINT AS abandoned,
    sum(pending)::BIGINT AS pending,
    sum(spend_usd)::DECIMAL(38, 12) AS spend_usd,
    sum(inference_usd)::DECIMAL(38, 12) AS inference_usd,
    sum(rework_usd)::DECIMAL(38, 12) AS rework_usd,
    sum(labor_usd)::DECIMAL(38, 12) AS labor_usd,
    sum(infrastructure_usd)::DECIMAL(38, 12) AS infrastructure_usd,
    sum(licence_usd)::DECIMAL(38, 12) AS licence_usd,
    sum(other_usd)::DECIMAL(38, 12) AS other_usd,
    try_cast(sum(tokens) AS BIGINT) AS tokens,
    sum(model_calls)::BIGINT AS model_calls,
    sum(unpriced_spans)::BIGINT AS unpriced_spans
FROM {summed}
GROUP BY workflow, grp
