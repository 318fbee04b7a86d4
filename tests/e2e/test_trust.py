"""No accepted write can break a read: the extremes of every field, written through the real
``tasklake serve`` (OTLP/JSON spans and logs, signals, cost entries), then every read endpoint
and format — before and after a restart — answers without a 5xx, and sanely.

Extremes: span times at the validator's bounds ([1 ns, 2262-01-01)), ids holding ``/``, ``"``,
CR/LF, unicode, emoji and thousands of characters, attributes of every OTLP and JSON type;
money at 0, 1e-12 and 10^15 USD; signal times from 1970 up to the clock; cost periods from
1970 to 2262; signals for unknown tasks and for other workflows.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
import requests

from schemas.jsonitems import TIME_END_NS, ns_to_iso
from service.api.cost_per_task import GROUP_KEYS
from tests.e2e.harness import Server, query, wait_for

ODD = [
    "plain",
    "team/a/TICKET-1",
    "/leading/and/trailing/",
    'quote " and \\ backslash',
    "crlf\r\nHeader-Injection: yes",
    "ünïcødé-日本語-🎉👩‍💻",
    "x" * 3000,
    "%2F-looks-encoded",
    "semi;colon,comma=equals?query#hash",
]
#: The ids a signal or cost entry may name (at most 512 characters).
NAMES = [i for i in ODD if len(i) <= 512]
LAST_NS = TIME_END_NS - 1  # 2261-12-31T23:59:59.999999999Z
MAX_USD = "1000000000000000"
NOW_NS = time.time_ns()


def _value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, bytes):
        return {"bytesValue": base64.b64encode(v).decode()}
    if isinstance(v, list):
        return {"arrayValue": {"values": [_value(x) for x in v]}}
    if isinstance(v, dict):
        return {"kvlistValue": {"values": _attrs(v)}}
    if v is None:
        return {}
    return {"stringValue": v}


def _attrs(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in values.items()]


EVERY_TYPE = {
    "s": "text \r\n\"'\\ 🎉",
    "empty": "",
    "b": True,
    "i": 2**63 - 1,
    "neg": -(2**63),
    "d": 1.7976931348623157e308,
    "tiny": 5e-324,
    "bytes": b"\x00\xff",
    "arr": [1, "two", 3.0, False, None, [1]],
    "kv": {"nested": {"deeper": ["x"]}, "n": None},
    "none": None,
}


def _spans() -> bytes:
    spans = []
    for i, task in enumerate(ODD):
        start = 1 if i % 2 == 0 else LAST_NS - 10**9  # at both ends of the accepted range
        end = start + 1 if i % 2 == 0 else LAST_NS
        trace = f"{i + 1:032x}"
        root, call = f"{i + 1:016x}", f"{i + 101:016x}"
        common = {"task.id": task, "correlation.id": f"{task}#attempt", "workflow.id": task}
        spans.append(
            {
                "traceId": trace,
                "spanId": root,
                "name": task,
                "kind": 1,
                "startTimeUnixNano": str(start),
                "endTimeUnixNano": str(end),
                "attributes": _attrs({**common, **EVERY_TYPE, "team.id": task}),
                "events": [
                    {"timeUnixNano": str(end), "name": task, "attributes": _attrs(EVERY_TYPE)}
                ],
                "links": [{"traceId": trace, "spanId": call, "attributes": _attrs(EVERY_TYPE)}],
                "status": {"code": 2, "message": task},
            }
        )
        spans.append(
            {
                "traceId": trace,
                "spanId": call,
                "parentSpanId": root,
                "name": "chat",
                "kind": 3,
                "startTimeUnixNano": str(start),
                "endTimeUnixNano": str(end),
                "attributes": _attrs(
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.provider.name": "openai",
                        "gen_ai.request.model": "gpt-4o" if i % 3 else f"unknown-{task}",
                        "gen_ai.usage.input_tokens": 10**6,
                        "gen_ai.usage.output_tokens": 0,
                        "workflow.role": task,
                        "correlation.id": f"{task}#attempt",
                    }
                ),
            }
        )
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": _attrs({"service.name": ODD[4], **EVERY_TYPE})},
                "scopeSpans": [{"scope": {"name": ODD[5]}, "spans": spans}],
            }
        ]
    }
    return json.dumps(doc).encode()


def _signals() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, task in enumerate(ODD):
        out.append(
            {
                "task_id": task,
                "outcome": "completed",
                "occurred_at": ns_to_iso(NOW_NS - i),
                "rework_cost_usd": [MAX_USD, "0.000000000001", 0][i % 3],
                "rework_minutes": 1e300,
                "reason": task,
                "signal_id": f"sig/{task}",
                "attributes": {"every": EVERY_TYPE_JSON, "big": 2**70, "f": 0.1, "n": None},
            }
        )
    out += [
        {"task_id": "never-seen/🎉", "outcome": "rework", "rework_cost_usd": MAX_USD},
        {"correlation_id": ODD[1] + "#attempt", "outcome": "failed", "workflow": "another\r\n"},
        {"task_id": ODD[0], "outcome": "reopened", "occurred_at": "1970-01-01T00:00:00Z"},
        {"task_id": ODD[2], "outcome": "abandoned", "occurred_at": ns_to_iso(NOW_NS + 10**9)},
    ]
    return out


EVERY_TYPE_JSON: dict[str, Any] = {
    "s": "text \r\n\"'\\ 🎉",
    "t": True,
    "i": -(2**63),
    "arr": [1, [2, {"x": None}]],
    "obj": {"k": "v"},
}


def _costs() -> list[dict[str, Any]]:
    periods = [
        ("1970-01-01", "1970-01-01T00:00:00.000000001Z"),
        ("2261-12-31", "2262-01-01"),
        ("1970-01-01", "2262-01-01"),
        ("2026-01-01T00:00:00+14:00", "2026-01-01T00:00:00-12:00"),
    ]
    out = []
    for i, (start, end) in enumerate(periods):
        for amount in (MAX_USD, "0.000000000001", "0"):
            out.append(
                {
                    "component": ("rework", "labor", "infrastructure", "licence", "other")[i],
                    "amount_usd": amount,
                    "period_start": start,
                    "period_end": end,
                    "workflow": NAMES[i % len(NAMES)] if i % 2 else None,
                    "team": NAMES[(i + 3) % len(NAMES)] if i > 1 else None,
                    "note": NAMES[i],
                    "entry_id": f"e/{i}/{amount}",
                }
            )
    return out


def _logs() -> bytes:
    records = [
        {
            "timeUnixNano": str(t),
            "attributes": _attrs(
                {
                    "task.outcome": "rework",
                    "task.id": ODD[i % len(ODD)],
                    "task.rework_cost_usd": 1e15 if i else 0.0,
                    **EVERY_TYPE,
                }
            ),
            "body": {"stringValue": ODD[4]},
        }
        for i, t in enumerate((1, NOW_NS - 5, 0))
    ]
    doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}
    return json.dumps(doc).encode()


def _post(server: Server, path: str, body: bytes) -> requests.Response:
    resp = requests.post(
        server.url + path, data=body, headers={"Content-Type": "application/json"}, timeout=60
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-request-id"]  # ingest routes carry one too
    return resp


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("trust")
    srv = Server(lake=base / "lake", log=base / "server.log", args=("--flush-interval", "0.2"))
    srv.start()
    try:
        lake = srv.target
        traces = _post(srv, "/v1/traces", _spans()).json()
        assert "partialSuccess" not in traces or not traces["partialSuccess"].get(
            "rejectedSpans"
        ), traces
        assert wait_for(lake, "SELECT count(*) FROM spans", 2 * len(ODD), timeout=60) == 2 * len(
            ODD
        )
        # a read brings the task store up to date: the signals' warnings are judged by it
        assert _get(srv, "/api/v1/cost-per-task").status_code == 200
        signals = _post(srv, "/api/v1/signals", json.dumps(_signals()).encode()).json()
        # a signal names a task in at most 512 characters (spans may use longer ids)
        long_id = ODD.index("x" * 3000)
        assert signals["rejected"] == [
            {"index": long_id, "error": "task_id: longer than 512 characters"}
        ], signals
        assert signals["accepted"] == len(_signals()) - 1
        warned = {w["index"] for w in signals["warnings"]}
        assert {len(ODD), len(ODD) + 1} <= warned  # the unknown task, the other workflow
        costs = _post(srv, "/api/v1/costs", json.dumps(_costs()).encode()).json()
        assert costs == {"accepted": len(_costs()), "rejected": []}, costs
        _post(srv, "/v1/logs", _logs())
        n_signals = len(_signals()) - 1 + 3  # and the three log records
        assert wait_for(lake, "SELECT count(*) FROM signals", n_signals, timeout=60) == n_signals
        assert wait_for(lake, "SELECT count(*) FROM costs", len(_costs()), timeout=60) == len(
            _costs()
        )
        yield srv
    finally:
        srv.stop()


def _get(server: Server, path: str, **params: str) -> requests.Response:
    resp = requests.get(server.url + path, params=params, timeout=120)
    assert resp.status_code < 500, (path, params, resp.status_code, resp.text[:2000])
    assert resp.headers["x-request-id"]
    return resp


#: Now (the task store answers), before every signal and far ahead (the views answer).
AS_OFS = ("", "1970-01-01", "2261-12-31T23:59:59Z")


def _every_read(server: Server, as_ofs: tuple[str, ...] = AS_OFS) -> None:
    for as_of in as_ofs:
        at = {"as_of": as_of} if as_of else {}
        for key in GROUP_KEYS:
            for cost in ("inference", "full"):
                doc = _get(server, "/api/v1/cost-per-task", group_by=key, cost=cost, **at)
                assert doc.status_code == 200, doc.text
                answer = json.loads(doc.text, parse_float=Decimal)
                if cost == "full":
                    assert answer["unallocated_usd"] >= 0
                    for row in answer["rows"]:
                        parts = (
                            sum(
                                row[f"{c}_usd"]
                                for c in ("inference", "rework", "labor", "infrastructure")
                            )
                            + row["licence_usd"]
                            + row["other_usd"]
                        )
                        assert parts == row["spend_usd"]
                table = _get(
                    server, "/api/v1/cost-per-task", group_by=key, cost=cost, format="csv", **at
                )
                assert table.status_code == 200
                assert next(iter(csv.reader(io.StringIO(table.text))))[0] == key
        everything = ",".join(GROUP_KEYS)
        rows = _get(server, "/api/v1/cost-per-task", group_by=everything, cost="full", **at)
        assert rows.status_code == 200, rows.text
    for task in [*ODD, *(t + "#attempt" for t in ODD)]:
        for fmt in ("json", "csv"):
            resp = _get(server, f"/api/v1/tasks/{quote(task, safe='')}", format=fmt)
            assert resp.status_code == 200, (task, resp.text[:500])
            if fmt == "json":
                assert resp.json()["id"] == task
            else:
                header = resp.headers["content-disposition"]
                assert header.isascii() and "\n" not in header
    assert _get(server, "/api/v1/tasks/never-seen%2F🎉").status_code == 404
    for path in ("/healthz", "/readyz", "/metrics", "/api/openapi.json"):
        assert _get(server, path).status_code == 200


def test_every_read_answers_after_the_extremes_are_written(server: Server) -> None:
    _every_read(server)
    tasks = query(server.target, "SELECT count(*) FROM tasks")[0][0]
    assert tasks == len(ODD)
    unmatched = dict(query(server.target, "SELECT signal_id, reason FROM unmatched_signals"))
    assert "workflow mismatch" in unmatched.values() and "unknown task" in unmatched.values()


def test_and_after_a_restart(server: Server) -> None:
    server.stop()
    server.start()
    _every_read(server, ("",))
