-- Template: how the cost entries of {costs} (rows of the costs view) are allocated to the tasks
-- of {tasks} (task_key, workflow, team, started_at, spend_usd: every task, whatever a query
-- filters), the one definition behind cost=full. Ends with SELECT * FROM {output}:
-- task_allocations (per task: its share of each component) or entry_allocations (per entry:
-- the inference spend in its scope, and whether it was allocated).
--
-- The rule:
--   * an entry's scope is the tasks that started in its period [period_start, period_end) and
--     belong to its workflow and its team; an entry naming neither covers every task started
--     in its period (a task without a workflow or team is only in such unnamed scopes);
--   * the entry is shared among the tasks of its scope in proportion to their inference spend:
--     a task's share is amount x (its spend / the spend of the scope);
--   * an entry whose scope has no inference spend (no task, or only unpriced ones) is not
--     allocated: entry_allocations reports it with allocated = false and the API lists it under
--     "unallocated". It is never spread elsewhere and never dropped silently.
--
-- The arithmetic is exact and independent of evaluation order, in integer units of 1e-12 USD
-- (HUGEINT). Scopes are found without pairing every entry with every task: the periods'
-- bounds cut time into intervals (one sorted pass puts each task in the interval of the latest
-- bound at or before its start), tasks are summed per (interval, workflow, team) cell, and an
-- entry's scope is the set of cells it covers. Each entry is split over its cells by their
-- spend, then each cell's amount over its tasks by theirs; each split rounds every share down
-- to a unit and gives the units left over to the largest part (ties: the greatest key, a
-- missing workflow or team above any name). So an allocated entry reaches its tasks to the
-- last 1e-12 USD: the allocations of all tasks add up exactly to the allocated entries'
-- amounts.
WITH e AS (
    SELECT entry_id, component, amount_usd, period_start, period_end, workflow, team, note,
        usd_units(amount_usd) AS amount_units
    FROM {costs}
),
bounds AS (
    SELECT DISTINCT b FROM (SELECT period_start AS b FROM e UNION ALL SELECT period_end FROM e)
),
spent AS (
    SELECT task_key, workflow, team, started_at,
        usd_units(spend_usd) AS units
    FROM {tasks}
    WHERE spend_usd > 0
),
placed AS MATERIALIZED (  -- each task with spend in the interval that starts at bound b:
                          -- tasks and bounds in time order (a bound before a task at its
                          -- instant), the latest bound so far is the task's
    SELECT task_key, workflow, team, units, b
    FROM (
        SELECT task_key, workflow, team, units, is_task,
            max(bound) OVER (ORDER BY moment NULLS FIRST, is_task ROWS UNBOUNDED PRECEDING) AS b
        FROM (
            SELECT task_key, workflow, team, units, started_at AS moment, true AS is_task,
                NULL::TIMESTAMPTZ AS bound
            FROM spent
            UNION ALL
            SELECT NULL, NULL, NULL, NULL, b, false, b FROM bounds
        )
    )
    WHERE is_task AND b IS NOT NULL
),
cells AS MATERIALIZED (
    SELECT b, workflow, team, sum(units) AS units,
        arg_max(task_key, (units, task_key)) AS top
    FROM placed GROUP BY ALL
),
scope AS MATERIALIZED (  -- the cells of each entry's scope
    SELECT e.entry_id, e.component, e.amount_units, c.b, c.workflow, c.team, c.units
    FROM e JOIN cells c
      ON c.b >= e.period_start AND c.b < e.period_end
     AND (e.workflow IS NULL OR c.workflow = e.workflow)
     AND (e.team IS NULL OR c.team = e.team)
),
scoped AS (
    SELECT entry_id, sum(units) AS units,
        arg_max({'b': b, 'workflow': workflow, 'team': team},
            (units, b, workflow IS NULL, workflow, team IS NULL, team)) AS top
    FROM scope GROUP BY entry_id
),
entry_cells AS MATERIALIZED (  -- each entry over its cells
    SELECT s.entry_id, s.component, s.amount_units, s.b, s.workflow, s.team,
        share_units(s.amount_units, s.units, t.units) AS units,
        {'b': s.b, 'workflow': s.workflow, 'team': s.team} IS NOT DISTINCT FROM t.top AS is_top
    FROM scope s JOIN scoped t USING (entry_id)
),
entry_left AS (
    SELECT entry_id, any_value(amount_units) - sum(units) AS left_units
    FROM entry_cells GROUP BY entry_id
),
cell_amounts AS MATERIALIZED (  -- what each cell receives, per component
    SELECT c.b, c.workflow, c.team,
        sum(c.units + CASE WHEN c.is_top THEN l.left_units ELSE 0 END)
            FILTER (WHERE c.component = 'rework') AS rework,
        sum(c.units + CASE WHEN c.is_top THEN l.left_units ELSE 0 END)
            FILTER (WHERE c.component = 'labor') AS labor,
        sum(c.units + CASE WHEN c.is_top THEN l.left_units ELSE 0 END)
            FILTER (WHERE c.component = 'infrastructure') AS infrastructure,
        sum(c.units + CASE WHEN c.is_top THEN l.left_units ELSE 0 END)
            FILTER (WHERE c.component = 'licence') AS licence,
        sum(c.units + CASE WHEN c.is_top THEN l.left_units ELSE 0 END)
            FILTER (WHERE c.component = 'other') AS other
    FROM entry_cells c JOIN entry_left l USING (entry_id)
    GROUP BY ALL
),
task_floors AS MATERIALIZED (  -- each cell over its tasks, rounded down
    SELECT p.task_key, p.b, p.workflow, p.team, p.task_key = c.top AS is_top,
        share_units(coalesce(a.rework, 0), p.units, c.units) AS rework,
        share_units(coalesce(a.labor, 0), p.units, c.units) AS labor,
        share_units(coalesce(a.infrastructure, 0), p.units, c.units) AS infrastructure,
        share_units(coalesce(a.licence, 0), p.units, c.units) AS licence,
        share_units(coalesce(a.other, 0), p.units, c.units) AS other
    FROM placed p
    JOIN cells c ON c.b = p.b AND c.workflow IS NOT DISTINCT FROM p.workflow
     AND c.team IS NOT DISTINCT FROM p.team
    JOIN cell_amounts a ON a.b = p.b AND a.workflow IS NOT DISTINCT FROM p.workflow
     AND a.team IS NOT DISTINCT FROM p.team
),
cell_left AS (  -- the units rounding left in each cell: they go to its top task
    SELECT f.b, f.workflow, f.team,
        coalesce(any_value(a.rework), 0) - sum(f.rework) AS rework,
        coalesce(any_value(a.labor), 0) - sum(f.labor) AS labor,
        coalesce(any_value(a.infrastructure), 0) - sum(f.infrastructure) AS infrastructure,
        coalesce(any_value(a.licence), 0) - sum(f.licence) AS licence,
        coalesce(any_value(a.other), 0) - sum(f.other) AS other
    FROM task_floors f
    JOIN cell_amounts a ON a.b = f.b AND a.workflow IS NOT DISTINCT FROM f.workflow
     AND a.team IS NOT DISTINCT FROM f.team
    GROUP BY f.b, f.workflow, f.team
),
task_allocations AS (
    SELECT f.task_key,
        ((f.rework + CASE WHEN f.is_top THEN l.rework ELSE 0 END)::DECIMAL(38, 0)
            * 0.000000000001::DECIMAL(38, 12))::DECIMAL(38, 12) AS rework_usd,
        ((f.labor + CASE WHEN f.is_top THEN l.labor ELSE 0 END)::DECIMAL(38, 0)
            * 0.000000000001::DECIMAL(38, 12))::DECIMAL(38, 12) AS labor_usd,
        ((f.infrastructure + CASE WHEN f.is_top THEN l.infrastructure ELSE 0 END)
            ::DECIMAL(38, 0) * 0.000000000001::DECIMAL(38, 12))::DECIMAL(38, 12)
            AS infrastructure_usd,
        ((f.licence + CASE WHEN f.is_top THEN l.licence ELSE 0 END)::DECIMAL(38, 0)
            * 0.000000000001::DECIMAL(38, 12))::DECIMAL(38, 12) AS licence_usd,
        ((f.other + CASE WHEN f.is_top THEN l.other ELSE 0 END)::DECIMAL(38, 0)
            * 0.000000000001::DECIMAL(38, 12))::DECIMAL(38, 12) AS other_usd
    FROM task_floors f
    JOIN cell_left l ON l.b = f.b AND l.workflow IS NOT DISTINCT FROM f.workflow
     AND l.team IS NOT DISTINCT FROM f.team
),
entry_allocations AS (
    SELECT e.entry_id, e.component, e.amount_usd, e.period_start, e.period_end, e.workflow,
        e.team, e.note,
        (coalesce(s.units, 0)::DECIMAL(38, 0) * 0.000000000001::DECIMAL(38, 12))
            ::DECIMAL(38, 12) AS scope_spend_usd,
        coalesce(s.units, 0) > 0 AS allocated
    FROM e LEFT JOIN scoped s USING (entry_id)
)
SELECT * FROM {output}
