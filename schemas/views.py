"""The DuckDB views: the single definition of every metric.

Each definition is one ``schemas/<name>.sql`` file; ``VIEW_ORDER`` loads them dependencies
first. The SQL names locations as placeholders filled here — ``{<table>_files}`` for tables,
``{attempt_rollup_files}``/``{breakdown_rollup_files}`` for the span files' roll-up companions
and ``{..._fallback}`` for the roll-up of span files that have none — so the same files serve
the API, the CLI, the dashboard and any DuckDB client. Each ``{..._files}`` is the list a
query pinned (``schemas.snapshot.pin``: one generation of every partition, so compaction never
changes a pinned answer), else the lake's glob. Settings reach the SQL as one rendered
relation, ``workflow_rules`` (each workflow's acceptance rule, plus the default row with a NULL
workflow); without settings the defaults apply.

Several definitions are *templates* over named relations (``attempt_rows``: attempts from
roll-up rows; ``task_rows``: tasks and their decisions from attempts and signals;
``breakdown_rows``: span roles across files; ``allocation``: cost entries shared among tasks;
``cost_rows``: cost per task from tasks, breakdown and allocations): ``template()`` renders
them into the macros and views here, and the service's materialized store (``service.store``)
renders the very same text over its own tables, so the fast path cannot drift from the
definition.
"""

from __future__ import annotations

import os
from decimal import Decimal
from importlib import resources
from pathlib import Path

import schemas.costs
import schemas.signals  # noqa: F401  (registers the signals table)
from schemas.lake import COMPANIONS, SPANS, TABLES
from schemas.rollup import ATTEMPTS_DIR, BREAKDOWN_DIR, rollup_select
from schemas.settings import Settings, WorkflowRule
from schemas.snapshot import SqlConnection, listed_files, scan_files

#: Load order (a view may read only views before it). ``workflow_rules`` is rendered from the
#: settings, the others are ``schemas/<name>.sql``.
VIEW_ORDER: tuple[str, ...] = (
    "spans",
    "llm_calls",
    "macros",
    "money",
    "workflow_rules",
    "attempts",
    "attempts_in",
    "signals",
    "tasks",
    "breakdown",
    "costs",
    "allocations",
    "unmatched",
    "cost_per_task",
    "lookup",
)

#: Parameters of every cost-per-task macro (``cost_rows.sql``).
COST_PARAMS = (
    "by_workflow := false, by_team := false, by_version := false, by_day := false, "
    "by_week := false, by_month := false, by_role := false, by_model := false, "
    "by_provider := false, start_at := NULL, end_at := NULL, workflows := NULL, teams := NULL, "
    "full_cost := false"
)
#: The fully loaded components of a cost-per-task row (``full_cost := true``), in order.
COMPONENT_COLUMNS = (
    "inference_usd",
    "rework_usd",
    "labor_usd",
    "infrastructure_usd",
    "licence_usd",
    "other_usd",
)

#: The columns of ``tasks`` in order (the decision read at ``as_of()``).
TASK_COLUMNS = (
    "task_key, task_id, workflow, team, version, attempts, started_at, ended_at, duration_ms, "
    "outcome_at(final_outcome, waits, decided_at, clock.now) AS outcome, "
    "counted_as(outcome_at(final_outcome, waits, decided_at, clock.now)) AS counted_as, "
    "decided_at, signals, first_signal_at, last_signal_at, deciding_signal_id, reason, spans, "
    "model_calls, tool_calls, retrievals, errors, unpriced_spans, spend_usd, input_tokens, "
    "output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, total_tokens, "
    "rework_usd, rework_minutes, reopen_window, abandon_after, rework_counts_as_completed, "
    "final_outcome, waits"
)

#: Views and macros an engineer can query (what ``tasklake sql`` lists).
PUBLIC_VIEWS: tuple[str, ...] = (
    "spans",
    "llm_calls",
    "attempts",
    "tasks",
    "signals",
    "outcomes",
    "cost_per_task",
    "span_breakdown",
    "task_breakdown",
    "workflow_rules",
    "costs",
    "cost_allocations",
    "task_allocations",
    "unmatched_signals",
)


