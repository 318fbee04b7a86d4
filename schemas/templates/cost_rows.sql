-- Template: cost per completed task for any grouping, from {tasks} (with counted_as),
-- {breakdown} (span_breakdown rows: task_key, role, billable, provider, model, spans,
-- spend_usd, total_tokens, unpriced_spans) and {allocations} (each task's share of the cost
-- entries, allocation.sql), inside a macro with the parameters of cost_per_task_by.
--
-- Cohorts by task start: a group's spend is that of ALL attempts (failed, retried, abandoned)
-- of the tasks that started in the period and belong to the group; its denominator is the
-- number of those tasks whose outcome is completed. Every task is counted exactly once:
-- tasks = completed + failed + escalated + abandoned + pending.
--
-- Task-level dimensions: workflow, team, version, day/week/month of the task's start (UTC;
-- weeks start on Monday; each period as the DATE it starts). Span-level dimensions: role,
-- model, provider. A span-level row carries the spend, tokens and unpriced spans of its own
-- spans, and the task counts of its task-level group as the denominator, so the rows of one
-- group add up exactly to the group's row. With model or provider, only billable spans (model
-- calls, or spans with a cost) are split out.
--
-- The per-unit figures (success_rate, cost_per_attempt_usd, cost_per_completed_task_usd,
-- tokens_per_attempt) are those of unit_figures.sql: NULL, never $0, when every model call of
-- a row is unpriced; a partly priced row keeps its figures and says how many spans were
-- unpriced. Each row also carries its tokens and model_calls (the sums the figures divide).
-- Filters: start_at <= task start < end_at; workflows, teams: lists of names.
--
-- Fully loaded cost (full_cost := true): a task's spend is its inference spend plus its rework
-- (the rework_cost_usd of its signals in force plus its share of rework entries) plus its
-- shares of labor, infrastructure, licence and other entries (allocation.sql: by share of
-- inference spend, computed over all tasks whatever the filters). spend_usd and the per-unit
-- figures include every component, each row adds inference_usd .. other_usd, and on every row
-- inference + rework + labor + infrastructure + licence + other = spend exactly. A span-level
-- row carries its own inference spend plus a share of each of its tasks' other components in
-- proportion to that spend, rounded down to 1e-12 USD per task; the units rounding leaves in
-- a group go to its row with the most spend, so span-level rows add up exactly to their
-- group's row. A task without inference spend has nothing to share by: its other components
-- go to a row with no role, model or provider. {breakdown} must hold one row per task and
-- (role, billable, provider, model), so that every path rounds the same shares.
WITH t AS (
    SELECT
        CASE WHEN by_workflow THEN workflow END AS workflow,
        CASE WHEN by_team THEN team END AS team,
        CASE WHEN by_version THEN version END AS version,
        CASE WHEN by_day THEN utc_day(started_at) END AS day,
        CASE WHEN by_week THEN date_trunc('week', utc_day(started_at))::DATE END AS week,
        CASE WHEN by_month THEN date_trunc('month', utc_day(started_at))::DATE END AS month,
        task_key, attempts, counted_as, spend_usd, total_tokens, model_calls, unpriced_spans,
        rework_usd AS signal_rework_usd
    FROM {tasks}
    WHERE (start_at IS NULL OR started_at >= start_at::TIMESTAMPTZ)
      AND (end_at IS NULL OR started_at < end_at::TIMESTAMPTZ)
      AND (workflows IS NULL OR list_contains(workflows, workflow))
      AND (teams IS NULL OR list_contains(teams, team))
),
alloc AS (  -- cost=full only: each task's share of the cost entries
    SELECT * FROM {allocations} WHERE full_cost
),
tt AS (  -- each task with its other components (NULL unless full_cost), also in units
    SELECT *,
        CASE WHEN full_cost THEN usd_units(spend_usd) END AS spend_u,
        CASE WHEN full_cost THEN usd_units(rework_usd) END AS rework_all,
        CASE WHEN full_cost THEN usd_units(labor_usd) END AS labor_all,
        CASE WHEN full_cost THEN usd_units(infrastructure_usd) END AS infrastructure_all,
        CASE WHEN full_cost THEN usd_units(licence_usd) END AS licence_all,
        CASE WHEN full_cost THEN usd_units(other_usd) END AS other_all
    FROM (
        SELECT t.* EXCLUDE (signal_rework_usd),
            CASE WHEN full_cost
                 THEN coalesce(t.signal_rework_usd, 0) + coalesce(a.rework_usd, 0) END
                ::DECIMAL(38, 12) AS rework_usd,
            CASE WHEN full_cost THEN coalesce(a.labor_usd, 0) END::DECIMAL(38, 12) AS labor_usd,
            CASE WHEN full_cost THEN coalesce(a.infrastructure_usd, 0) END::DECIMAL(38, 12)
                AS infrastructure_usd,
            CASE WHEN full_cost THEN coalesce(a.licence_usd, 0) END::DECIMAL(38, 12)
                AS licence_usd,
            CASE WHEN full_cost THEN coalesce(a.other_usd, 0) END::DECIMAL(38, 12) AS other_usd
        FROM t LEFT JOIN alloc a USING (task_key)
    )
),
base AS (
    SELECT workflow, team, version, day, week, month,
        sum(attempts)::BIGINT AS attempts,
        count(*)::BIGINT AS tasks,
        count_if(counted_as = 'completed')::BIGINT AS completed,
        count_if(counted_as = 'failed')::BIGINT AS failed,
        count_if(counted_as = 'escalated')::BIGINT AS escalated,
        count_if(counted_as = 'abandoned')::BIGINT AS abandoned,
        count_if(counted_as = 'pending')::BIGINT AS pending,
        sum(spend_usd)::DECIMAL(38, 12) AS spend_usd,
        try_cast(sum(total_tokens) AS BIGINT) AS tokens,
        sum(model_calls)::BIGINT AS model_calls,
        sum(unpriced_spans)::BIGINT AS unpriced_spans,
        sum(rework_usd)::DECIMAL(38, 12) AS rework_usd,
        sum(labor_usd)::DECIMAL(38, 12) AS labor_usd,
        sum(infrastructure_usd)::DECIMAL(38, 12) AS infrastructure_usd,
        sum(licence_usd)::DECIMAL(38, 12) AS licence_usd,
        sum(other_usd)::DECIMAL(38, 12) AS other_usd
    FROM tt
    GROUP BY workflow, team, version, day, week, month
),
split AS (  -- span-level rows straight from the breakdown (with cost=full: each row's share
            -- of its task's other components, in proportion to its spend, rounded down)
    SELECT t.workflow, t.team, t.version, t.day, t.week, t.month,
        CASE WHEN by_role THEN b.role END AS role,
        CASE WHEN by_model THEN b.model END AS model,
        CASE WHEN by_provider THEN b.provider END AS provider,
        coalesce(sum(b.spend_usd), 0)::DECIMAL(38, 12) AS spend_usd,
        try_cast(coalesce(sum(b.total_tokens), 0) AS BIGINT) AS tokens,
        coalesce(sum(b.model_calls), 0)::BIGINT AS model_calls,
        sum(b.unpriced_spans)::BIGINT AS unpriced_spans,
        sum(CASE WHEN full_cost AND t.spend_u > 0 AND t.rework_all > 0
                 THEN share_units(t.rework_all, usd_units(b.spend_usd), t.spend_u) END)
            AS rework_u,
        sum(CASE WHEN full_cost AND t.spend_u > 0 AND t.labor_all > 0
                 THEN share_units(t.labor_all, usd_units(b.spend_usd), t.spend_u) END)
            AS labor_u,
        sum(CASE WHEN full_cost AND t.spend_u > 0 AND t.infrastructure_all > 0
                 THEN share_units(t.infrastructure_all, usd_units(b.spend_usd), t.spend_u) END)
            AS infrastructure_u,
        sum(CASE WHEN full_cost AND t.spend_u > 0 AND t.licence_all > 0
                 THEN share_units(t.licence_all, usd_units(b.spend_usd), t.spend_u) END)
            AS licence_u,
        sum(CASE WHEN full_cost AND t.spend_u > 0 AND t.other_all > 0
                 THEN share_units(t.other_all, usd_units(b.spend_usd), t.spend_u) END)
            AS other_u
    FROM {breakdown} b JOIN tt t ON t.task_key = b.task_key
    WHERE (by_role OR by_model OR by_provider)
      AND (b.billable OR NOT (by_model OR by_provider))
    GROUP BY ALL
),
orphans AS (  -- cost=full: a task without inference spend has nothing to share its other
              -- components by: they go to a row with no role, model or provider
    SELECT workflow, team, version, day, week, month,
        NULL::VARCHAR AS role, NULL::VARCHAR AS model, NULL::VARCHAR AS provider,
        0::DECIMAL(38, 12) AS spend_usd, 0::BIGINT AS tokens, 0::BIGINT AS model_calls,
        0::BIGINT AS unpriced_spans,
        sum(rework_all) AS rework_u, sum(labor_all) AS labor_u,
        sum(infrastructure_all) AS infrastructure_u, sum(licence_all) AS licence_u,
        sum(other_all) AS other_u
    FROM tt
    WHERE full_cost AND (by_role OR by_model OR by_provider) AND spend_usd = 0
      AND rework_usd + labor_usd + infrastructure_usd + licence_usd + other_usd > 0
    GROUP BY ALL
),
rows_of AS (  -- span-level rows of each group; the largest takes what rounding left
    SELECT *,
        row_number() OVER (
            PARTITION BY workflow, team, version, day, week, month
            ORDER BY spend_usd DESC, role NULLS LAST, model NULLS LAST, provider NULLS LAST
        ) = 1 AS is_top,
        sum(rework_u) OVER g AS rework_g, sum(labor_u) OVER g AS labor_g,
        sum(infrastructure_u) OVER g AS infrastructure_g, sum(licence_u) OVER g AS licence_g,
        sum(other_u) OVER g AS other_g
    FROM (
        SELECT workflow, team, version, day, week, month, role, model, provider,
            sum(spend_usd)::DECIMAL(38, 12) AS spend_usd, try_cast(sum(tokens) AS BIGINT) AS tokens,
            sum(model_calls)::BIGINT AS model_calls,
            sum(unpriced_spans)::BIGINT AS unpriced_spans,
            coalesce(sum(rework_u), 0) AS rework_u, coalesce(sum(labor_u), 0) AS labor_u,
            coalesce(sum(infrastructure_u), 0) AS infrastructure_u,
            coalesce(sum(licence_u), 0) AS licence_u, coalesce(sum(other_u), 0) AS other_u
        FROM (SELECT * FROM split UNION ALL SELECT * FROM orphans)  -- the same columns
        GROUP BY ALL
    )
    WINDOW g AS (PARTITION BY workflow, team, version, day, week, month)
),
grouped AS (
    SELECT base.* EXCLUDE (spend_usd, tokens, model_calls, unpriced_spans, rework_usd,
            labor_usd, infrastructure_usd, licence_usd, other_usd),
        NULL::VARCHAR AS role, NULL::VARCHAR AS model, NULL::VARCHAR AS provider,
        spend_usd, tokens, model_calls, unpriced_spans, rework_usd, labor_usd,
        infrastructure_usd, licence_usd, other_usd
    FROM base
    WHERE NOT (by_role OR by_model OR by_provider)
    UNION ALL  -- the same columns, in the same order
    SELECT base.* EXCLUDE (spend_usd, tokens, model_calls, unpriced_spans, rework_usd,
            labor_usd, infrastructure_usd, licence_usd, other_usd),
        r.role, r.model, r.provider, r.spend_usd, r.tokens, r.model_calls, r.unpriced_spans,
        CASE WHEN full_cost THEN units_usd(r.rework_u + CASE WHEN r.is_top
            THEN usd_units(base.rework_usd) - r.rework_g ELSE 0 END)
        END AS rework_usd,
        CASE WHEN full_cost THEN units_usd(r.labor_u + CASE WHEN r.is_top
            THEN usd_units(base.labor_usd) - r.labor_g ELSE 0 END)
        END AS labor_usd,
        CASE WHEN full_cost THEN units_usd(r.infrastructure_u + CASE WHEN r.is_top
            THEN usd_units(base.infrastructure_usd) - r.infrastructure_g
            ELSE 0 END)
        END AS infrastructure_usd,
        CASE WHEN full_cost THEN units_usd(r.licence_u + CASE WHEN r.is_top
            THEN usd_units(base.licence_usd) - r.licence_g ELSE 0 END)
        END AS licence_usd,
        CASE WHEN full_cost THEN units_usd(r.other_u + CASE WHEN r.is_top
            THEN usd_units(base.other_usd) - r.other_g ELSE 0 END)
        END AS other_usd
    FROM rows_of r JOIN base
      ON base.workflow IS NOT DISTINCT FROM r.workflow
     AND base.team IS NOT DISTINCT FROM r.team
     AND base.version IS NOT DISTINCT FROM r.version
     AND base.day IS NOT DISTINCT FROM r.day
     AND base.week IS NOT DISTINCT FROM r.week
     AND base.month IS NOT DISTINCT FROM r.month
),
priced AS (
    SELECT grouped.*,
        CASE WHEN full_cost THEN spend_usd END AS inference_usd,
        CASE WHEN full_cost
             THEN spend_usd + rework_usd + labor_usd + infrastructure_usd + licence_usd
                  + other_usd
             ELSE spend_usd END::DECIMAL(38, 12) AS total_usd
    FROM grouped
)
SELECT workflow, team, role, version, model, provider, day, week, month,
    attempts, tasks, completed, failed, escalated, abandoned, pending,
    success_rate,
    total_usd AS spend_usd,
    cost_per_attempt_usd,
    cost_per_completed_task_usd,
    tokens_per_attempt,
    unpriced_spans,
    inference_usd, rework_usd, labor_usd, infrastructure_usd, licence_usd, other_usd,
    tokens, model_calls
FROM {unit_figures(rows=priced)}
ORDER BY workflow NULLS LAST, team NULLS LAST, role NULLS LAST, version NULLS LAST,
    model NULLS LAST, provider NULLS LAST, day NULLS LAST, week NULLS LAST, month NULLS LAST
