"""Ingest throughput, latency, bytes at rest and memory of a real ``tasklake serve``.

Workload: realistic agent spans (``bench.workload``), 512-span protobuf requests, 4 concurrent
client processes over keep-alive HTTP, durable mode (fsync before 200). Figures:

- acknowledged spans/s in a 10 s burst (closed loop: each client sends as fast as it is
  answered), and per core (÷ CPU count; server and clients share the machine);
- sustained spans/s: acknowledged *and visible in the ``spans`` view*, from the first send to
  the moment the last acknowledged span can be queried;
- p50/p99 request latency at half of the burst rate (open loop: requests are scheduled);
- bytes per span at rest after compaction (span files ÷ rows, 512k distinct spans);
- peak RSS of the server process, and of the server with its converter processes (the
  background compactor is off while timing); the peak RSS of one compaction of the
  bytes-at-rest lake (what the compactor process adds while it merges).

Each run starts a fresh server on a fresh lake; figures are medians over the runs. Clients
read their requests from a cache file and start together, so process start-up is not timed.
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.workload import request_bodies
from tests.e2e.harness import Server, query
from tests.e2e.proctree import PeakSampler

SPANS_PER_REQUEST = 512
HEADERS = {"Content-Type": "application/x-protobuf"}
CACHE = Path(__file__).parent / "out"


def _cache_file(n: int) -> Path:
    return CACHE / f"ingest-bodies-{n}x{SPANS_PER_REQUEST}.bin"


def _write_cache(n: int) -> Path:
    """Distinct realistic requests, generated once (it takes a while) and kept in bench/out."""
    path = _cache_file(n)
    if not path.exists():
        bodies = request_bodies(n_requests=n, spans_per_request=SPANS_PER_REQUEST, seed=7)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(b"".join(len(b).to_bytes(4, "little") + b for b in bodies))
        tmp.replace(path)
    return path


def _read_cache(path: Path) -> list[bytes]:
    data = path.read_bytes()
    bodies, i = [], 0
    while i < len(data):
        size = int.from_bytes(data[i : i + 4], "little")
        bodies.append(data[i + 4 : i + 4 + size])
        i += 4 + size
    return bodies


@dataclass(frozen=True)
class Load:
    """What one client process does (small, so it pickles cheaply)."""

    port: int
    cache: Path
    index: int
    clients: int
    mode: str  # "closed" (as fast as answered), "paced" (scheduled), "once" (each body once)
    start: float  # wall clock, seconds
    until: float = 0.0
    rate: float = 0.0  # requests/s of this client when paced


def _client(load: Load, out: mp.Queue) -> None:  # type: ignore[type-arg]
    bodies = _read_cache(load.cache)[load.index :: load.clients]
    conn = http.client.HTTPConnection("127.0.0.1", load.port, timeout=120)
    acked = refused = 0
    latencies: list[float] = []
    time.sleep(max(0.0, load.start - time.time()))
    k = 0
    while True:
        if load.mode == "once" and k >= len(bodies):
            break
        if load.mode == "closed" and time.time() >= load.until:
            break
        if load.mode == "paced":
            due = load.start + k / load.rate
            if due >= load.until:
                break
            time.sleep(max(0.0, due - time.time()))
        t0 = time.monotonic()
        conn.request("POST", "/v1/traces", body=bodies[k % len(bodies)], headers=HEADERS)
        resp = conn.getresponse()
        resp.read()
        latencies.append(time.monotonic() - t0)
        if resp.status == 200:
            acked += SPANS_PER_REQUEST
        else:
            refused += 1
        k += 1
    conn.close()
    out.put((acked, refused, latencies))


def _drive(loads: list[Load]) -> tuple[int, int, list[float]]:
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [ctx.Process(target=_client, args=(load, out)) for load in loads]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    acked = sum(r[0] for r in results)
    refused = sum(r[1] for r in results)
    latencies = sorted(x for r in results for x in r[2])
    return acked, refused, latencies


def _visible(lake: Path) -> int:
    count: int = query(lake, "SELECT count(*) FROM spans")[0][0]
    return count


def _wait_visible(lake: Path, n: int, timeout: float = 600.0) -> int:
    deadline = time.monotonic() + timeout
    seen = _visible(lake)
    while seen < n and time.monotonic() < deadline:
        time.sleep(0.2)
        seen = _visible(lake)
    return seen


def _server(tmp: str) -> Server:
    return Server(
        lake=Path(tmp) / "lake", log=Path(tmp) / "server.log", args=["--compaction-interval", "0"]
    ).start()


def _one_run(cache: Path, clients: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="tasklake-bench-") as tmp:
        server = _server(tmp)
        assert server.proc is not None
        sampler = PeakSampler(server.proc.pid, every=0.2)
        try:
            start = time.time() + 3.0  # clients load their requests meanwhile
            burst = [
                Load(server.http_port, cache, i, clients, "closed", start, start + seconds)
                for i in range(clients)
            ]
            acked, refused, _ = _drive(burst)
            burst_rate = acked / seconds
            seen = _wait_visible(server.lake, acked)
            sustained = seen / (time.time() - start)

            rate = burst_rate / 2 / SPANS_PER_REQUEST / clients
            start = time.time() + 3.0
            paced = [
                Load(server.http_port, cache, i, clients, "paced", start, start + seconds, rate)
                for i in range(clients)
            ]
            _, _, latencies = _drive(paced)
        finally:
            sampler.stop()
            server.stop()
    return {
        "burst_acked_spans_per_s": burst_rate,
        "burst_acked_spans_per_s_per_core": burst_rate / (os.cpu_count() or 1),
        "sustained_visible_spans_per_s": sustained,
        "sustained_visible_spans_per_s_per_core": sustained / (os.cpu_count() or 1),
        "refused_requests": float(refused),
        "p50_ms_at_half_burst_rate": latencies[len(latencies) // 2] * 1000,
        "p99_ms_at_half_burst_rate": latencies[int(len(latencies) * 0.99)] * 1000,
        "server_rss_mib_peak": sampler.main_peak_rss,
        "server_and_converters_rss_mib_peak": sampler.peak.rss,
        "server_and_converters_pss_mib_peak": sampler.peak.pss,
    }


def _bytes_per_span(cache: Path, clients: int) -> tuple[float, float]:
    """Every distinct request once into a fresh lake, then compaction: bytes/span at rest."""
    with tempfile.TemporaryDirectory(prefix="tasklake-bench-") as tmp:
        server = _server(tmp)
        try:
            start = time.time() + 3.0
            acked, _, _ = _drive(
                [Load(server.http_port, cache, i, clients, "once", start) for i in range(clients)]
            )
            _wait_visible(server.lake, acked)
        finally:
            server.stop()
        compaction_rss = _compact_in_child(server.lake)
        size = sum(
            p.stat().st_size
            for p in server.lake.glob("spans/*/*.parquet")
            if not p.name.startswith("_schema")
        )
        return size / max(_visible(server.lake), 1), compaction_rss


def _compact_in_child(lake: Path) -> float:
    """``tasklake compact`` (what the background compactor runs) in a child: its peak RSS."""
    # VmHWM, not ru_maxrss: Linux carries the forked parent's peak across exec into the latter
    code = (
        "import sys; from service.cli import main; "
        f"main(['compact', '--lake', {str(lake)!r}]); "
        "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0], file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600
    )
    return int(done.stderr.strip().splitlines()[-1]) / 1024


def run(runs: int = 3, clients: int = 4, seconds: float = 10.0) -> dict[str, float]:
    cache = _write_cache(1000)
    figures = [_one_run(cache, clients, seconds) for _ in range(runs)]
    result = {key: statistics.median(f[key] for f in figures) for key in figures[0]}
    per_span, compaction_rss = _bytes_per_span(cache, clients)
    result["bytes_per_span_after_compaction"] = per_span
    result["compaction_rss_mib_peak"] = compaction_rss
    return result


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:42s} {value:12.1f}")
