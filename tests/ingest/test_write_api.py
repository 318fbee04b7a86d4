"""``POST /api/v1/signals`` and ``POST /api/v1/costs`` over real HTTP: per-item errors that never
drop the good items, the API's one error shape for everything refused as a whole, limits,
auth, and back-pressure."""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import threading
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
import requests

from ingest.errors import Overloaded
from ingest.receive.write_api import signal_warnings
from ingest.wal.log import KIND_COSTS, KIND_SIGNALS
from schemas.costs import COST_SCHEMA
from schemas.settings import MiB
from schemas.signals import SIGNAL_SCHEMA, Signal, parse_signals
from tests.ingest.conftest import AUTH_TOKEN
from tests.ingest.receiver_harness import ReceiverServer, SinkExporter

SIGNALS = "/api/v1/signals"
COSTS = "/api/v1/costs"


def post(
    server: ReceiverServer,
    path: str,
    body: bytes | str,
    content_type: str | None = "application/json",
    **headers: str,
) -> requests.Response:
    if content_type is not None:
        headers["Content-Type"] = content_type
    data = body.encode() if isinstance(body, str) else body
    return requests.post(server.url + path, data=data, headers=headers, timeout=30)


def assert_error_shape(resp: requests.Response, status: int, fragment: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    doc: dict[str, Any] = resp.json()
    assert doc["error"] == {"status": status, "message": doc["error"]["message"]}
    assert fragment in doc["error"]["message"], doc
    return doc


def test_good_items_are_stored_and_bad_ones_named_by_index(
    receiver: ReceiverServer, sink: SinkExporter
) -> None:
    body = [
        {"task_id": "T-1", "outcome": "completed", "occurred_at": "2026-03-01T10:00:00Z"},
        {"task_id": "T-2", "outcome": "done"},
        {"correlation_id": "att-9", "outcome": "failed", "rework_cost_usd": 1.25},
        "not an object",
        {"outcome": "failed"},
    ]
    resp = post(receiver, SIGNALS, json.dumps(body))
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["accepted"] == 2
    assert [r["index"] for r in doc["rejected"]] == [1, 3, 4]
    assert "outcome" in doc["rejected"][0]["error"] and "object" in doc["rejected"][1]["error"]
    ((kind, rows),) = sink.rows
    assert kind == KIND_SIGNALS and rows.schema == SIGNAL_SCHEMA
    assert rows.column("task_id").to_pylist() == ["T-1", None]
    assert rows.column("rework_cost_usd").to_pylist() == [None, Decimal("1.25")]
    assert rows.column("source").to_pylist() == ["api", "api"]
    assert len(set(rows.column("received_at").to_pylist())) == 1  # one request, one moment


def test_ndjson_and_one_object(receiver: ReceiverServer, sink: SinkExporter) -> None:
    lines = '{"task_id": "a", "outcome": "completed"}\n\n{"task_id": "b", "outcome": "escalated"}\n'
    resp = post(receiver, SIGNALS, lines, "application/x-ndjson")
    assert resp.json() == {"accepted": 2, "rejected": [], "warnings": []}
    resp = post(receiver, SIGNALS, '{"task_id": "c", "outcome": "rework"}', None)
    assert resp.json() == {"accepted": 1, "rejected": [], "warnings": []}  # sniffed
    gz = post(
        receiver,
        SIGNALS,
        gzip.compress(b'[{"task_id": "d", "outcome": "failed"}]'),
        **{"Content-Encoding": "gzip"},
    )
    assert gz.json() == {"accepted": 1, "rejected": [], "warnings": []}
    assert [r.num_rows for _, r in sink.rows] == [2, 1, 1]


def test_cost_entries(receiver: ReceiverServer, sink: SinkExporter) -> None:
    body = [
        {
            "component": "labor",
            "amount_usd": "1200.50",
            "period_start": "2026-01-01",
            "period_end": "2026-02-01",
            "team": "support",
        },
        {
            "component": "labor",
            "amount_usd": 10,
            "period_start": "2026-02-01",
            "period_end": "2026-01-01",
        },
    ]
    resp = post(receiver, COSTS, json.dumps(body))
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["accepted"] == 1 and doc["rejected"][0]["index"] == 1
    assert "period_end" in doc["rejected"][0]["error"]
    ((kind, rows),) = sink.rows
    assert kind == KIND_COSTS and rows.schema == COST_SCHEMA
    assert rows.column("amount_usd").to_pylist() == [Decimal("1200.5")]


def test_amounts_and_times_out_of_range_are_refused_per_item_never_503(
    receiver: ReceiverServer, sink: SinkExporter
) -> None:
    """A value no retry can fix is the item's error (400 when no item is valid), never a 503
    that a sender would retry forever while the valid items wait."""
    signals = [
        {"task_id": "T-1", "outcome": "rework", "rework_cost_usd": 1000000},
        {"task_id": "T-2", "outcome": "rework", "rework_cost_usd": 1e16},
        {"task_id": "T-3", "outcome": "completed", "occurred_at": "2262-04-11T23:47:16.854775807Z"},
    ]
    resp = post(receiver, SIGNALS, json.dumps(signals))
    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] == 1
    assert [r["index"] for r in resp.json()["rejected"]] == [1, 2]
    ((_, rows),) = sink.rows
    assert rows.column("rework_cost_usd").to_pylist() == [Decimal(1000000)]
    costs = [
        {
            "component": "labor",
            "amount_usd": a,
            "period_start": "2026-01-01",
            "period_end": "2026-02-01",
        }
        for a in ("1e16", "1e17")
    ]
    doc = assert_error_shape(post(receiver, COSTS, json.dumps(costs)), 400, "largest amount")
    assert [r["index"] for r in doc["rejected"]] == [0, 1]


