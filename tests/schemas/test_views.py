"""The view definitions as a whole: they compile on an empty lake, ``views.sql`` works in any
DuckDB client from inside the lake, ``tasklake sql -c`` pins, settings reach the SQL."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.location import LakeLocation, _extension_file
from schemas.prices import LAKE_MODELS_SQL
from schemas.settings import Settings, WorkflowRule
from schemas.views import PUBLIC_VIEWS, workflow_rules_values, write_views_file
from tests.lakes import connect, lake_flags, tables
from tests.schemas.test_trace_spans import tricky_lake

MACROS = (
    "SELECT * FROM attempts_in(NULL)",
    "SELECT * FROM tasks_in(NULL, NULL)",
    "SELECT * FROM task_facts_in(NULL, NULL)",
    "SELECT * FROM signals_in(['x'])",
    "SELECT * FROM task_lookup('x')",
    "SELECT lookup_traces('x')",
    "SELECT * FROM span_tree(['x'], days := [DATE '2026-01-01'])",
    "SELECT * FROM cost_per_task_by(by_role := true, by_month := true)",
    "SELECT * FROM cost_per_task_by(by_model := true, start_at := '2026-01-01',"
    " workflows := ['a'], teams := ['b'])",
    "SELECT * FROM unallocated_costs_in(start_at := '2026-01-01', workflows := ['a'])",
)


#: The analyses' macros (schemas/views/{compare,trends,autonomy,outcome_reasons,levers}.sql).
ANALYSES = (
    "SELECT * FROM compare_by('w', a_version := 'v1', b_start := '2026-01-01',"
    " b_end := '2026-02-01', full_cost := true)",
    "SELECT * FROM trends_by('day', full_cost := true)",
    "SELECT * FROM trend_diagnosis_by('month', workflows := ['w'])",
    "SELECT * FROM autonomy_by(end_at := '2026-02-01')",
    "SELECT * FROM outcome_reasons_by(teams := ['t'])",
    "SELECT * FROM time_saved_by()",
    "SELECT * FROM levers_by(start_at := '2026-01-01')",
    "SELECT * FROM lever_routing_by()",
    "SELECT * FROM lever_prompt_size_by()",
    "SELECT * FROM model_prices",
)


def test_every_view_and_macro_answers_on_an_empty_lake(lake: str) -> None:
    con = connect(lake)
    for view in PUBLIC_VIEWS:
        rows = con.execute(f"SELECT * FROM {view}").fetchall()
        assert rows == [] or view == "workflow_rules", view
    for step in ("span_copies", "unique_spans", "trace_spans", "attempt_parts"):
        assert con.execute(f"SELECT * FROM {step}").fetchall() == [], step
    for sql in MACROS:
        assert con.execute(sql).fetchall() in ([], [(None,)], [([],)]), sql
    for sql in ANALYSES:  # an empty lake has nothing to analyse, but every macro answers
        assert len(con.execute(sql).fetchall()) == (3 if "compare_by" in sql else 0), sql
    (split,) = con.execute("SELECT * FROM compare_decomposition_by('w')").fetchall()
    assert split[-1] == "side a has no tasks"  # the explanation, not a division by zero


def _cli() -> str | None:
    try:
        import duckdb_cli  # type: ignore[import-untyped]
    except ImportError:
        return None
    binary = Path(duckdb_cli.__file__).with_name("duckdb")
    return str(binary) if binary.is_file() else shutil.which("duckdb")


@pytest.mark.local_lake("views.sql is written into a local lake's directory only")
def test_views_file_is_self_contained_for_any_client(tmp_path: Path) -> None:
    tricky_lake(tmp_path)
    path = write_views_file(LakeLocation.parse(tmp_path))
    assert path is not None
    assert "tl_store" not in path.read_text() and str(tmp_path) not in path.read_text()
    con = connect(tmp_path)
    want = con.execute("SELECT count(*), sum(spend_usd) FROM attempts").fetchone()
    assert want is not None and want[0] > 0
    cli = _cli()
    if cli is None:
        pytest.skip("the DuckDB CLI (duckdb-cli) is not installed")
    # what a user's `INSTALL delta` does, from the wheel's file (no network here)
    extensions = tmp_path / "_extensions"
    install = f"SET extension_directory = '{extensions}'; INSTALL '{_extension_file('delta')}';"
    out = subprocess.run(
        [
            cli,
            "-csv",
            "-noheader",
            "-c",
            install,
            "-c",
            ".read views.sql",
            "-c",
            "SELECT count(*), sum(spend_usd) FROM attempts",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()
    count, spend = out.split(",")
    assert (int(count), Decimal(spend)) == want


def test_tasklake_sql_pins_a_one_statement_query(lake: str) -> None:
    """``tasklake sql -c`` reads a pinned snapshot (compaction cannot change its answer); the
    same views answer as in-process."""
    tricky_lake(lake)
    con = connect(lake)
    want = con.execute("SELECT count(*), sum(spend_usd) FROM attempts").fetchone()
    assert want is not None
    if _cli() is None:
        pytest.skip("the DuckDB CLI (duckdb-cli) is not installed")
    query = (
        "SELECT 'got ' || len(getvariable('tasklake_spans')) || ' ' || count(*) || ' '"
        " || sum(spend_usd) || ' ' || (SELECT count(*) FROM model_prices) || ' end'"
        " FROM attempts"
    )
    out = subprocess.run(
        [sys.executable, "-m", "service.cli", "sql", *lake_flags(lake), "-c", query],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    found = re.search(r"got (\d+) (\d+) ([\d.]+) (\d+) end", out)
    assert found, out
    pinned, count, spend, models = found.groups()
    # the levers' price list: a row for each model the lake names
    named = con.execute("SELECT count(*) FROM (" + LAKE_MODELS_SQL + ")").fetchone()
    assert named is not None and int(models) == named[0]
    assert int(pinned) == len(tables(lake).version_of("spans").files) + 1  # + the seed
    assert (int(count), Decimal(spend)) == want


def test_workflow_rules_come_from_the_settings(lake: str) -> None:
    settings = Settings(
        workflows={
            "support-triage": WorkflowRule(
                reopen_window=timedelta(hours=72),
                rework_counts_as_completed=True,
                budget_per_completed_task=Decimal("0.50"),
            ),
            "it's": WorkflowRule(abandon_after=timedelta(days=1)),
            "*": WorkflowRule(reopen_window=timedelta(hours=24)),
        }
    )
    con = connect(lake, settings)
    rows = con.execute(
        "SELECT workflow, epoch(reopen_window)::INT, epoch(abandon_after)::INT,"
        " rework_counts_as_completed, budget_per_completed_task FROM workflow_rules"
        " ORDER BY workflow NULLS LAST"
    ).fetchall()
    assert rows == [
        ("it's", 48 * 3600, 86400, False, None),
        ("support-triage", 72 * 3600, 7 * 86400, True, Decimal("0.5")),
        (None, 24 * 3600, 7 * 86400, False, None),  # the default: the "*" rule
    ]
    assert "'it''s'" in workflow_rules_values(settings)