def view_sql(name: str) -> str:
    return resources.files("schemas").joinpath(f"{name}.sql").read_text(encoding="utf-8")


def template(name: str, **relations: str) -> str:
    """The template ``schemas/<name>.sql`` with each ``{relation}`` replaced (not in comments:
    they name the relations they document)."""
    lines = []
    for raw in view_sql(name).splitlines():
        line = raw
        if not line.lstrip().startswith("--"):
            for key, value in relations.items():
                line = line.replace("{" + key + "}", value)
        lines.append(line)
    return "\n".join(lines).strip()


def with_outcome(task_rows: str) -> str:
    """``task_rows`` (a relation of task_rows.sql columns) with its outcome at ``as_of()``."""
    return (
        f"(SELECT {TASK_COLUMNS} FROM {task_rows} AS tr_ "
        "CROSS JOIN (SELECT as_of() AS now) AS clock)"
    )


def allocation(tasks: str, costs: str, output: str) -> str:
    """``allocation.sql`` over ``tasks`` and ``costs``: ``output`` is ``task_allocations``
    (each task's share of every component) or ``entry_allocations`` (per entry)."""
    return template("allocation", tasks=tasks, costs=costs, output=output)


def unmatched_signals(signals: str, attempts: str, tasks: str) -> str:
    """``unmatched_signals.sql``: the signals of ``signals`` that count for no task."""
    return template("unmatched_signals", signals=signals, attempts=attempts, tasks=tasks)


def unallocated_macro(name: str, entry_allocations: str, unmatched: str) -> str:
    """The macro ``name(start_at, end_at, workflows, teams)`` over ``unallocated.sql``."""
    body = template("unallocated", entry_allocations=entry_allocations, unmatched_signals=unmatched)
    params = "start_at := NULL, end_at := NULL, workflows := NULL, teams := NULL"
    return f"CREATE OR REPLACE MACRO {name}({params}) AS TABLE\n{body};"


def cost_macro(name: str, tasks: str, breakdown: str, allocations: str) -> str:
    body = template("cost_rows", tasks=tasks, breakdown=breakdown, allocations=allocations)
    return f"CREATE OR REPLACE MACRO {name}({COST_PARAMS}) AS TABLE\n{body};"


_COMPOSED: dict[str, str] = {
    "attempts_in": (
        "-- attempts_in(traces): attempts of the given traces (NULL: all); attempts: all.\n"
        "CREATE OR REPLACE MACRO attempts_in(traces) AS TABLE\n"
        + "{attempt_rows_all}"
        + ";\n\nCREATE OR REPLACE VIEW attempts AS SELECT * FROM attempts_in(NULL);"
    ),
    "tasks": (
        "-- task_facts_in(traces, keys) / tasks_in(traces, keys): the tasks of those traces and\n"
        "-- task keys (NULL: all), with their decision / their outcome at as_of().\n"
        "CREATE OR REPLACE MACRO task_facts_in(traces, keys) AS TABLE\n"
        + "{task_rows_all}"
        + ";\n\nCREATE OR REPLACE MACRO tasks_in(traces, keys) AS TABLE\n"
        "SELECT * FROM {tasks_with_outcome};\n\n"
        "-- tasks: every task with its spend and outcome.\n"
        "CREATE OR REPLACE VIEW tasks AS SELECT * FROM tasks_in(NULL, NULL);\n\n"
        "-- outcomes: what became of each task, and why.\n"
        "CREATE OR REPLACE VIEW outcomes AS\n"
        "SELECT task_key, task_id, workflow, team, version, started_at, ended_at, outcome,\n"
        "    counted_as, decided_at, signals, first_signal_at, last_signal_at,\n"
        "    deciding_signal_id, reason, reopen_window, abandon_after,\n"
        "    rework_counts_as_completed\n"
        "FROM tasks;"
    ),
    "cost_per_task": (
        "{cost_macro}\n\n-- cost_per_task: by workflow (the API's default grouping).\n"
        "CREATE OR REPLACE VIEW cost_per_task AS\n"
        "SELECT * EXCLUDE (team, role, version, model, provider, day, week, month,\n"
        "    inference_usd, rework_usd, labor_usd, infrastructure_usd, licence_usd, other_usd)\n"
        "FROM cost_per_task_by(by_workflow := true);"
    ),
    "unmatched": (
        "-- unmatched_signals: the signals in force at as_of() that count for no task (a task\n"
        "-- or attempt not known, or another workflow named), with their reason.\n"
        "CREATE OR REPLACE VIEW unmatched_signals AS\n{unmatched_signals};\n\n"
        "-- unallocated_costs_in(start_at, end_at, workflows, teams): what cost=full puts in no\n"
        "-- row: entries without spend in their scope, rework of unmatched signals.\n"
        "{unallocated_macro}"
    ),
    "allocations": (
        "-- cost_allocations: every cost entry with the inference spend of its scope and whether\n"
        "-- it was allocated (allocation.sql); task_allocations: each task's share.\n"
        "CREATE OR REPLACE VIEW cost_allocations AS\n{entry_allocations};\n\n"
        "CREATE OR REPLACE VIEW task_allocations AS\n{task_allocations};"
    ),
}


