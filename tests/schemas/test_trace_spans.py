"""The views answer exactly what the straightforward definition over ``spans`` answers
(``reference.sql``), however the spans are spread over files and commits and however often
a span was received — on lakes built to be awkward: attempts split across files, days and
traces, correlation ids only in another file, late spans whose parents sit elsewhere, model
calls wrapped by other model calls, copies of spans in other files."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.lakes import at, connect, new_lake, sid, span, trace, write_spans

REFERENCE = (Path(__file__).parent / "reference.sql").read_text()

ATTEMPT_COLUMNS = (
    "attempt_id, task_id, workflow, team, version, root_span_id, traces, spans, model_calls, "
    "tool_calls, retrievals, errors, unpriced_spans, spend_usd, total_tokens, started_at, ended_at"
)
TASK_COLUMNS = "task_key, workflow, team, version, attempts, spend_usd, started_at, ended_at"
BREAKDOWN_COLUMNS = "attempt_id, role, billable, provider, model"


def _connect(lake: Path | str) -> duckdb.DuckDBPyConnection:
    con = connect(lake)
    con.execute(REFERENCE)
    return con


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return sorted(con.execute(sql).fetchall(), key=repr)


def assert_views_match_reference(lake: Path | str) -> None:
    con = _connect(lake)
    try:
        fast = _rows(con, f"SELECT {ATTEMPT_COLUMNS} FROM attempts")
        ref = _rows(con, f"SELECT {ATTEMPT_COLUMNS} FROM ref_attempts")
        assert fast == ref
        assert _rows(con, f"SELECT {TASK_COLUMNS} FROM tasks") == _rows(
            con, f"SELECT {TASK_COLUMNS} FROM ref_tasks"
        )
        split = (
            f"SELECT {BREAKDOWN_COLUMNS}, sum(spans)::BIGINT, sum(spend_usd)::DECIMAL(38, 12),"
            f" sum(unpriced_spans)::BIGINT FROM {{}} GROUP BY ALL"
        )
        assert _rows(con, split.format("span_breakdown")) == _rows(
            con, split.format("ref_breakdown")
        )
    finally:
        con.close()


# ----------------------------------------------------------------------------- tricky lake


def tricky_lake(lake: Path | str) -> None:
    late = at(14, minutes=59)  # 23:59 UTC: the attempt crosses midnight
    write_spans(
        lake,
        [
            # t1: correlation id only on a late span of another file and day
            span("t1", "t1-root", start=late, task_id="T1", workflow="wf-a", team="team-x"),
            span(
                "t1",
                "t1-plan",
                parent="t1-root",
                start=late,
                op="chat",
                cost="0.10",
                tokens=(100, 10),
                role="planner",
                model="m1",
                provider="p1",
            ),
            # t2: a non-root span names a correlation id before the root does
            span("t2", "t2-early", parent="t2-root", start=at(0), correlation_id="c-child"),
            span("t2", "t2-bare", parent="t2-root", start=at(0.1), op="chat", cost="0.05"),
            # t3 + t4: one attempt over two traces; t3's non-root workflow loses to t4's root
            span("t3", "t3-root", start=at(1), correlation_id="att-34", resource_workflow="svc-3"),
            span(
                "t3",
                "t3-kid",
                parent="t3-root",
                start=at(0.5),
                correlation_id="att-34",
                workflow="wf-c",
                op="chat",
                cost="1.00",
            ),
            # t5: no correlation at all: resource id on some spans, the trace id for the rest
            span("t5", "t5-root", start=at(2), resource_correlation_id="res-5", op="execute_tool"),
            # t6: resource stand-ins, root first, until a span names the workflow
            span("t6", "t6-root", start=at(3), resource_workflow="svc-6b", task_id="T6"),
            span(
                "t6",
                "t6-kid",
                parent="t6-root",
                start=at(2.5),
                resource_workflow="svc-6",
                resource_team="ns-6",
            ),
            # t7: a role three files up the ancestors
            span("t7", "t7-grand", start=at(4), role="verifier", correlation_id="att-7"),
            # t8: a malformed cycle
            span("t8", "t8-a", parent="t8-b", start=at(5), op="chat", cost="0.01"),
            span("t8", "t8-b", parent="t8-a", start=at(5), op="retrieval"),
            # t9a: the first attempt of a task retried in t9b
            span(
                "t9a",
                "t9a-root",
                start=at(6),
                task_id="T9",
                workflow="wf-9",
                workflow_version="v1",
                correlation_id="a9-1",
                op="chat",
                cost="0.30",
                error=True,
            ),
        ],
        "a",
    )
    write_spans(
        lake,
        [
            span(
                "t1",
                "t1-draft",
                parent="t1-plan",
                start=late + timedelta(minutes=2),
                op="chat",
                cost="0.20",
                tokens=(200, 20),
                model="m2",
                provider="p1",
            ),
            span(
                "t1",
                "t1-tool",
                parent="t1-draft",
                start=late + timedelta(minutes=3),
                op="execute_tool",
                error=True,
            ),
            span(
                "t1",
                "t1-late",
                parent="t1-root",
                start=late + timedelta(minutes=4),
                correlation_id="att-1",
                op="chat",
            ),  # unpriced
            span("t5", "t5-kid", parent="t5-root", start=at(2.1), op="retrieval"),
            span(
                "t6",
                "t6-named",
                parent="t6-kid",
                start=at(3.5),
                workflow="wf-6",
                op="chat",
                cost="0.07",
            ),
            span("t7", "t7-parent", parent="t7-grand", start=at(4.1), correlation_id="att-7"),
            span(
                "t9b",
                "t9b-root",
                start=at(7),
                task_id="T9",
                workflow="wf-9",
                workflow_version="v2",
                correlation_id="a9-2",
                op="chat",
                cost="0.40",
            ),
        ],
        "b",
    )
    write_spans(
        lake,
        [
            span("t2", "t2-root", start=at(0.2), correlation_id="c-root"),
            span(
                "t4",
                "t4-root",
                start=at(1.5),
                correlation_id="att-34",
                workflow="wf-b",
                team="team-y",
                workflow_version="v7",
                op="chat",
                cost="2.00",
            ),
            span("t7", "t7-kid", parent="t7-parent", start=at(4.2), op="chat", cost="0.50"),
            span("t7", "t7-orphan", parent="ghost", start=at(4.3), op="chat", cost="0.25"),
        ],
        "c",
    )


def test_tricky_lake_matches_reference(lake: str) -> None:
    tricky_lake(lake)
    assert_views_match_reference(lake)


def test_tricky_lake_answers_what_design_says(lake: str) -> None:
    tricky_lake(lake)
    con = _connect(lake)
    attempts = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT attempt_id, correlation_source, task_key, workflow, team, version, spans,"
            " spend_usd::VARCHAR, unpriced_spans FROM attempts"
        ).fetchall()
    }
    # t1: five spans in two files and two days, one attempt named by its late span; the
    # planner's call wraps the draft's (a model call below it): only the draft bills
    assert attempts["att-1"] == ("span", "T1", "wf-a", "team-x", None, 5, "0.200000000000", 1)
    # t2: the root's correlation id wins for the bare span, the early non-root keeps its own
    assert attempts["c-root"][:2] == ("span", "c-root") and attempts["c-root"][5] == 2
    assert attempts["c-child"][5] == 1
    # t3 + t4: one attempt; the workflow of t4's root beats t3's earlier non-root span
    assert attempts["att-34"][2:6] == ("wf-b", "team-y", "v7", 3)
    # t5: resource correlation id, then the trace id
    assert attempts["res-5"][0] == "resource" and attempts[trace("t5")][0] == "trace_id"
    # t6: a span naming the workflow beats every resource stand-in; team from the resource
    assert attempts[trace("t6")][1:4] == ("T6", "wf-6", "ns-6")
    # t9: the task's version is its first attempt's
    tasks = dict(con.execute("SELECT task_key, version FROM tasks").fetchall())
    assert tasks["T9"] == "v1"
    roles = dict(
        con.execute(
            "SELECT name, resolved_role FROM span_tree(?)", [[trace("t7"), trace("t1")]]
        ).fetchall()
    )
    assert roles["t7-kid"] == "verifier"  # grandparent, two files away
    assert roles["t7-orphan"] == "model"  # parent never arrived: its own operation
    assert roles["t1-tool"] == "planner"  # grandparent in another file and day
    breakdown = dict(
        con.execute(
            "SELECT role, sum(spend_usd)::VARCHAR FROM span_breakdown WHERE attempt_id = 'att-7'"
            " GROUP BY ALL"
        ).fetchall()
    )
    assert breakdown == {"verifier": "0.500000000000", "model": "0.250000000000"}
    con.close()


# ----------------------------------------------------------------------------- random lakes


def random_rows(seed: int, traces: int = 60) -> list[dict[str, Any]]:
    """Traces of random shape; correlation ids, task ids, roles and workflows on random spans,
    some shared across traces; model calls nested in model calls, some through a tool."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    corr_pool = [f"c{i}" for i in range(traces // 3)]
    for t in range(traces):
        name = f"r{seed}-{t}"
        start = at(rng.uniform(0, 60))
        spans: list[str] = []
        for i in range(rng.randint(1, 9)):
            sname = f"{name}-{i}"
            parent = rng.choice(spans) if spans and rng.random() < 0.9 else None
            if parent is None and spans and rng.random() < 0.5:
                parent = f"{name}-missing"
            op = rng.choice(["chat", "chat", "execute_tool", "retrieval", "invoke_agent", None])
            rows.append(
                span(
                    name,
                    sname,
                    parent=parent,
                    start=start + timedelta(seconds=rng.choice([0, 0, 1, 2, 3]) * 7),
                    ms=rng.randint(1, 5000),
                    op=op,
                    cost=rng.choice([None, "0.01", "0.125", "1"]) if op == "chat" else None,
                    model=rng.choice(["m1", "m2", None]) if op == "chat" else None,
                    provider=rng.choice(["p1", "p2"]) if op == "chat" else None,
                    tokens=(rng.randint(1, 999), rng.randint(1, 99)) if op == "chat" else None,
                    error=rng.random() < 0.1,
                    correlation_id=rng.choice(corr_pool) if rng.random() < 0.3 else None,
                    resource_correlation_id=f"res{t % 5}" if rng.random() < 0.15 else None,
                    task_id=f"task{rng.randrange(traces // 2)}" if rng.random() < 0.2 else None,
                    workflow=rng.choice(["w1", "w2"]) if rng.random() < 0.2 else None,
                    team=rng.choice(["x", "y"]) if rng.random() < 0.2 else None,
                    workflow_version=rng.choice(["v1", "v2"]) if rng.random() < 0.2 else None,
                    role=rng.choice(["planner", "critic"]) if rng.random() < 0.25 else None,
                    resource_workflow=rng.choice(["s1", "s2", None]),
                    resource_team=rng.choice(["n1", None]),
                )
            )
            spans.append(sname)
    return rows


