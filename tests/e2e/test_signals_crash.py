"""``kill -9`` of the real server during sustained signal and cost-entry ingest, then restart:
every acknowledged signal and entry is stored exactly once — in the raw Parquet files, not
only after the views' deduplication."""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from pathlib import Path

from tests.e2e.harness import Server, query, wait_for

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


class _Sender(threading.Thread):
    """Posts numbered batches until the connection dies; remembers what was acknowledged."""

    def __init__(self, port: int, start_id: int, path: str = "/api/v1/signals") -> None:
        super().__init__(daemon=True)
        self.port, self.next_id, self.path = port, start_id, path
        self.acked: list[int] = []

    def body(self, first: int) -> bytes:
        return _signals(first)

    def run(self) -> None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            while True:
                first = self.next_id
                self.next_id += PER_REQUEST
                conn.request(
                    "POST",
                    self.path,
                    body=self.body(first),
                    headers={"Content-Type": "application/x-ndjson"},
                )
                resp = conn.getresponse()
                doc = resp.read()
                if resp.status == 200:
                    assert json.loads(doc)["accepted"] == PER_REQUEST
                    self.acked.append(first)
        except (OSError, http.client.HTTPException):
            return  # the server died under us


class _CostSender(_Sender):
    def body(self, first: int) -> bytes:
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


def test_kill_9_during_signal_ingest_stores_every_acknowledged_signal_once(
    tmp_path: Path,
) -> None:
    lake = tmp_path / "lake"
    signals: list[int] = []
    costs: list[int] = []
    rng = random.Random(3)
    args = ("--flush-interval", "0.1", "--compaction-interval", "0.5", "--compaction-grace", "0")
    for cycle in range(2):
        server = Server(lake=lake, log=tmp_path / f"server-{cycle}.log", args=args).start()
        base = cycle * 10_000_000
        senders = [
            _Sender(server.http_port, base),
            _Sender(server.http_port, base + 1_000_000),
            _CostSender(server.http_port, base, "/api/v1/costs"),
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
        raw = f"read_parquet('{lake}/signals/*/*.parquet')"
        seen = wait_for(
            lake,
            f"SELECT count(DISTINCT signal_id) FILTER (WHERE signal_id IN "
            f"(SELECT unnest(?::VARCHAR[]))) FROM {raw}",
            len(want),
            timeout=60,
            params=[sorted(want)],
        )
        assert seen == len(want), server.log_text()
        assert _duplicates(lake, raw, "signal_id") == 0
        entries = {f"cost-{first + i}" for first in costs for i in range(PER_REQUEST)}
        raw_costs = f"read_parquet('{lake}/costs/*/*.parquet')"
        stored = wait_for(
            lake,
            f"SELECT count(DISTINCT entry_id) FILTER (WHERE entry_id IN "
            f"(SELECT unnest(?::VARCHAR[]))) FROM {raw_costs}",
            len(entries),
            timeout=60,
            params=[sorted(entries)],
        )
        assert stored == len(entries)
        assert _duplicates(lake, raw_costs, "entry_id") == 0
    finally:
        server.stop()


def _duplicates(lake: Path, relation: str, key: str) -> int:
    rows = query(
        lake, f"SELECT count(*) FROM (SELECT {key} FROM {relation} GROUP BY 1 HAVING count(*) > 1)"
    )
    return int(rows[0][0])
