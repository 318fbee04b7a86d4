"""``kill -9`` of the real server during sustained signal and cost-entry ingest, then restart:
every acknowledged signal and entry is stored exactly once — in the raw Parquet files, not
only after the views' deduplication."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path

from tests.e2e.harness import NumberedPoster, Server, query, wait_for

PER_REQUEST = 50


def _signals(first: int) -> bytes:
    """NDJSON of signals numbered first..first+PER_REQUEST-1, spread over three days."""
    lines = []
    for n in range(first, first + PER_REQUEST):
        day = 1 + n % 3
        lines.append(
            json.dumps(
                {
                    "signal_id": f"sig-{n}",
                    "task_id": f"T-{n // 4}",
                    "outcome": "completed" if n % 5 else "failed",
                    "occurred_at": f"2026-10-0{day}T12:00:00Z",
                }
            )
        )
    return "\n".join(lines).encode()


def _costs(first: int) -> bytes:
    """NDJSON of cost entries numbered first..first+PER_REQUEST-1."""
    return "\n".join(
        json.dumps(
            {
                "entry_id": f"cost-{n}",
                "component": "labor",
                "amount_usd": "1.5",
                "period_start": "2026-10-01",
                "period_end": "2026-11-01",
            }
        )
        for n in range(first, first + PER_REQUEST)
    ).encode()


def _all_accepted(answer: bytes) -> None:
    assert json.loads(answer)["accepted"] == PER_REQUEST


def _sender(port: int, start_id: int, path: str, body: Callable[[int], bytes]) -> NumberedPoster:
    return NumberedPoster(
        port,
        start_id,
        path=path,
        content_type="application/x-ndjson",
        per_request=PER_REQUEST,
        body=body,
        check=_all_accepted,
    )


def test_kill_9_during_signal_ingest_stores_every_acknowledged_signal_once(
    tmp_path: Path,
) -> None:
    lake = tmp_path / "lake"
    signals: list[int] = []
    costs: list[int] = []
    rng = random.Random(3)
    args = ("--flush-interval", "0.1", "--compaction-interval", "0.5", "--commit-interval", "0.1")
    for cycle in range(2):
        server = Server(lake=lake, log=tmp_path / f"server-{cycle}.log", args=args).start()
        base = cycle * 10_000_000
        senders = [
            _sender(server.http_port, base, "/api/v1/signals", _signals),
            _sender(server.http_port, base + 1_000_000, "/api/v1/signals", _signals),
            _sender(server.http_port, base, "/api/v1/costs", _costs),
        ]
        for s in senders:
            s.start()
        time.sleep(rng.uniform(1.0, 2.0))  # sustained ingest, then the plug is pulled
        server.kill()
        for s in senders:
            s.join(timeout=15)
        signals.extend(first for s in senders[:2] for first in s.acked)
        costs.extend(senders[2].acked)
        assert senders[0].acked and senders[2].acked, server.log_text()

    server = Server(lake=lake, log=tmp_path / "server-final.log", args=args).start()
    try:
        want = {f"sig-{first + i}" for first in signals for i in range(PER_REQUEST)}
        raw = "signals_table"  # every stored row of the newest version (copies included)
        seen = wait_for(
            server.target,
            f"SELECT count(DISTINCT signal_id) FILTER (WHERE signal_id IN "
            f"(SELECT unnest(?::VARCHAR[]))) FROM {raw}",
            len(want),
            timeout=60,
            params=[sorted(want)],
        )
        assert seen == len(want), server.log_text()
        assert _duplicates(server.target, raw, "signal_id") == 0
        entries = {f"cost-{first + i}" for first in costs for i in range(PER_REQUEST)}
        raw_costs = "costs_table"
        stored = wait_for(
            server.target,
            f"SELECT count(DISTINCT entry_id) FILTER (WHERE entry_id IN "
            f"(SELECT unnest(?::VARCHAR[]))) FROM {raw_costs}",
            len(entries),
            timeout=60,
            params=[sorted(entries)],
        )
        assert stored == len(entries)
        assert _duplicates(server.target, raw_costs, "entry_id") == 0
    finally:
        server.stop()


def _duplicates(lake: str, relation: str, key: str) -> int:
    rows = query(
        lake, f"SELECT count(*) FROM (SELECT {key} FROM {relation} GROUP BY 1 HAVING count(*) > 1)"
    )
    return int(rows[0][0])