def scatter(
    lake: Path | str, rows: list[dict[str, Any]], seed: int, files: int, copies: float
) -> None:
    """``rows`` over ``files`` commits at random, and a share ``copies`` of them sent again
    (received later, with other content): the copies must never count."""
    rng = random.Random(seed)
    by_file: list[list[dict[str, Any]]] = [[] for _ in range(files)]
    for row in rows:
        by_file[rng.randrange(files)].append(row)
    for row in rng.sample(rows, int(len(rows) * copies)):
        again = {**row, "ingested_at": row["ingested_at"] + 1, "cost_usd": None, "name": "copy"}
        by_file[rng.randrange(files)].append(again)
    for i, part in enumerate(by_file):
        if part:
            write_spans(lake, part, f"f{i}")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_lakes_match_reference(lake: str, seed: int) -> None:
    scatter(lake, random_rows(seed), seed, files=6, copies=0)
    assert_views_match_reference(lake)


@pytest.mark.parametrize("seed", [4, 5])
def test_answers_do_not_depend_on_files_or_copies(tmp_path: Path, seed: int) -> None:
    """The same spans in one file, or scattered over many with copies received later: the
    same attempts, tasks and breakdown."""
    rows = random_rows(seed)
    one_lake, many_lake = new_lake(tmp_path, "one"), new_lake(tmp_path, "many")
    scatter(one_lake, rows, seed, files=1, copies=0)
    scatter(many_lake, rows, seed, files=7, copies=0.3)
    one, many = _connect(one_lake), _connect(many_lake)
    try:
        for sql in (
            f"SELECT {ATTEMPT_COLUMNS} FROM attempts",
            f"SELECT {TASK_COLUMNS} FROM tasks",
            "SELECT task_key, role, billable, provider, model, spans, spend_usd FROM"
            " task_breakdown",
            "SELECT trace_id, span_id, name, cost_usd FROM spans",
        ):
            assert _rows(one, sql) == _rows(many, sql)
        assert many.execute("SELECT count(*) FROM spans WHERE name = 'copy'").fetchone() == (0,)
    finally:
        one.close()
        many.close()
    assert_views_match_reference(many_lake)


