-- Template: cost per completed task for any grouping, from {tasks} (with counted_as) and
-- {breakdown} (span_breakdown rows), inside a macro with the parameters of cost_per_task_by.
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
-- success_rate = completed / decided tasks (pending ones are not decided yet).
-- Filters: start_at <= task start < end_at; workflows, teams: lists of names.
WITH t AS (
    SELECT
        CASE WHEN by_workflow THEN workflow END AS workflow,
        CASE WHEN by_team THEN team END AS team,
        CASE WHEN by_version THEN version END AS version,
        CASE WHEN by_day THEN utc_day(started_at) END AS day,
        CASE WHEN by_week THEN date_trunc('week', utc_day(started_at))::DATE END AS week,
        CASE WHEN by_month THEN date_trunc('month', utc_day(started_at))::DATE END AS month,
        task_key, attempts, counted_as, spend_usd, total_tokens, unpriced_spans
    FROM {tasks}
    WHERE (start_at IS NULL OR started_at >= start_at::TIMESTAMPTZ)
      AND (end_at IS NULL OR started_at < end_at::TIMESTAMPTZ)
      AND (workflows IS NULL OR list_contains(workflows, workflow))
      AND (teams IS NULL OR list_contains(teams, team))
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
        sum(total_tokens)::BIGINT AS tokens,
        sum(unpriced_spans)::BIGINT AS unpriced_spans
    FROM t
    GROUP BY workflow, team, version, day, week, month
),
split AS (
    SELECT t.workflow, t.team, t.version, t.day, t.week, t.month,
        CASE WHEN by_role THEN b.role END AS role,
        CASE WHEN by_model THEN b.model END AS model,
        CASE WHEN by_provider THEN b.provider END AS provider,
        coalesce(sum(b.spend_usd), 0)::DECIMAL(38, 12) AS spend_usd,
        coalesce(sum(b.total_tokens), 0)::BIGINT AS tokens,
        sum(b.unpriced_spans)::BIGINT AS unpriced_spans
    FROM {breakdown} b JOIN t ON t.task_key = b.task_key
    WHERE (by_role OR by_model OR by_provider)
      AND (b.billable OR NOT (by_model OR by_provider))
    GROUP BY ALL
),
grouped AS (
    SELECT base.*, NULL::VARCHAR AS role, NULL::VARCHAR AS model, NULL::VARCHAR AS provider
    FROM base
    WHERE NOT (by_role OR by_model OR by_provider)
    UNION ALL BY NAME
    SELECT base.* EXCLUDE (spend_usd, tokens, unpriced_spans),
        split.role, split.model, split.provider,
        split.spend_usd, split.tokens, split.unpriced_spans
    FROM split JOIN base
      ON base.workflow IS NOT DISTINCT FROM split.workflow
     AND base.team IS NOT DISTINCT FROM split.team
     AND base.version IS NOT DISTINCT FROM split.version
     AND base.day IS NOT DISTINCT FROM split.day
     AND base.week IS NOT DISTINCT FROM split.week
     AND base.month IS NOT DISTINCT FROM split.month
)
SELECT workflow, team, role, version, model, provider, day, week, month,
    attempts, tasks, completed, failed, escalated, abandoned, pending,
    completed / nullif(tasks - pending, 0) AS success_rate,
    spend_usd,
    spend_usd / nullif(attempts, 0) AS cost_per_attempt_usd,
    spend_usd / nullif(completed, 0) AS cost_per_completed_task_usd,
    tokens / nullif(attempts, 0) AS tokens_per_attempt,
    unpriced_spans
FROM grouped
ORDER BY workflow NULLS LAST, team NULLS LAST, role NULLS LAST, version NULLS LAST,
    model NULLS LAST, provider NULLS LAST, day NULLS LAST, week NULLS LAST, month NULLS LAST
