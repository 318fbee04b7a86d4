"""Ingest throughput, latency, bytes at rest and memory of a real ``tasklake serve``.

Workload: realistic agent spans (``bench.workload``), 512-span protobuf requests, 4 concurrent
client processes over keep-alive HTTP, durable mode (fsync before 200). Figures:

- peak acknowledged spans/s (closed loop, every client sending as fast as it is answered),
  and per core (÷ CPU count: server and clients share the machine);
- end-to-end spans/s: acknowledged spans until the last one is visible in the ``spans`` view;
- p50/p99 request latency at half of the peak rate (open loop, scheduled sends);
- bytes per span at rest after compaction (all span files ÷ rows);
- peak RSS of the server process and of the server with its converter processes.

Each run starts a fresh server on a fresh lake; medians over ``runs``.
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from threading import Event, Thread

from bench.workload import request_bodies
from tests.e2e.harness import Server, query

SPANS_PER_REQUEST = 512


def _client(port: int, bodies: Sequence[bytes], until: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """Closed loop: send, wait for the answer, send the next."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/x-protobuf"}
    acked = 0
    refused = 0
    i = 0
    while time.monotonic() < until:
        conn.request("POST", "/v1/traces", body=bodies[i % len(bodies)], headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status == 200:
            acked += SPANS_PER_REQUEST
        else:
            refused += 1
        i += 1
    conn.close()
    out.put((acked, refused))


def _paced_client(
    port: int, bodies: Sequence[bytes], rate: float, start: float, until: float, out: mp.Queue  # type: ignore[type-arg]
) -> None:
    """Open loop: request k is due at start + k/rate; latency runs from send to answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/x-protobuf"}
    latencies: list[float] = []
    k = 0
    while True:
        due = start + k / rate
        if due >= until:
            break
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t0 = time.monotonic()
        conn.request("POST", "/v1/traces", body=bodies[k % len(bodies)], headers=headers)
        resp = conn.getresponse()
        resp.read()
        latencies.append(time.monotonic() - t0)
        k += 1
    conn.close()
    out.put(latencies)


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


@dataclass
class _RssSampler:
    pid: int
    main_peak: int = 0
    total_peak: int = 0

    def __post_init__(self) -> None:
        self._stop = Event()
        self._thread = Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            main = _rss_kib(self.pid)
            total = main + sum(_rss_kib(c) for c in _children(self.pid))
            self.main_peak = max(self.main_peak, main)
            self.total_peak = max(self.total_peak, total)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _span_files_bytes(lake: Path) -> int:
    return sum(
        p.stat().st_size
        for p in lake.glob("spans/*/*.parquet")
        if not p.name.startswith("_schema")
    )


def _one_run(bodies: Sequence[bytes], clients: int, seconds: float) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="tasklake-bench-") as tmp:
        lake = Path(tmp) / "lake"
        server = Server(
            lake=lake,
            log=Path(tmp) / "server.log",
            args=["--compaction-interval", "0"],
        ).start()
        assert server.proc is not None
        sampler = _RssSampler(server.proc.pid)
        try:
            # phase 1: peak, closed loop
            out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
            shares = [bodies[i::clients] for i in range(clients)]
            t0 = time.monotonic()
            until = t0 + seconds
            procs = [
                ctx.Process(target=_client, args=(server.http_port, share, until, out))
                for share in shares
            ]
            for p in procs:
                p.start()
            results = [out.get() for _ in procs]
            elapsed = time.monotonic() - t0
            for p in procs:
                p.join()
            acked = sum(a for a, _ in results)
            refused = sum(r for _, r in results)
            peak = acked / elapsed
            # end to end: until every acknowledged span is visible
            deadline = time.monotonic() + 300
            visible = 0
            while time.monotonic() < deadline:
                visible = query(lake, "SELECT count(*) FROM spans")[0][0]
                if visible >= acked:
                    break
                time.sleep(0.25)
            e2e = visible / (time.monotonic() - t0)

            # phase 2: latency at half of the peak rate, open loop
            rate = peak / 2 / SPANS_PER_REQUEST / clients
            start = time.monotonic() + 0.5
            procs = [
                ctx.Process(
                    target=_paced_client,
                    args=(server.http_port, share, rate, start, start + seconds, out),
                )
                for share in shares
            ]
            for p in procs:
                p.start()
            latencies = sorted(x for _ in procs for x in out.get())
            for p in procs:
                p.join()
            p50 = latencies[len(latencies) // 2]
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]

            # bytes at rest after compaction (all spans of both phases)
            total = acked + len(latencies) * SPANS_PER_REQUEST
            while query(lake, "SELECT count(*) FROM spans")[0][0] < total:
                time.sleep(0.25)
        finally:
            sampler.stop()
            server.stop()
        from ingest import compact_once
        from schemas.settings import load_settings

        compact_once(load_settings(flags={"lake": str(lake)}, env={}))
        rows = query(lake, "SELECT count(*) FROM spans")[0][0]
        bytes_per_span = _span_files_bytes(lake) / max(rows, 1)
        return {
            "peak_acked_spans_per_s": peak,
            "peak_acked_spans_per_s_per_core": peak / (os.cpu_count() or 1),
            "end_to_end_spans_per_s": e2e,
            "refused_requests": float(refused),
            "p50_ms_at_half_peak": p50 * 1000,
            "p99_ms_at_half_peak": p99 * 1000,
            "bytes_per_span_after_compaction": bytes_per_span,
            "server_rss_mib_peak": sampler.main_peak / 1024,
            "server_with_converters_rss_mib_peak": sampler.total_peak / 1024,
        }


def run(runs: int = 3, clients: int = 4, seconds: float = 10.0) -> dict[str, float]:
    bodies = request_bodies(n_requests=1200, spans_per_request=SPANS_PER_REQUEST, seed=7)
    figures = [_one_run(bodies, clients, seconds) for _ in range(runs)]
    return {key: statistics.median(f[key] for f in figures) for key in figures[0]}


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:40s} {value:12.1f}")
