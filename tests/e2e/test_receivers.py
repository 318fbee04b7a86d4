"""Several receivers, one lake on an S3-compatible store: each with its own WAL and writer id,
one compacting at a time, one killed with -9 mid-stream and restarted; every acknowledged span,
signal and cost entry committed exactly once, and both receivers' APIs answer the same."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.harness import NumberedPoster, Server, query
from tests.ingest.crash_driver import SPANS_PER_REQUEST, lake_span_ids, numbered_request
from tests.s3 import S3
from tests.waiting import eventually

PER_REQUEST = 20
ARGS = (
    "--flush-interval",
    "0.1",
    "--commit-interval",
    "0.1",
    "--compaction-interval",
    "0.5",
)


def _receiver(base: Path, name: str, uri: str, s3: S3) -> Server:
    return Server(
        lake=base / name,
        log=base / f"{name}.log",
        args=(*ARGS, "--writer-id", name),
        env=s3.env,
        uri=uri,
    )


def _spans(port: int, first: int) -> NumberedPoster:
    return NumberedPoster(
        port,
        first,
        path="/v1/traces",
        content_type="application/x-protobuf",
        per_request=SPANS_PER_REQUEST,
        body=lambda n: numbered_request(n, SPANS_PER_REQUEST).SerializeToString(),
    )


def _signals(port: int, first: int) -> NumberedPoster:
    def body(n: int) -> bytes:
        return "\n".join(
            json.dumps(
                {
                    "task_id": f"task-{i}",
                    "outcome": "completed",
                    "occurred_at": "2026-02-16T12:00:00Z",
                    "signal_id": f"sig-{i}",
                }
            )
            for i in range(n, n + PER_REQUEST)
        ).encode()

    return NumberedPoster(
        port,
        first,
        path="/api/v1/signals",
        content_type="application/x-ndjson",
        per_request=PER_REQUEST,
        body=body,
    )


def _costs(port: int, first: int) -> NumberedPoster:
    def body(n: int) -> bytes:
        return json.dumps(
            [
                {
                    "component": "labor",
                    "amount_usd": "1.5",
                    "period_start": "2026-02-16",
                    "period_end": "2026-02-17",
                    "entry_id": f"cost-{i}",
                }
                for i in range(n, n + PER_REQUEST)
            ]
        ).encode()

    return NumberedPoster(
        port,
        first,
        path="/api/v1/costs",
        content_type="application/json",
        per_request=PER_REQUEST,
        body=body,
    )


def _metric(server: Server, name: str) -> float:
    text = requests.get(server.url + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(f"tasklake_{name} "):
            return float(line.split()[1])
    raise KeyError(name)


@pytest.fixture
def stopping() -> Iterator[list[Server]]:
    servers: list[Server] = []
    yield servers
    for server in servers:
        server.stop()


def test_two_receivers_one_killed_count_every_acknowledged_item_once(
    tmp_path: Path, s3: S3, stopping: list[Server]
) -> None:
    uri = s3.lake("receivers")
    a = _receiver(tmp_path, "a", uri, s3).start()
    b = _receiver(tmp_path, "b", uri, s3).start()
    stopping.extend([a, b])
    spans_a, spans_b = _spans(a.http_port, 0), _spans(b.http_port, 1_000_000)
    signals_a, costs_b = _signals(a.http_port, 0), _costs(b.http_port, 0)
    senders = [spans_a, spans_b, signals_a, costs_b]
    for s in senders:
        s.start()
    assert eventually(lambda: len(spans_a.acked) > 20 and len(spans_b.acked) > 20, 60)
    a.kill()  # mid-stream: requests in flight to A are never acknowledged
    spans_a.join(15)
    signals_a.join(15)
    a = _receiver(tmp_path, "a", uri, s3).start()  # the same WAL and writer id
    stopping[0] = a
    again = _spans(a.http_port, 2_000_000)
    again.start()
    assert eventually(lambda: len(again.acked) > 5, 60)
    b.stop()  # clean stops: everything acknowledged is committed; the posters stop with them
    a.stop()
    for s in (spans_b, costs_b, again):
        s.join(15)
    a = _receiver(tmp_path, "a", uri, s3).start()  # readers: both receivers, after the drain
    b = _receiver(tmp_path, "b", uri, s3).start()
    stopping[:] = [a, b]

    acked = {
        n
        for poster in (spans_a, spans_b, again)
        for first in poster.acked
        for n in range(first, first + SPANS_PER_REQUEST)
    }
    committed = lake_span_ids(uri)
    assert {n: c for n, c in committed.items() if c > 1} == {}  # nothing committed twice
    assert acked - set(committed) == set()  # nothing acknowledged lost
    signal_ids = {f"sig-{i}" for f in signals_a.acked for i in range(f, f + PER_REQUEST)}
    stored = dict(query(uri, "SELECT signal_id, count(*) FROM signals_table GROUP BY ALL"))
    assert signal_ids <= set(stored) and set(stored.values()) == {1}
    cost_ids = {f"cost-{i}" for f in costs_b.acked for i in range(f, f + PER_REQUEST)}
    entries = dict(query(uri, "SELECT entry_id, count(*) FROM costs_table GROUP BY ALL"))
    assert cost_ids <= set(entries) and set(entries.values()) == {1}

    # every trace of every committed span is one attempt, as both receivers see it
    traces = len({n // 10 for n in committed})
    for server in (a, b):
        doc = requests.get(
            server.url + "/api/v1/cost-per-task", params={"cost": "full"}, timeout=120
        ).json()
        assert sum(r["attempts"] for r in doc["rows"]) == traces, server.log_text()
    answers = [
        requests.get(s.url + "/api/v1/cost-per-task", timeout=120).json()["rows"] for s in (a, b)
    ]
    assert answers[0] == answers[1]


def test_one_receiver_compacts_at_a_time(tmp_path: Path, s3: S3, stopping: list[Server]) -> None:
    uri = s3.lake("lease")
    a = _receiver(tmp_path, "a", uri, s3).start()
    b = _receiver(tmp_path, "b", uri, s3).start()
    stopping.extend([a, b])
    posters = [_spans(a.http_port, 0), _spans(b.http_port, 1_000_000)]
    for p in posters:
        p.start()
    assert eventually(lambda: _metric(a, "compactions") + _metric(b, "compactions") >= 2, 90)
    held = [_metric(s, "compaction_lease_held") for s in (a, b)]
    assert sorted(held) == [0.0, 1.0], held
    a.stop()  # a clean stop hands the lease back: the other takes it
    assert eventually(lambda: _metric(b, "compaction_lease_held") == 1.0, 60)
    b.stop()
    for p in posters:
        p.join(15)
