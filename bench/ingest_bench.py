"""Ingest into a Delta lake through real ``tasklake serve`` receivers: throughput, visibility,
commits, latency, memory, bytes at rest; local, two receivers on one lake, and S3.

Workload: realistic agent spans (``bench.load``), 512-span protobuf requests, 4 client
processes over keep-alive HTTP, durable mode (fsync before 200); clients and servers share the
machine's cores. Each case starts fresh servers on a fresh lake; the background compactor is
off while timing. Figures (medians over ``runs`` for the local case):

- acknowledged spans/s in a 10 s burst (closed loop), and per core (÷ CPU count);
- spans/s *visible*: from the first send until every acknowledged span is in the newest
  version of the spans table (what any reader pinned to it sees), read from the Delta log;
- commits per second per receiver while it ingests and drains (``lake_commits`` in
  ``/metrics``, every table; under a spans-only load, spans commits);
- p50/p99 request latency at half the burst rate (open loop: requests are scheduled);
- peak RSS of the server with its converters;
- two receivers (own ``--writer-id``, port and ``--wal-dir``) on one local lake, 2 clients
  each: combined acknowledged and visible spans/s, commits/s of each, failed commits;
- one receiver on an S3-compatible lake (moto server on loopback, ``bench.s3``; the WAL on
  local disk): acknowledged and visible spans/s and commits/s;
- bytes per span at rest: every distinct request once (512k spans), ``tasklake compact``, then
  the data files of the spans table's newest version ÷ rows; and that compaction's peak RSS.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.figures import percentile
from bench.load import SPANS_PER_REQUEST, Sent, clients, drive, write_cache
from bench.s3 import moto_server
from schemas.delta import Tables
from schemas.lake import SPANS
from tests.e2e.harness import Server
from tests.e2e.proctree import PeakSampler

CORES = os.cpu_count() or 1


def committed_spans(lake: str) -> int:
    """Rows of the spans table's newest version, from its log (no data file is read)."""
    return sum(f.rows for f in Tables(lake).version_of(SPANS).files)


def wait_committed(lake: str, n: int, timeout: float = 600.0) -> int:
    deadline = time.monotonic() + timeout
    seen = committed_spans(lake)
    while seen < n and time.monotonic() < deadline:
        time.sleep(0.2)
        seen = committed_spans(lake)
    return seen


def metric(server: Server, name: str) -> float:
    """One gauge of the server's ``/metrics`` (``tasklake_<name>``)."""
    with urllib.request.urlopen(server.url + "/metrics", timeout=30) as resp:
        text = resp.read().decode()
    for line in text.splitlines():
        if line.startswith(f"tasklake_{name} "):
            return float(line.split()[1])
    raise KeyError(name)