def _composed(name: str) -> str:
    if name == "attempts_in":
        parts = (
            "(SELECT * FROM attempt_parts WHERE traces IS NULL"
            " OR trace_id IN (SELECT unnest(traces)))"
        )
        resolved = "(" + template("part_attempts", parts=parts) + ")"
        return _COMPOSED[name].replace(
            "{attempt_rows_all}", template("attempt_rows", resolved=resolved)
        )
    if name == "signals":
        raw = (
            "(SELECT * FROM read_parquet({signals_files}, union_by_name = true,"
            " hive_partitioning = false) AS s_ WHERE keys IS NULL OR s_.signal_id IN ("
            "SELECT signal_id FROM read_parquet({signals_files}, union_by_name = true,"
            " hive_partitioning = false) WHERE task_id IN (SELECT unnest(keys))"
            " OR correlation_id IN (SELECT unnest(keys))))"
        )
        return view_sql(name).replace("{signal_rows}", template("signal_rows", raw=raw))
    if name == "tasks":
        rows = template(
            "task_rows",
            attempts=(
                "(SELECT * FROM attempts_in(traces) WHERE keys IS NULL"
                " OR task_key IN (SELECT unnest(keys)))"
            ),
            signals="(SELECT * FROM signals_in(keys) WHERE occurred_at <= as_of())",
        )
        return (
            _COMPOSED[name]
            .replace("{task_rows_all}", rows)
            .replace("{tasks_with_outcome}", with_outcome("task_facts_in(traces, keys)"))
        )
    if name == "cost_per_task":
        return _COMPOSED[name].replace(
            "{cost_macro}",
            cost_macro("cost_per_task_by", "tasks", "task_breakdown", "task_allocations"),
        )
    if name == "allocations":
        tasks = "(SELECT * FROM task_facts_in(NULL, NULL))"
        return (
            _COMPOSED[name]
            .replace("{entry_allocations}", allocation(tasks, "costs", "entry_allocations"))
            .replace("{task_allocations}", allocation(tasks, "costs", "task_allocations"))
        )
    if name == "unmatched":
        signals = "(SELECT * FROM signals WHERE occurred_at <= as_of())"
        unmatched = unmatched_signals(
            signals, "attempts", "(SELECT * FROM task_facts_in(NULL, NULL))"
        )
        return (
            _COMPOSED[name]
            .replace("{unmatched_signals}", unmatched)
            .replace(
                "{unallocated_macro}",
                unallocated_macro("unallocated_costs_in", "cost_allocations", "unmatched_signals"),
            )
        )
    if name == "breakdown":
        rows = template(
            "breakdown_rows",
            parts="breakdown_parts",
            spans="spans",
        )
        sums = template("breakdown_sums", rows="span_breakdown")
        return view_sql(name).replace("{breakdown_rows}", rows).replace("{task_breakdown}", sums)
    raise KeyError(name)


def _literal(text: str | None) -> str:
    return "NULL" if text is None else "'" + text.replace("'", "''") + "'"


def _interval(seconds: float) -> str:
    return f"to_microseconds({round(seconds * 1_000_000)})"


