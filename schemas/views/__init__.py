"""The views: the single definition of every metric, one file per public view.

``schemas/views/<name>.sql`` holds the whole definition of view ``<name>`` (and the macros
that belong to it); it reads the lake's tables and the templates of ``schemas/templates``
through placeholders that one renderer resolves (``schemas.templates``). Loaded into a DuckDB
connection (``load_views``), every template a view uses is also a view of its own name
(``trace_spans``, ``attempt_parts``, …), so an engineer can query each step.

The tables are read one of two ways:

- **pinned** (everything tasklake runs): the files of one table version, which a query sets
  just before it runs (``schemas.delta.Tables.pin``: DuckDB variables ``tasklake_<table>``),
  plus a zero-row seed file with the table's current columns;
- **latest** (``<lake>/views.sql`` for any DuckDB client): ``delta_scan`` of each table, from
  the ``duckdb-extension-delta`` wheel.

Settings reach the SQL as one rendered relation, ``workflow_rules`` (each workflow's
acceptance rule, plus the default row with a NULL workflow), and the parameter list of the
cost macro comes from ``templates/cost_params.sql`` so the store's twin takes the same one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

import schemas.costs
import schemas.signals  # noqa: F401  (registers the signals table)
from schemas.delta import Tables, variable
from schemas.lake import COSTS, SIGNALS, SPANS, TABLES
from schemas.location import LakeLocation, SqlConnection, configure_duckdb, load_extension
from schemas.settings import Settings, WorkflowRule
from schemas.templates import PACKAGE as TEMPLATES
from schemas.templates import render, sql_file, substitute

PACKAGE = "schemas.views"

#: The view files in load order (a view may read only views and templates before it).
VIEW_FILES: tuple[str, ...] = (
    "spans",
    "llm_calls",
    "workflow_rules",
    "attempts",
    "signals",
    "tasks",
    "outcomes",
    "span_breakdown",
    "task_breakdown",
    "costs",
    "task_allocations",
    "cost_allocations",
    "unmatched_signals",
    "cost_per_task",
    "lookup",
)
#: The views an engineer can query (what ``tasklake sql`` lists); lookup.sql holds macros.
PUBLIC_VIEWS: tuple[str, ...] = tuple(v for v in VIEW_FILES if v != "lookup")
#: Templates that exist as views of their own name in a catalog (the steps of the chain).
TEMPLATE_VIEWS: tuple[str, ...] = (
    "span_copies",
    "unique_spans",
    "trace_spans",
    "attempt_parts",
    "breakdown_parts",
    "stored_signals",
    "stored_costs",
)
#: Statement files loaded before the views.
PRELUDE: tuple[str, ...] = ("macros", "money")

#: The fully loaded components of a cost-per-task row (``full_cost := true``), in order.
COMPONENT_COLUMNS = (
    "inference_usd",
    "rework_usd",
    "labor_usd",
    "infrastructure_usd",
    "licence_usd",
    "other_usd",
)

#: The table inputs of the templates, per table.
TABLE_INPUTS = {SPANS: "spans_table", SIGNALS: "signals_table", COSTS: "costs_table"}


def view_sql(name: str) -> str:
    return sql_file(PACKAGE, name)


def pinned_read(table: str, seed: str) -> str:
    """The relation of ``table``'s pinned files (the seed when nothing is pinned yet)."""
    extra = ", filename = true, file_row_number = true" if table == SPANS else ""
    listed = "'" + seed.replace("'", "''") + "'"
    return (
        f"read_parquet(coalesce(getvariable('{variable(table)}'), [{listed}]),"
        f" hive_partitioning = true, union_by_name = true{extra})"
    )


def latest_read(table: str, uri: str) -> str:
    """The relation of ``table``'s newest version, for any DuckDB client."""
    scan = f"delta_scan('{uri.replace(chr(39), chr(39) * 2)}'"
    if table != SPANS:
        return scan + ")"
    # file_row_number is a virtual column of delta_scan: named, never in *
    return f"(SELECT *, file_row_number FROM {scan}, filename = true))"


# ---------------------------------------------------------------------- settings


def _literal(text: str | None) -> str:
    return "NULL" if text is None else "'" + text.replace("'", "''") + "'"


def _interval(seconds: float) -> str:
    return f"to_microseconds({round(seconds * 1_000_000)})"


def _number(value: Decimal | float | None, sql_type: str) -> str:
    return f"NULL::{sql_type}" if value is None else f"{value}::{sql_type}"


