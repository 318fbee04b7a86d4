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
from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from statistics import NormalDist

import schemas.costs
import schemas.signals  # noqa: F401  (registers the signals table)
from schemas.delta import Tables, variable
from schemas.lake import COSTS, SIGNALS, SPANS, TABLES
from schemas.location import LakeLocation, SqlConnection, configure_duckdb, load_extension
from schemas.prices import MODEL_PRICES_DDL
from schemas.settings import RULES, Rule, Settings, WorkflowRule
from schemas.templates import PACKAGE as TEMPLATES
from schemas.templates import render, sql_file, substitute

PACKAGE = "schemas.views"

#: The analyses (macros only; DESIGN §7): each file is rendered twice, as the views' macros
#: and, with ``macro_prefix`` "store_", as the task store's twins over its tables
#: (``analysis_bindings``), so both answer from the same text.
ANALYSIS_FILES: tuple[str, ...] = ("compare", "trends", "autonomy", "outcome_reasons", "levers")
#: The parameter lists of the macros (``templates/<name>.sql``), bound by name.
PARAMS: tuple[str, ...] = (
    "cost_params",
    "unallocated_params",
    "compare_params",
    "trends_params",
    "autonomy_params",
    "reasons_params",
)
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
    *ANALYSIS_FILES,
)
#: The views an engineer can query (what ``tasklake sql`` lists); the other files hold macros.
PUBLIC_VIEWS: tuple[str, ...] = tuple(
    v for v in VIEW_FILES if v != "lookup" and v not in ANALYSIS_FILES
)
#: Templates that exist as views of their own name in a catalog (the steps of the chain).
TEMPLATE_VIEWS: tuple[str, ...] = (
    "span_copies",
    "unique_spans",
    "trace_spans",
    "attempt_parts",
    "breakdown_parts",
    "call_parts",
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


def _number(value: Decimal | float | int | None, sql_type: str) -> str:
    """A typed literal; a float as text, which DuckDB parses to the same double (a numeric
    literal goes through DECIMAL and may round: 0.9500000000000001 would read as 0.95)."""
    if value is None:
        return f"NULL::{sql_type}"
    if isinstance(value, float):
        return f"'{value!r}'::{sql_type}"
    return f"{value}::{sql_type}"


_RULE_SQL_TYPES = {
    "money": "DECIMAL(18, 6)",
    "rate": "DOUBLE",
    "number": "DOUBLE",
    "count": "BIGINT",
}


def _rule_literal(rule: Rule, value: object) -> str:
    if rule.kind == "duration":
        assert isinstance(value, timedelta)
        return _interval(value.total_seconds())
    if rule.kind == "bool":
        return "true" if value else "false"
    if rule.kind == "period":
        assert isinstance(value, str)
        return _literal(value)
    assert value is None or isinstance(value, Decimal | float | int)
    return _number(value, _RULE_SQL_TYPES[rule.kind])


def workflow_rules_columns(names: Sequence[str] | None = None) -> str:
    """The column names of ``workflow_rules``: the workflow, each rule of ``RULES`` (or of
    ``names``), then ``autonomy_z``."""
    keys = list(names) if names is not None else [r.name for r in RULES]
    return ", ".join(["workflow", *keys, *(["autonomy_z"] if names is None else [])])


def workflow_rules_values(
    settings: Settings | None = None, names: Sequence[str] | None = None
) -> str:
    """The rows of ``workflow_rules``: one per configured workflow, then the default (a NULL
    workflow); each holds every key of ``RULES`` (or only ``names``), then ``autonomy_z``: the
    standard normal quantile of ``autonomy_confidence`` (the one-sided Wilson bound's z)."""
    workflows = dict(settings.workflows) if settings is not None else {}
    default = workflows.pop("*", WorkflowRule())
    rows: list[tuple[str | None, WorkflowRule]] = [
        (name, workflows[name]) for name in sorted(workflows)
    ]
    rows.append((None, default))
    rules = [r for r in RULES if names is None or r.name in names]
    out = []
    for name, rule in rows:
        cells = [_literal(name) + ("::VARCHAR" if name is None else "")]
        cells += [_rule_literal(r, getattr(rule, r.name)) for r in rules]
        if names is None:
            cells.append(_number(NormalDist().inv_cdf(rule.autonomy_confidence), "DOUBLE"))
        out.append("(" + ", ".join(cells) + ")")
    return ",\n    ".join(out)


def settings_bindings(settings: Settings | None) -> dict[str, str]:
    """Inputs rendered from the settings rather than read from the lake."""
    return {
        "workflow_rules_values": workflow_rules_values(settings),
        "workflow_rules_columns": workflow_rules_columns(),
        **{name: sql_file(TEMPLATES, name).strip() for name in PARAMS},
    }


def analysis_bindings(*, store: str | None = None) -> dict[str, str]:
    """The inputs of the analyses' macros: over the views, or (``store``: the task store's
    schema) the store's twins over its tables."""
    if store is None:
        return {
            "macro_prefix": "",
            "cost_by": "cost_per_task_by",
            "analysis_tasks": "tasks",
            "analysis_attempts": "attempts",
            "analysis_calls": "call_parts",
        }
    return {
        "macro_prefix": "store_",
        "cost_by": "store_cost_per_task_by",
        "analysis_tasks": "store_tasks",
        "analysis_attempts": f"{store}.attempts",
        "analysis_calls": f"{store}.call_parts",
    }


# ---------------------------------------------------------------------- the catalog


def render_catalog(table_reads: Mapping[str, str], settings: Settings | None = None) -> str:
    """Every definition as one script: the prelude, the table inputs and template steps as
    views, then the public views."""
    bindings = {**settings_bindings(settings)}
    parts = [sql_file(TEMPLATES, name).strip() for name in PRELUDE]
    parts.append(MODEL_PRICES_DDL + ";")
    for table, name in TABLE_INPUTS.items():
        parts.append(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {table_reads[table]};")
        bindings[name] = name
    views = frozenset(TEMPLATE_VIEWS)
    for name in TEMPLATE_VIEWS:
        body = render(name, bindings, views - {name})
        parts.append(f"CREATE OR REPLACE VIEW {name} AS\n{body};")
    bindings.update(analysis_bindings())
    for name in VIEW_FILES:
        parts.append(substitute(view_sql(name), bindings, views))
    return "\n\n".join(parts) + "\n"


def render_prelude() -> str:
    """The macros every view uses (no table is read)."""
    return "\n\n".join(sql_file(TEMPLATES, name).strip() for name in PRELUDE) + "\n"


def render_derived(name: str, settings: Settings | None = None) -> str:
    """The file of view ``name`` with its placeholders resolved, reading the other views by
    name: for a catalog whose inputs are tables of those names (a scoped SQL sandbox)."""
    return substitute(view_sql(name), settings_bindings(settings), frozenset(TEMPLATE_VIEWS))


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
    "ANALYSIS_FILES",
    "COMPONENT_COLUMNS",
    "PUBLIC_VIEWS",
    "TABLES",
    "load_latest_views",
    "load_views",
    "render_catalog",
    "write_views_file",
]
