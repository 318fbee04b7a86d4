"""A team-scoped token sees its teams' rows — exactly those — through every read: each view in
SQL, whatever the query does to reach more (joins, subqueries, the attributes map, the lake's
files, CTEs, views recreated, the catalog), every REST endpoint, format and filter."""

from __future__ import annotations

import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.views import PUBLIC_VIEWS, render_derived, render_prelude
from service.sql.scoped import VIEWS
from tests.fuzzing import examples
from tests.lakes import connect
from tests.service.access_env import Client, access_settings, leaks

ATTEMPTS = "(SELECT attempt_id FROM attempts WHERE team IN (SELECT unnest($teams)))"
TASKS = "(SELECT task_key FROM tasks WHERE team IN (SELECT unnest($teams)))"
SIGNAL_TASK = (
    " LEFT JOIN attempts a ON x.task_id IS NULL AND a.attempt_id = x.correlation_id"
    " JOIN tasks t ON t.task_key = coalesce(x.task_id, a.task_key)"
    " WHERE t.team IN (SELECT unnest($teams))"
)
#: Each view's rows of some teams, said again over the whole lake's views (the oracle).
EXPECTED = {
    "spans": "SELECT s.* FROM spans s JOIN trace_spans t ON t.trace_id = s.trace_id"
    f" AND t.span_id = s.span_id WHERE t.attempt_id IN {ATTEMPTS}",
    "llm_calls": f"SELECT * FROM llm_calls WHERE attempt_id IN {ATTEMPTS}",
    "workflow_rules": "SELECT * FROM workflow_rules",
    "attempts": "SELECT * FROM attempts WHERE team IN (SELECT unnest($teams))",
    "signals": "SELECT x.* FROM signals x" + SIGNAL_TASK,
    "tasks": "SELECT * FROM tasks WHERE team IN (SELECT unnest($teams))",
    "outcomes": "SELECT * FROM outcomes WHERE team IN (SELECT unnest($teams))",
    "span_breakdown": f"SELECT * FROM span_breakdown WHERE attempt_id IN {ATTEMPTS}",
    "task_breakdown": f"SELECT * FROM task_breakdown WHERE task_key IN {TASKS}",
    "costs": "SELECT * FROM costs WHERE team IN (SELECT unnest($teams))",
    "task_allocations": f"SELECT * FROM task_allocations WHERE task_key IN {TASKS}",
    "cost_allocations": "SELECT * FROM cost_allocations WHERE team IN (SELECT unnest($teams))",
    "unmatched_signals": "SELECT x.* FROM unmatched_signals x" + SIGNAL_TASK,
    "cost_per_task": "SELECT * EXCLUDE (team, role, version, model, provider, day, week, month,"
    " inference_usd, rework_usd, labor_usd, infrastructure_usd, licence_usd, other_usd)"
    " FROM cost_per_task_by(by_workflow := true, teams := $teams)",
}


def _arrow(resp: Any) -> pa.Table:
    assert resp.status_code == 200, resp.text
    return pa.ipc.open_stream(io.BytesIO(resp.content)).read_all()


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=repr)


def test_every_view_has_a_rule() -> None:
    assert set(VIEWS) == set(PUBLIC_VIEWS) == set(EXPECTED)


