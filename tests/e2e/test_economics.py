"""Cost per completed task through the real pipeline: the OTel SDK's exporters -> ``tasklake
serve`` -> the lake -> the HTTP API. Spans come in batches through the SDK's OTLP exporter,
completion signals through ``POST /api/v1/signals`` and as OTel log records (HTTP and gRPC),
cost entries through ``POST /api/v1/costs``; every figure is read back over HTTP.

Every scenario runs on one server and is told apart by its workflow. Times are fixed in
October 2026 and answers are read ``as_of`` 2026-11-15, so every window is decidable.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest
import requests

from tests.e2e.agents import (
    Attempt,
    Call,
    api,
    chat,
    emit,
    log_signals,
    ns,
    post_signals,
    rows_by,
    tracing,
)
from tests.e2e.harness import Server
from tests.lakes import both_lakes
from tests.s3 import S3

T = TypeVar("T")

AS_OF = "2026-11-15T00:00:00Z"
OCTOBER = datetime(2026, 10, 1, tzinfo=UTC)
CONFIG = """
[[prices]]                # USD per million tokens: every attempt's cost is exact
model = "acme-large"
input = 30.00
output = 150.00

[[prices]]
model = "acme-medium"
input = 5.00
output = 20.00

[[prices]]
model = "acme-small"
input = 0.50
output = 2.00

[workflows.support-triage]
reopen_window = "48h"

[workflows.reopen-check]
reopen_window = "48h"
"""
#: The worked example: v1 blends a large planner call ($0.90) with a medium drafter call
#: ($0.108): 20,000 tokens and $1.008 per attempt; v2 drafts in one call of the large model
#: with a tight prompt: 4,000 tokens and $0.3486 (a dearer token, five times fewer of them).
V1_CALLS = (
    Call("planner", "acme-large", 3_250, 5_350),
    Call("drafter", "acme-medium", 8_000, 3_400),
)
V2_CALLS = (Call("drafter", "acme-large", 2_095, 1_905),)
ATTEMPTS = 10_000


@pytest.fixture(scope="module", params=both_lakes())
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The server over a local lake, and over an S3-compatible one (moto): the same suite."""
    base = tmp_path_factory.mktemp("economics")
    config = base / "tasklake.toml"
    config.write_text(CONFIG)
    store: S3 | None = request.getfixturevalue("s3") if request.param == "s3" else None
    srv = Server(
        lake=base / "lake",
        log=base / "server.log",
        args=("--config", str(config), "--flush-interval", "0.2"),
        env=store.env if store else {},
        uri=store.lake("economics") if store else None,
        local=store is None,
    ).start()
    try:
        yield srv
    finally:
        srv.stop()


