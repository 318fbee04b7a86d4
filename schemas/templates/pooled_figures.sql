-- Template: rows of {pooled} holding sums over periods (or days) of cost_rows.sql rows, one
-- per workflow and side (every column of cost_rows that adds up: attempts, tasks, completed,
-- failed, escalated, abandoned, pending, spend_usd (the total), inference_usd and the
-- components (NULL unless fully loaded), tokens, model_calls, unpriced_spans), with the
-- per-unit figures of unit_figures.sql and the figures of cohort_figures.sql. Cohorts are by
-- task start, so the tasks of consecutive periods are one cohort: these are its figures.
WITH sums AS (
    SELECT * EXCLUDE (spend_usd), spend_usd AS total_usd,
        coalesce(inference_usd, spend_usd) AS spend_usd
    FROM {pooled}
),
units AS (
    SELECT * EXCLUDE (spend_usd, total_usd), total_usd AS spend_usd
    FROM {unit_figures(rows=sums)}
)
SELECT * FROM {cohort_figures(rows=units)}