@pytest.fixture(scope="module")
def oracle(access_lake: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Every view over the whole lake (the lake's own views, no store, no scoping), computed
    once and held as tables of the same names, with the cost macro over them."""
    settings = access_settings(access_lake)
    lake = connect(access_lake, settings)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(render_prelude())
        for view in (*PUBLIC_VIEWS, "trace_spans"):
            con.register(view, lake.execute(f"SELECT * FROM {view}").to_arrow_table())
        con.execute(render_derived("cost_per_task", settings))
        yield con
    finally:
        lake.close()
        con.close()


def test_the_oracle_sees_other_teams(oracle: duckdb.DuckDBPyConnection) -> None:
    """The markers are real: the whole lake holds every one of them."""
    everything = "".join(str(oracle.execute(f"FROM {v}").fetchall()) for v in PUBLIC_VIEWS)
    assert {"FINSECRET", "NOTEAMSECRET", "MIXFIN", "billing", "GHOST"} <= set(leaks(everything))


@pytest.mark.parametrize("who", ["cx-reader", "fin-reader"])
def test_each_view_holds_exactly_the_teams_rows(
    access_api: Client, oracle: duckdb.DuckDBPyConnection, who: str
) -> None:
    teams = ["cx"] if who == "cx-reader" else ["fin"]
    for view, expected in EXPECTED.items():
        got = _arrow(access_api.sql(who, f"SELECT * FROM {view}", format="arrow"))
        params = {"teams": teams} if "$teams" in expected else None
        want = oracle.execute(expected, params).to_arrow_table()
        assert got.column_names == want.column_names, view
        assert _sorted(got.to_pylist()) == _sorted(want.to_pylist()), view
        if view in ("spans", "attempts", "tasks", "signals", "costs", "unmatched_signals"):
            assert got.num_rows > 0, f"{view}: the lake should give {who} rows to see"


def test_what_each_rule_keeps(access_api: Client) -> None:
    one = access_api.rows
    # the shared trace: the cx attempt's spans only
    assert one("cx-reader", "SELECT count(*) FROM spans WHERE name LIKE 'mix-%'") == [[2]]
    assert one("fin-reader", "SELECT count(*) FROM spans WHERE name LIKE 'mix-%'") == [[2]]
    assert one("reader", "SELECT count(*) FROM spans WHERE name LIKE 'mix-%'") == [[4]]
    # an attempt of no team: unscoped tokens only
    assert one("cx-reader", "SELECT count(*) FROM spans WHERE name LIKE 'noteam%'") == [[0]]
    assert one("reader", "SELECT count(*) FROM spans WHERE name LIKE 'noteam%'") == [[2]]
    # signals: of the team's tasks; the unmatched: the team's task, another workflow named
    assert one("cx-reader", "SELECT signal_id FROM unmatched_signals") == [["sig-s4-wrong"]]
    # costs: the entries naming the team; allocations of a shared entry reach its tasks
    assert one("cx-reader", "SELECT entry_id FROM costs ORDER BY 1") == [["idle-cx"], ["tools-cx"]]
    shared = one("cx-reader", "SELECT sum(licence_usd) FROM task_allocations")[0][0]
    whole = one(
        "reader",
        "SELECT sum(licence_usd) FROM task_allocations JOIN tasks USING (task_key)"
        " WHERE team = 'cx'",
    )[0][0]
    assert Decimal(0) < Decimal(str(shared)) == Decimal(str(whole)) < Decimal("24.70")
    # the cost macro over the team's rows, by any grouping
    by_team = one("cx-reader", "SELECT team, tasks FROM cost_per_task_by(by_team := true)")
    assert by_team == [["cx", 5]]
    assert one("cx-reader", "SELECT * FROM cost_per_task_by(teams := ['fin'])") == []


#: Queries trying to reach another team's rows, or the lake, or the catalog.
ATTACKS = [
    "SELECT * FROM spans",
    "SELECT all_attributes, map_values(all_attributes) FROM spans",
    "SELECT * FROM spans WHERE all_attributes['secret.note'] IS NOT NULL",
    "SELECT * FROM spans s JOIN llm_calls l USING (trace_id)",
    "SELECT * FROM attempts a FULL JOIN tasks t USING (task_key)"
    " FULL JOIN outcomes o USING (task_key)",
    "SELECT * FROM signals, costs, cost_allocations",
    "SELECT (SELECT list(team) FROM attempts), (SELECT list(workflow) FROM tasks)",
    "SELECT * FROM tasks WHERE team <> 'cx' OR true",
    "WITH tasks AS (SELECT * FROM attempts) SELECT * FROM tasks",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3)"
    " SELECT * FROM r, attempts",
    "SELECT * FROM cost_per_task_by(by_team := true, by_workflow := true, full_cost := true)",
    "SELECT * FROM cost_per_task_by(teams := ['fin'])",
    "SELECT * FROM unmatched_signals, task_breakdown, span_breakdown, task_allocations",
    "SELECT * FROM query_table('spans')",
    "SUMMARIZE spans",
    "DESCRIBE tasks",
    "SHOW ALL TABLES",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM information_schema.columns",
    "SELECT * FROM duckdb_views()",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM duckdb_functions() WHERE function_type = 'macro'",
    "SELECT * FROM duckdb_databases()",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM duckdb_variables()",
    "SELECT getvariable('tasklake_spans'), current_setting('allowed_directories')",
    "SELECT * FROM trace_spans",
    "SELECT * FROM spans_table",
    "SELECT * FROM unique_spans",
    "SELECT * FROM tl_store.attempts",
    "SELECT * FROM store_task_facts",
    "SELECT * FROM memory.main.spans",
    "SELECT * FROM temp.main.spans",
    "SELECT * FROM system.main.spans",
    "SELECT * FROM lookup_traces('B1')",
    "SELECT * FROM task_lookup('B1')",
    "SELECT * FROM attempts_in(NULL)",
    "SELECT * FROM tasks_in(NULL, NULL)",
    "SELECT * FROM signals_in(NULL)",
    "FROM spans UNION ALL BY NAME FROM llm_calls",
    "SELECT * FROM read_parquet('{lake}/spans/**/*.parquet')",
    "SELECT * FROM read_parquet('{lake}/**/*.parquet', union_by_name = true)",
    "SELECT * FROM parquet_metadata('{lake}/spans/**/*.parquet')",
    "SELECT * FROM delta_scan('{lake}/spans')",
    "SELECT * FROM glob('{lake}/**')",
    "SELECT * FROM read_text('{lake}/_store/*')",
    "SELECT * FROM read_blob('{lake}/**')",
    "SELECT * FROM read_json_auto('{lake}/spans/_delta_log/*.json')",
    "SELECT * FROM read_csv('{lake}/views.sql')",
    "CREATE VIEW spans AS SELECT * FROM read_parquet('{lake}/spans/**/*.parquet')",
    "ATTACH '{lake}/_store/x.duckdb' AS s",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_nothing_of_another_team_leaks_through_sql(
    access_api: Client, access_lake: Path, attack: str
) -> None:
    sql = attack.replace("{lake}", str(access_lake))
    # every format for the queries that answer rows; the refusals are the same in each
    formats = ("json", "csv", "arrow") if ATTACKS.index(attack) < 15 else ("json",)
    for fmt in formats:
        resp = access_api.sql("cx-reader", sql, format=fmt)
        assert resp.status_code in (200, 400, 403), resp.text
        text = (
            resp.text
            if fmt != "arrow" or resp.status_code != 200
            else str(_arrow(resp).to_pylist())
        )
        assert not leaks(text), (fmt, leaks(text), text[:500])


GROUPINGS = [
    "team",
    "workflow",
    "role",
    "version",
    "model",
    "provider",
    "day",
    "team,workflow,role",
]


@pytest.mark.parametrize("group_by", GROUPINGS)
def test_rest_cost_per_task_is_scoped(access_api: Client, group_by: str) -> None:
    for params in ({}, {"cost": "full"}, {"format": "csv"}, {"cost": "full", "team": "cx"}):
        resp = access_api.get("cx-reader", "/api/v1/cost-per-task", group_by=group_by, **params)
        assert resp.status_code == 200, resp.text
        assert not leaks(resp.text), (params, leaks(resp.text))
    if group_by == "team":
        mine = access_api.get("cx-reader", "/api/v1/cost-per-task", group_by="team").json()
        everyone = access_api.get("reader", "/api/v1/cost-per-task", group_by="team").json()
        assert mine["rows"] == [r for r in everyone["rows"] if r["team"] == "cx"]
        full = access_api.get("cx-reader", "/api/v1/cost-per-task", cost="full").json()
        assert [u["entry_id"] for u in full["unallocated"]] == ["idle-cx"]


ANALYSES = [
    ("/api/v1/compare", {"workflow": "support", "a": "version:v1", "b": "version:v2"}),
    ("/api/v1/compare", {"workflow": "billing", "a": "version:v1", "b": "version:v2"}),
    ("/api/v1/trends", {"workflow": "support", "period": "day"}),
    ("/api/v1/trends", {"workflow": "billing", "period": "day"}),
    ("/api/v1/levers", {"workflow": "support"}),
    ("/api/v1/levers", {"workflow": "billing"}),
    ("/api/v1/autonomy", {}),
    ("/api/v1/reasons", {}),
    ("/api/v1/time-saved", {}),
    ("/api/v1/tasks", {}),
    ("/api/v1/tasks", {"workflow": "billing"}),
]


@pytest.mark.parametrize(("path", "params"), ANALYSES)
def test_rest_analyses_are_scoped(access_api: Client, path: str, params: dict[str, str]) -> None:
    """The analyses read the caller's teams only, in JSON and CSV; another team is 403."""
    for fmt in ("json", "csv"):
        resp = access_api.get("cx-reader", path, format=fmt, **params)
        assert resp.status_code == 200, resp.text
        # an answer echoes the workflow it was asked for; nothing else may name team fin's
        asked = params.get("workflow") == "billing"
        text = resp.text.replace('"billing"', "").replace(",billing,", ",") if asked else resp.text
        assert not leaks(text), (fmt, leaks(resp.text))
    assert access_api.get("cx-reader", path, team="fin", **params).status_code == 403
    assert access_api.get("reader", path, **params).status_code == 200


def test_rest_filters_outside_the_teams_are_refused(access_api: Client) -> None:
    for team in ("fin", "cx,fin", "nobody"):
        resp = access_api.get("cx-reader", "/api/v1/cost-per-task", team=team)
        assert resp.status_code == 403, resp.text
        assert set(leaks(resp.text)) <= {"fin"}  # the name it was asked for, no row
    assert access_api.get("fin-reader", "/api/v1/cost-per-task", team="fin").status_code == 200


def test_rest_drill_down_is_scoped(access_api: Client) -> None:
    for other in ("B1", "B1-0", "B9", "MIXFIN", "NOTEAM-0", "GHOST"):
        for params in ({}, {"format": "csv"}):
            resp = access_api.get("cx-reader", f"/api/v1/tasks/{other}", **params)
            assert resp.status_code == 404, (other, resp.text)
            # the very answer of an id nobody knows
            assert resp.json()["error"]["message"] == f"no task or attempt with id '{other}'"
    assert access_api.get("fin-reader", "/api/v1/tasks/B9").status_code == 200
    assert access_api.get("reader", "/api/v1/tasks/NOTEAM-0").status_code == 200
    mix = access_api.get("cx-reader", "/api/v1/tasks/MIX-cx")
    assert mix.status_code == 200 and not leaks(mix.text)
    assert "mix-cx-chat" in mix.text and "mix-fin" not in mix.text  # the shared trace
    for task in ("S1", "S2", "S1-2"):
        for params in ({}, {"format": "csv"}):
            resp = access_api.get("cx-reader", f"/api/v1/tasks/{task}", **params)
            assert resp.status_code == 200 and not leaks(resp.text), task


_WORDS = st.sampled_from(
    [
        *PUBLIC_VIEWS,
        "SELECT", "*", "FROM", "WHERE", "JOIN", "USING", "(", ")", ",", "team", "task_key",
        "attempt_id", "all_attributes", "'fin'", "'cx'", "OR", "true", "UNION ALL", "WITH",
        "AS", "x", "LIMIT", "1", "count(*)", "GROUP BY", "ORDER BY", "NOT", "IN", ";",
        "read_parquet('/'", "information_schema.tables", "duckdb_tables()", "'%'", "LIKE",
        "map_keys(all_attributes)", "SET", "ATTACH", "--", "/*", "*/", "'", '"', "spans.team",
    ]
)  # fmt: skip


@pytest.mark.fuzz
@given(
    st.one_of(
        st.lists(_WORDS, min_size=1, max_size=14).map(" ".join),
        st.builds(
            lambda view, cond: f"SELECT * FROM {view} WHERE {cond}",
            st.sampled_from(PUBLIC_VIEWS),
            st.text(max_size=30),
        ),
        st.text(max_size=60),
    )
)
@settings(max_examples=examples(30))
def test_arbitrary_sql_never_fails_the_server_nor_leaks(access_api: Client, sql: str) -> None:
    resp = access_api.sql("cx-reader", sql)
    assert resp.status_code in (200, 400, 403, 503), resp.text
    assert not leaks(resp.text), (sql, leaks(resp.text))