def test_nothing_valid_is_400_with_the_items_errors(
    receiver: ReceiverServer, sink: SinkExporter
) -> None:
    resp = post(receiver, SIGNALS, '[{"task_id": "x"}, {"outcome": "failed"}]')
    doc = assert_error_shape(resp, 400, "no valid signal")
    assert doc["accepted"] == 0 and [r["index"] for r in doc["rejected"]] == [0, 1]
    assert not sink.rows


@pytest.mark.parametrize(
    "case",
    [
        (b"ticket 7 resolved", "application/json", 400, "not valid JSON"),
        (b"", "application/json", 400, "empty body"),
        (b"42", "application/json", 400, "expected a JSON object"),
        (b"\xff\xfe\x00", "application/json", 400, "UTF-8"),
        (b"task_id,outcome\nT-1,completed\n", "text/csv", 415, "Content-Type"),
        (b"task_id=T-1", "application/x-www-form-urlencoded", 415, "application/x-ndjson"),
    ],
)
def test_bodies_refused_as_a_whole(
    receiver: ReceiverServer, sink: SinkExporter, case: tuple[bytes, str, int, str]
) -> None:
    body, content_type, status, fragment = case
    assert_error_shape(post(receiver, SIGNALS, body, content_type), status, fragment)
    assert_error_shape(post(receiver, COSTS, body, content_type), status, fragment)
    assert not sink.rows


def test_size_limits_before_and_after_decompression(
    receiver: ReceiverServer, sink: SinkExporter
) -> None:
    # declared too large: refused before a byte of the body is read
    conn = http.client.HTTPConnection("127.0.0.1", receiver.http_port, timeout=30)
    conn.putrequest("POST", SIGNALS)
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(100 * MiB))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413 and json.loads(resp.read())["error"]["status"] == 413
    conn.close()
    # small on the wire, over the decompressed limit (4 MiB in these tests): a gzip bomb
    bomb = gzip.compress(b"[" + b" " * (5 * MiB) + b"]")
    assert len(bomb) < MiB
    resp2 = post(receiver, SIGNALS, bomb, **{"Content-Encoding": "gzip"})
    assert_error_shape(resp2, 413, "decompressed")
    assert not sink.rows


def test_other_methods_are_405(receiver: ReceiverServer) -> None:
    resp = requests.get(receiver.url + SIGNALS, timeout=30)
    assert_error_shape(resp, 405, "POST")
    assert resp.headers["allow"] == "POST"


def test_overload_is_503_with_retry_after_and_stores_nothing(
    receiver: ReceiverServer, sink: SinkExporter
) -> None:
    sink.error = Overloaded("ingest is behind", retry_after=3)
    resp = post(receiver, SIGNALS, '{"task_id": "T", "outcome": "failed"}')
    assert_error_shape(resp, 503, "behind")
    assert resp.headers["retry-after"] == "3"
    assert not sink.rows


def test_bearer_token(auth_receiver: ReceiverServer) -> None:
    body = '{"task_id": "T", "outcome": "failed"}'
    missing = post(auth_receiver, SIGNALS, body)
    assert_error_shape(missing, 401, "bearer")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert_error_shape(post(auth_receiver, COSTS, body, Authorization="Bearer nope"), 403, "")
    ok = post(auth_receiver, SIGNALS, body, Authorization=f"Bearer {AUTH_TOKEN}")
    assert ok.json() == {"accepted": 1, "rejected": [], "warnings": []}


class _Lookup:
    """The read side's answer, as the composition root would inject it (a stand-in: the real
    one, over the task store, is exercised end to end in tests/e2e/test_trust.py)."""

    def __init__(self, found: dict[str, tuple[str, str | None]] | Exception) -> None:
        self.found = found
        self.release = threading.Event()

    def unmatched(self, signals: Sequence[Signal]) -> dict[str, tuple[str, str | None]]:
        if isinstance(self.found, Exception):
            raise self.found
        if not self.found:
            self.release.wait(30)  # slower than any answer waits
        return self.found


def _signals() -> tuple[list[Signal], list[int]]:
    body = json.dumps(
        [
            {"task_id": "T-1", "outcome": "completed"},
            {"task_id": "T-2", "outcome": "done"},
            {"correlation_id": "att-3", "outcome": "failed"},
            {"task_id": "T-4", "outcome": "rework", "workflow": "w2"},
        ]
    ).encode()
    parsed = parse_signals(body)
    return parsed.items, parsed.indexes


def test_signals_for_no_task_are_stored_with_a_warning_each() -> None:
    items, indexes = _signals()
    lookup = _Lookup(
        {
            items[1].signal_id: ("unknown task", None),
            items[2].signal_id: ("workflow mismatch", "w1"),
        }
    )
    warnings = asyncio.run(signal_warnings(lookup, items, indexes))
    assert [w["index"] for w in warnings] == [2, 3]  # indexes in the body, as rejections
    assert "attempt 'att-3' is not known (yet)" in warnings[0]["warning"]
    assert "workflow 'w2' is not its task's ('w1')" in warnings[1]["warning"]


def test_a_failing_or_slow_lookup_means_no_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    items, indexes = _signals()
    assert asyncio.run(signal_warnings(_Lookup(RuntimeError("store gone")), items, indexes)) == []
    monkeypatch.setattr("ingest.receive.write_api.LOOKUP_TIMEOUT", 0.01)
    slow = _Lookup({})

    async def answer() -> list[dict[str, Any]]:
        try:
            return await signal_warnings(slow, items, indexes)
        finally:
            slow.release.set()  # let the abandoned lookup end before the loop closes

    assert asyncio.run(answer()) == []