# ----------------------------------------------------------------------------- the rules


def test_only_the_innermost_model_call_bills(lake: str) -> None:
    """A chat span wrapping the SDK's chat span; a span with a model and tokens but no
    operation over model-call children; and a model call a tool makes on its own."""
    write_spans(
        lake,
        [
            span("w1", "gateway", start=at(0), op="chat", cost="1.00", tokens=(100, 10)),
            span(
                "w1", "sdk", parent="gateway", start=at(0), op="chat", cost="1.00", tokens=(100, 10)
            ),
            span("w2", "agent", start=at(1), op="chat", cost="0.90", tokens=(90, 9)),
            span("w2", "step", parent="agent", start=at(1)),
            span("w2", "call-a", parent="step", start=at(1), op="chat", cost="0.40"),
            span("w2", "call-b", parent="step", start=at(1), op="chat", cost="0.50"),
            span("w3", "planner", start=at(2), op="chat", cost="0.10"),
            span("w3", "tool", parent="planner", start=at(2), op="execute_tool"),
            span("w3", "tool-llm", parent="tool", start=at(2), op="chat", cost="0.05"),
        ],
        "w",
    )
    con = _connect(lake)
    spend = dict(con.execute("SELECT attempt_id, spend_usd::VARCHAR FROM attempts").fetchall())
    assert spend[trace("w1")] == "1.000000000000"
    assert spend[trace("w2")] == "0.900000000000"  # 0.40 + 0.50, not the roll-up on top
    assert spend[trace("w3")] == "0.150000000000"  # the tool's own call counts
    billed = dict(con.execute("SELECT name, billed FROM span_tree(?)", [[trace("w1")]]).fetchall())
    assert billed == {"gateway": False, "sdk": True}
    calls = dict(con.execute("SELECT attempt_id, model_calls FROM attempts").fetchall())
    assert calls[trace("w2")] == 2
    assert con.execute("SELECT count(*) FROM llm_calls").fetchone() == (5,)
    assert_views_match_reference(lake)
    con.close()


def test_a_span_received_twice_counts_once_and_the_first_copy_wins(lake: str) -> None:
    first = span("d1", "call", start=at(0), op="chat", cost="0.30", task_id="D1")
    later = {**first, "ingested_at": first["ingested_at"] + 5, "cost_usd": Decimal("9")}
    write_spans(lake, [first], "a")
    write_spans(lake, [later, later], "b")  # twice more, in another commit
    con = _connect(lake)
    assert con.execute("SELECT count(*), sum(cost_usd)::VARCHAR FROM spans").fetchone() == (
        1,
        "0.300000000000",
    )
    assert con.execute("SELECT spend_usd::VARCHAR, spans FROM attempts").fetchone() == (
        "0.300000000000",
        1,
    )
    con.close()


def test_span_ids_are_hex() -> None:
    assert len(sid("x")) == 16 and len(trace("x")) == 32