def start_server(
    tmp: Path,
    lake: str,
    name: str,
    *,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> Server:
    """A receiver on ``lake`` with its own writer id and WAL directory, compactor off."""
    return Server(
        lake=Path(lake) if "://" not in lake else Path(tmp / "unused"),
        log=tmp / f"{name}.log",
        args=[
            *(["--lake", lake] if "://" in lake else []),
            "--writer-id",
            name,
            "--wal-dir",
            str(tmp / f"wal-{name}"),
            "--compaction-interval",
            "0",
            *args,
        ],
        env=dict(env or {}),
    ).start(timeout=120)


def burst(
    servers: list[Server], lake: str, cache: Path, n_clients: int, seconds: float
) -> dict[str, float]:
    """A closed-loop burst; then wait until every acknowledged span is committed."""
    commits0 = [metric(s, "lake_commits") for s in servers]
    started: list[float] = []
    sent = drive(
        clients([s.http_port for s in servers], cache, n_clients, mode="closed", seconds=seconds),
        on_start=lambda: started.append(time.time()),
    )
    seen = wait_committed(lake, sent.acked_spans)
    elapsed = time.time() - started[0]
    commits = [metric(s, "lake_commits") - c for s, c in zip(servers, commits0, strict=True)]
    out = {
        "burst_acked_spans_per_s": sent.acked_spans / seconds,
        "visible_spans_per_s": seen / elapsed,
        "refused_requests": float(sent.refused),
        "commits_per_s_per_receiver": statistics.mean(commits) / elapsed,
        "commit_failures": sum(metric(s, "lake_commit_failures") for s in servers),
    }
    if seen < sent.acked_spans:
        print(f"  NOT VISIBLE: {sent.acked_spans - seen} acknowledged spans after 600 s")
    return out


def paced_latency(server: Server, cache: Path, n_clients: int, rate: float, seconds: float) -> Sent:
    return drive(
        clients([server.http_port], cache, n_clients, mode="paced", seconds=seconds, rate=rate)
    )


def _local_run(cache: Path, n_clients: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="tasklake-bench-") as tmp:
        lake = str(Path(tmp) / "lake")
        server = start_server(Path(tmp), lake, "bench")
        assert server.proc is not None
        sampler = PeakSampler(server.proc.pid, every=0.2)
        try:
            b = burst([server], lake, cache, n_clients, seconds)
            rate = b["burst_acked_spans_per_s"] / 2 / SPANS_PER_REQUEST
            sent = paced_latency(server, cache, n_clients, rate, seconds)
        finally:
            sampler.stop()
            server.stop()
    return {
        "burst_acked_spans_per_s": b["burst_acked_spans_per_s"],
        "burst_acked_spans_per_s_per_core": b["burst_acked_spans_per_s"] / CORES,
        "sustained_visible_spans_per_s": b["visible_spans_per_s"],
        "sustained_visible_spans_per_s_per_core": b["visible_spans_per_s"] / CORES,
        "commits_per_s_per_receiver": b["commits_per_s_per_receiver"],
        "refused_requests": b["refused_requests"] + sent.refused,
        "p50_ms_at_half_burst_rate": percentile(sent.latencies, 0.5) * 1000,
        "p99_ms_at_half_burst_rate": percentile(sent.latencies, 0.99) * 1000,
        "server_and_converters_rss_mib_peak": sampler.peak.rss,
    }


def _two_receivers(cache: Path, n_clients: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="tasklake-bench-") as tmp:
        lake = str(Path(tmp) / "lake")
        servers = [start_server(Path(tmp), lake, f"bench{i}") for i in (1, 2)]
        try:
            b = burst(servers, lake, cache, n_clients, seconds)
        finally:
            for s in servers:
                s.stop()
    return {
        "two_receivers_acked_spans_per_s": b["burst_acked_spans_per_s"],
        "two_receivers_visible_spans_per_s": b["visible_spans_per_s"],
        "two_receivers_commits_per_s_per_receiver": b["commits_per_s_per_receiver"],
        "two_receivers_commit_failures": b["commit_failures"],
    }


def _s3(cache: Path, n_clients: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="tasklake-bench-") as tmp:
        lake = "s3://bench-lake/lake"
        with moto_server(Path(tmp) / "moto.log", "bench-lake") as env:
            server = start_server(Path(tmp), lake, "benchs3", env=env)
            try:
                b = burst([server], lake, cache, n_clients, seconds)
            finally:
                server.stop()
                log = server.log_text()
                if "Traceback" in log or "ERROR" in log:
                    print("  the S3 receiver logged errors:\n" + _tail(log))
    return {
        "s3_acked_spans_per_s": b["burst_acked_spans_per_s"],
        "s3_visible_spans_per_s": b["visible_spans_per_s"],
        "s3_commits_per_s_per_receiver": b["commits_per_s_per_receiver"],
        "s3_commit_failures": b["commit_failures"],
    }


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def _bytes_per_span(cache: Path, n_clients: int) -> tuple[float, float]:
    """Every distinct request once into a fresh lake, then compaction: bytes/span at rest."""
    with tempfile.TemporaryDirectory(prefix="tasklake-bench-") as tmp:
        lake = str(Path(tmp) / "lake")
        server = start_server(Path(tmp), lake, "bench")
        try:
            sent = drive(clients([server.http_port], cache, n_clients, mode="once"))
            wait_committed(lake, sent.acked_spans)
        finally:
            server.stop()
        compaction_rss = compact_in_child(lake)
        files = Tables(lake).version_of(SPANS).files
        return sum(f.size for f in files) / max(sum(f.rows for f in files), 1), compaction_rss


def compact_in_child(lake: str) -> float:
    """``tasklake compact`` (what the background compactor runs) in a child: its peak RSS."""
    # VmHWM, not ru_maxrss: Linux carries the forked parent's peak across exec into the latter
    code = (
        "import sys; from service.cli import main; "
        f"main(['compact', '--lake', {lake!r}]); "
        "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0], file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600
    )
    return int(done.stderr.strip().splitlines()[-1]) / 1024


def run(runs: int = 3, n_clients: int = 4, seconds: float = 10.0) -> dict[str, float]:
    cache = write_cache(1000)
    figures = [_local_run(cache, n_clients, seconds) for _ in range(runs)]
    result = {key: statistics.median(f[key] for f in figures) for key in figures[0]}
    result.update(_two_receivers(cache, n_clients, seconds))
    try:
        result.update(_s3(cache, n_clients, seconds))
    except Exception:  # report what fails; the local figures stand
        print("  S3 ingest failed:\n" + _tail(traceback.format_exc()))
    per_span, compaction_rss = _bytes_per_span(cache, n_clients)
    result["bytes_per_span_after_compaction"] = per_span
    result["compaction_rss_mib_peak"] = compaction_rss
    return result


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:42s} {value:12.1f}")