def until(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 90.0) -> T:
    """Read until ``done`` holds (ingest is asynchronous after the acknowledgement)."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.25)
        value = read()
    return value


def cost(server: Server, **params: Any) -> Any:
    return api(server, "/api/v1/cost-per-task", as_of=AS_OF, **params)


def task(server: Server, key: str) -> Any:
    return api(server, f"/api/v1/tasks/{key}", as_of=AS_OF)


def cents(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


# ----------------------------------------------------------------------------- worked example


def test_the_worked_example(server: Server) -> None:
    """Support triage, 10,000 attempts a month per version: v1 $1.40 and v2 $0.38 per
    completed ticket."""
    step = timedelta(days=31) / ATTEMPTS
    signals: dict[str, list[dict[str, Any]]] = {"v1": [], "v2": []}
    with tracing(server) as (tracer, _):
        for version, calls, failing in (("v1", V1_CALLS, 2800), ("v2", V2_CALLS, 900)):
            for i in range(ATTEMPTS):
                start = OCTOBER + i * step
                key = f"{version}-ticket-{i:05d}"
                emit(
                    tracer,
                    Attempt(
                        f"{version}-attempt-{i:05d}",
                        start,
                        calls,
                        task_id=key,
                        workflow="support-triage",
                        version=version,
                        team="support",
                    ),
                )
                # ``failing`` of the attempts fail, spread evenly
                fails = (i * failing) // ATTEMPTS != ((i + 1) * failing) // ATTEMPTS
                signals[version].append(
                    {
                        "task_id": key,
                        "outcome": "failed" if fails else "completed",
                        "occurred_at": start + timedelta(hours=1),
                        "signal_id": f"{key}-outcome",
                    }
                )
    for version, failing in (("v1", 2800), ("v2", 900)):
        outcomes = [s["outcome"] for s in signals[version]]
        assert outcomes.count("failed") == failing, version
    # v1's signals through the REST API, v2's as OTel log records over HTTP and gRPC
    assert post_signals(server, signals["v1"]) == ATTEMPTS
    log_signals(server, signals["v2"][:5000], protocol="http")
    log_signals(server, signals["v2"][5000:], protocol="grpc")

    def read() -> dict[tuple[Any, ...], dict[str, Any]]:
        doc = cost(server, group_by="workflow,version", workflow="support-triage")
        return rows_by(doc, "workflow", "version")

    rows = until(
        read,
        lambda r: (
            len(r) == 2
            # every attempt and every outcome landed (a task whose signal is still on its
            # way counts as abandoned: October is past the abandon timeout)
            and all(
                row["attempts"] == ATTEMPTS and row["completed"] + row["failed"] == ATTEMPTS
                for row in r.values()
            )
        ),
    )
    v1, v2 = rows[("support-triage", "v1")], rows[("support-triage", "v2")]
    assert (v1["attempts"], v1["tasks"], v1["completed"], v1["failed"]) == (
        10000,
        10000,
        7200,
        2800,
    )
    assert v1["spend_usd"] == Decimal("10080")
    assert Decimal(str(v1["cost_per_attempt_usd"])).quantize(Decimal("0.0001")) == Decimal("1.008")
    assert cents(v1["cost_per_completed_task_usd"]) == Decimal("1.40")
    assert v1["success_rate"] == Decimal("0.72") and v1["unpriced_spans"] == 0
    assert (v2["attempts"], v2["tasks"], v2["completed"], v2["failed"]) == (10000, 10000, 9100, 900)
    assert v2["spend_usd"] == Decimal("3486")
    assert Decimal(str(v2["cost_per_attempt_usd"])).quantize(Decimal("0.0001")) == Decimal("0.3486")
    assert Decimal(str(v2["cost_per_completed_task_usd"])).quantize(Decimal("0.0001")) == Decimal(
        "0.3831"
    )
    assert cents(v2["cost_per_completed_task_usd"]) == Decimal("0.38")
    sources = task(server, "v2-ticket-09999")["signals"]
    assert [s["source"] for s in sources] == ["otlp-logs"]

    # role rows sum to the workflow row (and keep its denominators)
    by_role = cost(server, group_by="workflow,version,role", workflow="support-triage")["rows"]
    for version, row in (("v1", v1), ("v2", v2)):
        mine = [r for r in by_role if r["version"] == version]
        assert sum(r["spend_usd"] for r in mine) == row["spend_usd"]
        assert {r["completed"] for r in mine} == {row["completed"]}
        assert {r["role"] for r in mine} >= {"drafter"}
    planner = next(r for r in by_role if r["version"] == "v1" and r["role"] == "planner")
    assert planner["spend_usd"] == Decimal("9000")

    # the v1 -> v2 table, and why cost per completed ticket moved (LMDI, exact)
    doc = api(
        server,
        "/api/v1/compare",
        workflow="support-triage",
        a="version:v1",
        b="version:v2",
        as_of=AS_OF,
    )
    table = {r["metric"]: r for r in doc["rows"]}
    assert (table["tokens_per_attempt"]["a"], table["tokens_per_attempt"]["b"]) == (20000, 4000)
    assert table["cost_per_attempt_usd"]["a"] == Decimal("1.008")
    assert table["cost_per_attempt_usd"]["b"] == Decimal("0.3486")
    assert (table["failure_rate"]["a"], table["failure_rate"]["b"]) == (
        Decimal("0.28"),
        Decimal("0.09"),
    )
    assert cents(table["cost_per_completed_task_usd"]["a"]) == Decimal("1.40")
    assert cents(table["cost_per_completed_task_usd"]["b"]) == Decimal("0.38")
    assert (table["completed"]["a"], table["completed"]["b"]) == (7200, 9100)
    assert (table["spend_usd"]["a"], table["spend_usd"]["b"]) == (Decimal(10080), Decimal(3486))
    split = doc["decomposition"]
    assert split["method"].startswith("LMDI")
    change = split["total_change_usd"]  # $0.383076923077 - $1.40, exact to 1e-12
    assert change == Decimal("0.383076923077") - Decimal("1.4")
    parts = split["parts"]
    assert set(parts) == {"price_per_token", "tokens_per_attempt", "attempts_per_completed_task"}
    assert abs(sum(parts.values()) - change) < Decimal("1e-9")
    # a dearer token (+$0.43), five times fewer tokens (-$1.26), fewer retries (-$0.18)
    assert parts["price_per_token"] > 0 > parts["tokens_per_attempt"]
    assert parts["attempts_per_completed_task"] < 0
    assert round(parts["tokens_per_attempt"], 2) == Decimal("-1.26")
    csv = requests.get(
        server.url + "/api/v1/compare",
        params={
            "workflow": "support-triage",
            "a": "version:v1",
            "b": "version:v2",
            "format": "csv",
            "as_of": AS_OF,
        },
        timeout=60,
    ).text.splitlines()
    assert csv[0] == "metric,a,b,change" and "tokens_per_attempt,20000.0,4000.0,-16000.0" in csv


# ----------------------------------------------------------------------------- the edge cases

SMALL = Call("drafter", "acme-small", 100_000, 10_000)  # $0.05 + $0.02 = $0.07


def _attempts(server: Server, *attempts: Attempt) -> None:
    with tracing(server) as (tracer, _):
        for a in attempts:
            emit(tracer, a)


def _wait_tasks(server: Server, workflow: str, tasks: int, attempts: int) -> dict[str, Any]:
    def read() -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = cost(server, workflow=workflow)["rows"]
        return rows

    rows = until(
        read, lambda r: len(r) == 1 and (r[0]["tasks"], r[0]["attempts"]) == (tasks, attempts)
    )
    assert len(rows) == 1, rows
    return rows[0]


def test_reopened_inside_the_window_is_not_completed(server: Server) -> None:
    start = OCTOBER + timedelta(days=3)
    _attempts(
        server,
        Attempt("R30-a", start, [SMALL], task_id="R30", workflow="reopen-check"),
        Attempt("R49-a", start, [SMALL], task_id="R49", workflow="reopen-check"),
    )
    resolved = start + timedelta(hours=1)
    post_signals(
        server,
        [
            {"task_id": "R30", "outcome": "completed", "occurred_at": resolved},
            {
                "task_id": "R30",
                "outcome": "reopened",
                "occurred_at": resolved + timedelta(hours=30),
            },
            {"task_id": "R49", "outcome": "completed", "occurred_at": resolved},
            {
                "task_id": "R49",
                "outcome": "reopened",
                "occurred_at": resolved + timedelta(hours=49),
            },
        ],
    )
    row = until(
        lambda: _wait_tasks(server, "reopen-check", 2, 2),
        lambda r: r["completed"] + r["failed"] == 2,
    )
    assert (row["completed"], row["failed"], row["pending"]) == (1, 1, 0)
    assert task(server, "R30")["task"]["outcome"] == "reopened"  # counted as a failure
    assert task(server, "R30")["task"]["counted_as"] == "failed"
    assert task(server, "R49")["task"]["outcome"] == "completed"  # 48 h window: too late
    assert row["cost_per_completed_task_usd"] == Decimal("0.14")


def test_failed_attempts_count_against_the_completed_task(server: Server) -> None:
    start = OCTOBER + timedelta(days=4)
    _attempts(
        server,
        *(
            Attempt(
                f"RT-1-{n}",
                start + timedelta(minutes=20 * n),
                [SMALL],
                task_id="RT-1",
                workflow="retry-check",
            )
            for n in range(3)
        ),
    )
    post_signals(
        server,
        [
            {
                "correlation_id": "RT-1-0",
                "outcome": "failed",
                "occurred_at": start + timedelta(minutes=10),
            },
            {
                "correlation_id": "RT-1-1",
                "outcome": "failed",
                "occurred_at": start + timedelta(minutes=30),
            },
            {"task_id": "RT-1", "outcome": "completed", "occurred_at": start + timedelta(hours=1)},
        ],
    )
    row = until(lambda: _wait_tasks(server, "retry-check", 1, 3), lambda r: r["completed"] == 1)
    assert (row["tasks"], row["attempts"], row["completed"]) == (1, 3, 1)
    assert row["spend_usd"] == Decimal("0.21")  # three attempts' spend ...
    assert row["cost_per_completed_task_usd"] == Decimal("0.21")  # ... over one completed task
    assert row["cost_per_attempt_usd"] == Decimal("0.07")
    doc = task(server, "RT-1")
    assert [a["attempt_id"] for a in doc["attempts"]] == ["RT-1-0", "RT-1-1", "RT-1-2"]
    assert len(doc["signals"]) == 3


def test_a_duplicate_signal_id_counts_once(server: Server) -> None:
    start = OCTOBER + timedelta(days=5)
    _attempts(server, Attempt("D-1-a", start, [SMALL], task_id="D-1", workflow="dup-check"))
    done = {
        "task_id": "D-1",
        "outcome": "completed",
        "occurred_at": start + timedelta(hours=1),
        "signal_id": "dup-1",
    }
    post_signals(server, [done])
    post_signals(server, [done])  # a retried webhook
    # the same id again, as a log record with other content: the first one received counts
    log_signals(server, [{**done, "outcome": "failed"}])
    row = until(lambda: _wait_tasks(server, "dup-check", 1, 1), lambda r: r["completed"] == 1)
    assert (row["completed"], row["failed"]) == (1, 0)
    doc = until(lambda: task(server, "D-1"), lambda d: d["task"]["signals"] == 1)
    assert doc["task"]["signals"] == 1
    assert [(s["signal_id"], s["outcome"]) for s in doc["signals"]] == [("dup-1", "completed")]


def test_a_signal_arriving_after_a_query_changes_the_next_answer(server: Server) -> None:
    start = OCTOBER + timedelta(days=6)
    _attempts(server, Attempt("L-1-a", start, [SMALL], task_id="L-1", workflow="late-check"))
    before = _wait_tasks(server, "late-check", 1, 1)
    assert (before["abandoned"], before["completed"]) == (1, 0)  # no signal within 7 days
    assert before["cost_per_completed_task_usd"] is None
    post_signals(
        server,
        [{"task_id": "L-1", "outcome": "completed", "occurred_at": start + timedelta(hours=2)}],
    )
    after = until(lambda: _wait_tasks(server, "late-check", 1, 1), lambda r: r["completed"] == 1)
    assert (after["abandoned"], after["completed"]) == (0, 1)
    assert after["cost_per_completed_task_usd"] == Decimal("0.07")


def test_an_attempt_sent_in_separate_requests_and_traces_is_one_attempt(server: Server) -> None:
    start = OCTOBER + timedelta(days=7)
    with tracing(server) as (tracer, provider):
        emit(tracer, Attempt("SP-1", start, [SMALL], task_id="SP-task", workflow="split-check"))
        assert provider.force_flush()
        # later, from another process: a new trace that names the same attempt
        chat(tracer, SMALL, ns(start + timedelta(minutes=5)), attributes={"correlation.id": "SP-1"})
    post_signals(
        server,
        [{"task_id": "SP-task", "outcome": "completed", "occurred_at": start + timedelta(hours=1)}],
    )
    row = until(
        lambda: _wait_tasks(server, "split-check", 1, 1),
        lambda r: r["spend_usd"] == Decimal("0.14"),
    )
    assert (row["tasks"], row["attempts"], row["spend_usd"]) == (1, 1, Decimal("0.14"))
    (attempt,) = task(server, "SP-task")["attempts"]
    assert (attempt["attempt_id"], attempt["traces"], attempt["model_calls"]) == ("SP-1", 2, 2)


def test_an_unpriced_span_is_reported_not_zeroed(server: Server) -> None:
    start = OCTOBER + timedelta(days=8)
    mystery = Call("verifier", "mystery-model-9000", 1000, 100, provider="nobody-knows")
    _attempts(
        server, Attempt("U-1-a", start, [SMALL, mystery], task_id="U-1", workflow="unpriced-check")
    )
    row = until(
        lambda: _wait_tasks(server, "unpriced-check", 1, 1), lambda r: r["unpriced_spans"] == 1
    )
    assert (row["unpriced_spans"], row["spend_usd"]) == (1, Decimal("0.07"))
    doc = task(server, "U-1")
    calls = {s["response_model"] or s["request_model"]: s for s in _walk(doc["spans"])}
    assert calls["mystery-model-9000"]["cost_usd"] is None
    assert calls["mystery-model-9000"]["cost_source"] == "unpriced"
    assert calls["acme-small"]["cost_usd"] == Decimal("0.07")


def _walk(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for n in nodes:
        out.append(n)
        out.extend(_walk(n["children"]))
    return out


def test_fully_loaded_components_add_up_to_the_total(server: Server) -> None:
    november = datetime(2026, 11, 2, tzinfo=UTC)
    _attempts(
        server,
        Attempt("LA-1-a", november, [SMALL], task_id="LA-1", workflow="loaded-a", team="ops"),
        Attempt(
            "LA-2-a",
            november + timedelta(days=1),
            [SMALL],
            task_id="LA-2",
            workflow="loaded-a",
            team="ops",
        ),
        Attempt(
            "LB-1-a",
            november + timedelta(days=2),
            [SMALL],
            task_id="LB-1",
            workflow="loaded-b",
            team="ops",
        ),
    )
    hour = timedelta(hours=1)
    post_signals(
        server,
        [
            {"task_id": "LA-1", "outcome": "completed", "occurred_at": november + hour},
            {
                "task_id": "LA-2",
                "outcome": "failed",
                "occurred_at": november + timedelta(days=1) + hour,
            },
            {
                "task_id": "LB-1",
                "outcome": "rework",
                "rework_cost_usd": 2.5,
                "occurred_at": november + timedelta(days=2) + hour,
            },
            {
                "task_id": "LB-1",
                "outcome": "completed",
                "occurred_at": november + timedelta(days=2, hours=3),
            },
        ],
    )
    entries = [
        {
            "component": "labor",
            "amount_usd": "40",
            "workflow": "loaded-a",
            "period_start": "2026-11-01",
            "period_end": "2026-11-15",
            "entry_id": "labor-a",
        },
        {
            "component": "infrastructure",
            "amount_usd": "10",
            "period_start": "2026-11-01",
            "period_end": "2026-11-15",
            "entry_id": "infra-all",
        },
        {
            "component": "licence",
            "amount_usd": "5",
            "team": "nobody",
            "period_start": "2026-11-01",
            "period_end": "2026-12-01",
            "entry_id": "lic-nobody",
        },
    ]
    resp = requests.post(server.url + "/api/v1/costs", json=entries, timeout=30)
    assert resp.status_code == 200 and resp.json() == {"accepted": 3, "rejected": []}

    def read() -> Any:
        return cost(server, group_by="workflow", workflow="loaded-a,loaded-b", cost="full")

    doc = until(
        read,
        lambda d: (
            sum(r["attempts"] for r in d["rows"]) == 3
            and sum(r["pending"] for r in d["rows"]) == 0
            and sum(r["labor_usd"] for r in d["rows"]) == 40
            and sum(r["rework_usd"] for r in d["rows"]) == Decimal("2.5")
        ),
    )
    rows = rows_by(doc, "workflow")
    a, b = rows[("loaded-a",)], rows[("loaded-b",)]
    parts = (
        "inference_usd",
        "rework_usd",
        "labor_usd",
        "infrastructure_usd",
        "licence_usd",
        "other_usd",
    )
    for row in (a, b):
        assert sum(row[p] for p in parts) == row["spend_usd"]  # exactly, every row
    # labor to its workflow; infrastructure by share of inference spend (0.14 : 0.07); the
    # rework cost of LB-1's signal to LB-1; the licence of a team without spend nowhere
    assert [a[p] for p in parts] == [Decimal("0.14"), 0, 40, Decimal("6.666666666667"), 0, 0]
    assert [b[p] for p in parts] == [
        Decimal("0.07"),
        Decimal("2.5"),
        0,
        Decimal("3.333333333333"),
        0,
        0,
    ]
    assert a["spend_usd"] == Decimal("46.806666666667")
    assert a["cost_per_completed_task_usd"] == Decimal("46.806666666667")  # LA-2 failed
    assert cents(b["cost_per_completed_task_usd"]) == Decimal("5.90")
    assert [u["entry_id"] for u in doc["unallocated"]] == ["lic-nobody"]
    assert doc["unallocated_usd"] == 5
    # every grouping adds up to the same total
    total = a["spend_usd"] + b["spend_usd"]
    for group_by in ("team", "role", "workflow,model", "month,provider"):
        grouped = cost(server, group_by=group_by, workflow="loaded-a,loaded-b", cost="full")
        assert sum(r["spend_usd"] for r in grouped["rows"]) == total, group_by
        for row in grouped["rows"]:
            assert sum(row[p] for p in parts) == row["spend_usd"], (group_by, row)
    csv = requests.get(
        server.url + "/api/v1/cost-per-task",
        params={"workflow": "loaded-a", "cost": "full", "format": "csv", "as_of": AS_OF},
        timeout=30,
    ).text.splitlines()
    assert csv[0].endswith(",".join(parts))
    assert csv[1].startswith("loaded-a,") and ",46.806666666667," in csv[1]


def test_bad_input_is_refused_clearly_and_loses_nothing_accepted(server: Server) -> None:
    start = OCTOBER + timedelta(days=9)
    _attempts(server, Attempt("BAD-1-a", start, [SMALL], task_id="BAD-1", workflow="bad-input"))
    url = server.url + "/api/v1/signals"
    good = {
        "task_id": "BAD-1",
        "outcome": "escalated",
        "occurred_at": "2026-10-10T01:00:00Z",
        "signal_id": "bad-ok-1",
    }
    answer = requests.post(url, json=good, timeout=30).json()
    # its spans may still be on their way to the lake: a warning may say BAD-1 is not known yet
    assert (answer["accepted"], answer["rejected"]) == (1, [])
    assert all("not known (yet)" in w["warning"] for w in answer["warnings"])
    mixed = [
        {"task_id": "BAD-1", "outcome": "weird"},
        {
            "task_id": "BAD-1",
            "outcome": "reopened",
            "occurred_at": "2026-10-10T02:00:00Z",
            "signal_id": "bad-ok-2",
        },
        {"task_id": "BAD-1", "outcome": "failed", "occurred_at": "yesterday"},
    ]
    resp = requests.post(url, json=mixed, timeout=30)
    assert resp.status_code == 200
    assert [(r["index"], r["error"].split(":")[0]) for r in resp.json()["rejected"]] == [
        (0, "outcome"),
        (2, "occurred_at"),
    ]

    def refused(resp: requests.Response, status: int) -> None:
        assert resp.status_code == status, resp.text
        assert resp.json()["error"]["status"] == status and resp.json()["error"]["message"]

    refused(
        requests.post(
            url, data=b"{not json", headers={"Content-Type": "application/json"}, timeout=30
        ),
        400,
    )
    refused(requests.post(url, data=b"a,b", headers={"Content-Type": "text/csv"}, timeout=30), 415)
    bomb = gzip.compress(b" " * (65 * 1024 * 1024))  # 65 MiB of blanks: over the 64 MiB limit
    refused(
        requests.post(
            url,
            data=bomb,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            timeout=60,
        ),
        413,
    )
    cost_resp = requests.post(
        server.url + "/api/v1/costs",
        json=[
            {
                "component": "snacks",
                "amount_usd": 5,
                "period_start": "2026-10-01",
                "period_end": "2026-11-01",
            }
        ],
        timeout=30,
    )
    refused(cost_resp, 400)
    assert cost_resp.json()["rejected"][0]["error"].startswith("component")
    # the two signals accepted along the way are there, once each
    _wait_tasks(server, "bad-input", 1, 1)
    doc = until(lambda: task(server, "BAD-1"), lambda d: len(d["signals"]) == 2)
    assert [s["signal_id"] for s in doc["signals"]] == ["bad-ok-1", "bad-ok-2"]
    assert doc["task"]["outcome"] == "reopened"