def workflow_rules_values(settings: Settings | None = None) -> str:
    """The rows of ``workflow_rules``: one per configured workflow, then the default."""
    workflows = dict(settings.workflows) if settings is not None else {}
    default = workflows.pop("*", WorkflowRule())
    rows: list[tuple[str | None, WorkflowRule]] = [
        (name, workflows[name]) for name in sorted(workflows)
    ]
    rows.append((None, default))
    return ",\n    ".join(
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


def settings_bindings(settings: Settings | None) -> dict[str, str]:
    """Inputs rendered from the settings rather than read from the lake."""
    return {
        "workflow_rules_values": workflow_rules_values(settings),
        "cost_params": sql_file(TEMPLATES, "cost_params").strip(),
        "unallocated_params": sql_file(TEMPLATES, "unallocated_params").strip(),
    }


# ---------------------------------------------------------------------- the catalog


def render_catalog(table_reads: Mapping[str, str], settings: Settings | None = None) -> str:
    """Every definition as one script: the prelude, the table inputs and template steps as
    views, then the public views."""
    bindings = {**settings_bindings(settings)}
    parts = [sql_file(TEMPLATES, name).strip() for name in PRELUDE]
    for table, name in TABLE_INPUTS.items():
        parts.append(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {table_reads[table]};")
        bindings[name] = name
    views = frozenset(TEMPLATE_VIEWS)
    for name in TEMPLATE_VIEWS:
        body = render(name, bindings, views - {name})
        parts.append(f"CREATE OR REPLACE VIEW {name} AS\n{body};")
    for name in VIEW_FILES:
        parts.append(substitute(view_sql(name), bindings, views))
    return "\n\n".join(parts) + "\n"


def load_views(con: SqlConnection, tables: Tables, settings: Settings | None = None) -> None:
    """Define every view on ``con``, reading the pinned files of ``tables``' lake."""
    configure_duckdb(con, tables.location)
    reads = {}
    for table in TABLE_INPUTS:
        seed = tables.seed(table)
        if seed is None:
            raise ValueError("load_views needs Tables with a seed_dir")
        reads[table] = pinned_read(table, seed)
    con.execute(render_catalog(reads, settings))


def render_latest(location: LakeLocation, settings: Settings | None = None) -> str:
    """The views over each table's newest version, for any DuckDB client (``LOAD delta``
    first; S3 lakes need httpfs and a secret, see ``schemas.location``)."""
    reads = {t: latest_read(t, location.uri(t)) for t in TABLE_INPUTS}
    return render_catalog(reads, settings)


def load_latest_views(
    con: SqlConnection, location: LakeLocation, settings: Settings | None = None
) -> None:
    """Views over the newest versions on ``con`` (the interactive ``tasklake sql`` shell)."""
    configure_duckdb(con, location)
    load_extension(con, "delta")
    con.execute(render_latest(location, settings))


def cli_script(tables: Tables, settings: Settings | None, *, pinned: bool) -> str:
    """A script for the DuckDB CLI: extensions and S3 secret, then the views; ``pinned``:
    over the tables' newest versions, pinned (one statement), else ``delta_scan`` (a shell)."""
    lines: list[str] = []

    class _Collect:
        def execute(self, query: str, parameters: object = None, /) -> object:
            lines.append(query.rstrip(";") + ";")
            return None

    collect = _Collect()
    configure_duckdb(collect, tables.location)
    if pinned:
        reads = {}
        for table in TABLE_INPUTS:
            seed = tables.seed(table)
            assert seed is not None, "cli_script needs Tables with a seed_dir"
            reads[table] = pinned_read(table, seed)
        body = render_catalog(reads, settings)
        pins = "\n".join(s + ";" for s in tables.pin_statements(tables.snapshot()))
        return "\n".join(lines) + "\n" + body + "\n" + pins + "\n"
    load_extension(collect, "delta")
    reads = {t: latest_read(t, tables.location.uri(t)) for t in TABLE_INPUTS}
    return "\n".join(lines) + "\n" + render_catalog(reads, settings)


def write_views_file(location: LakeLocation, settings: Settings | None = None) -> Path | None:
    """``<lake>/views.sql`` for ``duckdb -init views.sql`` run in a local lake's directory."""
    if not location.local:
        return None
    target = location.path / "views.sql"
    tmp = target.with_suffix(".sql.tmp")
    header = (
        "-- tasklake views over the newest version of each Delta table.\n"
        "-- In this directory: duckdb -init views.sql (needs the delta extension: INSTALL delta"
        " or LOAD its file).\n"
        "LOAD delta;\n\n"
    )
    reads = {t: latest_read(t, t) for t in TABLE_INPUTS}
    tmp.write_text(header + render_catalog(reads, settings), encoding="utf-8")
    os.replace(tmp, target)
    return target


__all__ = [
    "COMPONENT_COLUMNS",
    "PUBLIC_VIEWS",
    "TABLES",
    "load_latest_views",
    "load_views",
    "render_catalog",
    "write_views_file",
]