def _number(value: Decimal | float | None, sql_type: str) -> str:
    return f"NULL::{sql_type}" if value is None else f"{value}::{sql_type}"


def workflow_rules_sql(settings: Settings | None = None) -> str:
    """The ``workflow_rules`` view: one row per configured workflow, and the default row."""
    workflows = dict(settings.workflows) if settings is not None else {}
    default = workflows.pop("*", WorkflowRule())
    rows: list[tuple[str | None, WorkflowRule]] = [
        (name, workflows[name]) for name in sorted(workflows)
    ]
    rows.append((None, default))
    values = ",\n    ".join(
        "("
        + ", ".join(
            (
                _literal(name) + ("::VARCHAR" if name is None else ""),
                _interval(rule.reopen_window.total_seconds()),
                _interval(rule.abandon_after.total_seconds()),
                "true" if rule.rework_counts_as_completed else "false",
                _number(rule.budget_per_completed_task, "DECIMAL(18, 6)"),
                _number(rule.target_success_rate, "DOUBLE"),
                _number(rule.human_minutes_per_task, "DOUBLE"),
            )
        )
        + ")"
        for name, rule in rows
    )
    return (
        "-- workflow_rules: each workflow's acceptance rule ([workflows.<name>] in the config);\n"
        "-- the row with a NULL workflow applies to every workflow without one.\n"
        "CREATE OR REPLACE VIEW workflow_rules AS\n"
        f"SELECT * FROM (VALUES\n    {values}\n) AS r(workflow, reopen_window, abandon_after,\n"
        "    rework_counts_as_completed, budget_per_completed_task, target_success_rate,\n"
        "    human_minutes_per_task);"
    )


def _fallback(lake: str | os.PathLike[str], subdir: str) -> str:
    """The roll-up ``subdir`` computed on the fly for span files without that companion."""
    missing = (
        f"span_files_missing({listed_files(lake, SPANS)}, {listed_files(lake, SPANS, subdir)})"
    )
    source = (
        f"(SELECT * FROM read_parquet({scan_files(lake, SPANS)}, filename = true,\n"
        "                             union_by_name = true, hive_partitioning = false)\n"
        f" WHERE filename IN (SELECT file FROM {missing}))"
    )
    return f"SELECT * FROM (\n{rollup_select(subdir, source)}\n)"


def render_views(lake: str | os.PathLike[str], settings: Settings | None = None) -> str:
    """All view definitions as one SQL script for ``lake``."""
    values = {
        "attempt_rollup_fallback": _fallback(lake, ATTEMPTS_DIR),
        "breakdown_rollup_fallback": _fallback(lake, BREAKDOWN_DIR),
        "attempt_rollup_files": scan_files(lake, SPANS, ATTEMPTS_DIR),
        "breakdown_rollup_files": scan_files(lake, SPANS, BREAKDOWN_DIR),
    }
    values.update({f"{t}_files": scan_files(lake, t) for t in TABLES})
    assert all((SPANS, subdir) in COMPANIONS for subdir in (ATTEMPTS_DIR, BREAKDOWN_DIR))
    parts = []
    for name in VIEW_ORDER:
        if name == "workflow_rules":
            parts.append(workflow_rules_sql(settings))
            continue
        composed = name in _COMPOSED or name in ("signals", "breakdown")
        sql = _composed(name) if composed else view_sql(name)
        for key, value in values.items():
            sql = sql.replace("{" + key + "}", value)
        parts.append(sql.strip())
    return "\n\n".join(parts) + "\n"


def load_views(
    con: SqlConnection, lake: str | os.PathLike[str], settings: Settings | None = None
) -> None:
    """Define every view on ``con``; the lake must exist (``schemas.lake.ensure_lake``)."""
    con.execute(render_views(Path(lake).resolve(), settings))


def write_views_file(lake: str | os.PathLike[str], settings: Settings | None = None) -> Path:
    """``<lake>/views.sql`` with lake-relative paths: ``cd lake && duckdb -init views.sql``."""
    target = Path(lake) / "views.sql"
    tmp = target.with_suffix(".sql.tmp")
    tmp.write_text(render_views(".", settings), encoding="utf-8")
    os.replace(tmp, target)
    return target
