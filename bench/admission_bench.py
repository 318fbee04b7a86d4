"""Memory of a real ``tasklake serve`` under eight concurrent requests at ``max_request_bytes``.

Four protobuf and four OTLP/JSON clients each send one 64 MiB body at the same moment and
retry on 503 (honouring Retry-After) until it is acknowledged, as exporters do. Figures:

- the process tree's memory idle, at its peak and once everything is acknowledged and
  converted, as PSS (physical memory: shared library pages split among the processes) and as
  the plain sum of each process's RSS (shared pages counted once per process);
- the server process's own peak RSS;
- how long until every span was visible, and how many answers were 503.

The compactor is off (its own peak is in ``ingest_bench``); the rest is the default settings.
"""

from __future__ import annotations

import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.workload import large_request_body
from schemas.settings import Settings
from tests.e2e.harness import Server, post_until_acknowledged, query
from tests.e2e.proctree import PeakSampler, tree_memory

CLIENTS = 8


def run() -> dict[str, float]:
    limit = Settings().max_request_bytes
    tags = range(1, CLIENTS + 1)
    bodies = [large_request_body(limit - 4096, t, as_json=t % 2 == 0) for t in tags]
    types = ["application/json" if t % 2 == 0 else "application/x-protobuf" for t in tags]
    with tempfile.TemporaryDirectory(prefix="tasklake-bench-") as tmp:
        server = Server(
            lake=Path(tmp) / "lake",
            log=Path(tmp) / "server.log",
            args=["--compaction-interval", "0"],
        ).start()
        assert server.proc is not None
        try:
            time.sleep(1.0)
            idle = tree_memory(server.proc.pid)
            sampler = PeakSampler(server.proc.pid)
            started = time.monotonic()
            with ThreadPoolExecutor(CLIENTS) as pool:
                answers = list(
                    pool.map(
                        lambda i: post_until_acknowledged(
                            server.http_port, bodies[i], types[i], started + 600
                        ),
                        range(CLIENTS),
                    )
                )
            acknowledged = time.monotonic() - started
            while not _caught_up(server):
                time.sleep(0.5)
            visible = time.monotonic() - started
            peak = sampler.stop()
            time.sleep(1.5)
            after = tree_memory(server.proc.pid)
        finally:
            server.stop()
    return {
        "tree_pss_mib_idle": idle.pss,
        "tree_pss_mib_peak": peak.pss,
        "tree_pss_mib_after": after.pss,
        "tree_rss_sum_mib_idle": idle.rss,
        "tree_rss_sum_mib_peak": peak.rss,
        "tree_rss_sum_mib_after": after.rss,
        "server_rss_mib_peak": sampler.main_peak_rss,
        "seconds_until_all_acknowledged": acknowledged,
        "seconds_until_all_visible": visible,
        "answers_503": float(sum(a.count(503) for a in answers)),
        "answers_200": float(sum(a.count(200) for a in answers)),
    }


def _caught_up(server: Server) -> bool:
    """Every acknowledged byte converted (no WAL backlog) and the spans are queryable."""
    with urllib.request.urlopen(server.url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    backlog = [line for line in text.splitlines() if line.startswith("tasklake_backlog_bytes ")]
    if not backlog or float(backlog[0].split()[1]) != 0:
        return False
    return bool(query(server.lake, "SELECT count(*) FROM spans")[0][0])


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:42s} {value:12.1f}")
