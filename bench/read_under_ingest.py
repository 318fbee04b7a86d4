"""Cost per task answered while a receiver ingests: the trust issue's read-under-ingest figure.

A real ``tasklake serve`` (background compaction every ``COMPACTION_INTERVAL`` s) serves a
lake that already holds ~1.5M spans (``bench.lakegen``: 30 days, its last day still in small
files, the day the new spans land in). Client processes send a steady ``rate`` of spans
(512-span protobuf requests, scheduled), a thread posts a few signals every second, and one
client asks ``GET /api/v1/cost-per-task?group_by=workflow`` back to back for ``seconds``:
its p50/p95/p99, and how many answers were not 200 (must be none). Target: p99 <= 1 s.

The server's task store follows the lake from a thread of its own (``service.follow``); a
request waits until the store reflects the versions newest when it arrived (read after write).
Then, under the same load, where that time goes: an in-process ``service.db.Database`` on the
same lake (its own store file, its follower stopped) refreshes the store to the newest
versions (``Store.refresh``) and runs the query, back to back, timing the two apart, with
what each refresh recomputed.
"""

from __future__ import annotations

import json
import logging
import statistics
import threading
import time
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import requests

from bench.figures import Progress, percentile
from bench.ingest_bench import metric
from bench.lakegen import OUT, LakeShape, cached_lake, working_copy
from bench.load import SPANS_PER_REQUEST, Sent, clients, drive, write_cache
from schemas.settings import Settings
from service.api.cost_per_task import cost_per_task_query
from service.db import Database
from tests.e2e.harness import Server

#: 30 days ending on the day the ingest workload's spans start (2026-03-02).
SHAPE = LakeShape(spans=1_500_000, days=30, first_day=date(2026, 2, 1))
COMPACTION_INTERVAL = 10.0
SIGNALS_PER_SECOND = 20
P99_TARGET_S = 1.0
#: The read side's DuckDB memory (``query_memory_limit``): at the default (384 MiB) the task
#: store's first build runs out of memory on this lake (README, Performance).
MEMORY_LIMIT = 1 << 30


def _signals(url: str, stop: threading.Event, answers: list[int]) -> None:
    """Every second, ``SIGNALS_PER_SECOND`` completion signals for tasks of the workload."""
    http = requests.Session()
    k = 0
    while not stop.wait(1.0):
        now = datetime.now(UTC).isoformat()
        items = [
            {"task_id": f"TASK-{(k + i) % 500 * 10_000:07d}", "outcome": "completed"}
            | {"occurred_at": now, "signal_id": f"rui-{k + i}"}
            for i in range(SIGNALS_PER_SECOND)
        ]
        k += SIGNALS_PER_SECOND
        resp = http.post(url + "/api/v1/signals", data=json.dumps(items), timeout=60)
        answers.append(resp.status_code)


def _ingest(
    server: Server, cache: Path, rate: float, seconds: float, started: threading.Event
) -> list[Sent]:
    """Paced ingest in client processes, in a thread; ``started`` is set when they send."""
    out: list[Sent] = []

    def go() -> None:
        n = 2
        loads = clients(
            [server.http_port],
            cache,
            n,
            mode="paced",
            seconds=seconds,
            rate=rate / SPANS_PER_REQUEST,
        )
        out.append(drive(loads, on_start=started.set))

    threading.Thread(target=go, daemon=True).start()
    return out


def _http_phase(url: str, seconds: float) -> tuple[list[float], dict[int, int]]:
    http = requests.Session()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        resp = http.get(url + "/api/v1/cost-per-task", params={"group_by": "workflow"}, timeout=120)
        latencies.append(time.perf_counter() - t0)
        statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
    return latencies, statuses


class _StatementTimes(logging.Handler):
    """Seconds per kind of statement of the store's refreshes, from its debug log lines
    (``task store: <seconds> s  <statement>``)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seconds: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg != "task store: %.3f s  %.120s" or not isinstance(record.args, tuple):
            return
        seconds, statement = record.args
        if not isinstance(seconds, float):
            return
        kind = " ".join(str(statement).split()[:6])[:60]
        self.seconds[kind] = self.seconds.get(kind, 0.0) + seconds


def _breakdown(db: Database, seconds: float) -> dict[str, float]:
    """What the store's refresh and the query cost apart, back to back, under
    the load; after one refresh that catches up with the commits of the HTTP phase."""
    sql, args = cost_per_task_query(["workflow"], macro="store_cost_per_task_by")
    store = db.store
    assert store is not None
    store.refresh()
    refresh, query, commits, traces, tasks = [], [], [], [], []
    times = _StatementTimes()
    logger = logging.getLogger("service.store")
    level = logger.level
    logger.addHandler(times)
    logger.setLevel(logging.DEBUG)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            store.refresh()
            t1 = time.perf_counter()
            db.rows(sql, args, snapshot=store.snapshot)
            t2 = time.perf_counter()
            refresh.append(t1 - t0)
            query.append(t2 - t1)
            commits.append(store.last.commits)
            traces.append(store.last.traces)
            tasks.append(store.last.tasks)
    finally:
        logger.removeHandler(times)
        logger.setLevel(level)
    total = sum(refresh) or 1.0
    print("  where the store's refreshes spent their time (share of refresh time):")
    for kind, spent in sorted(times.seconds.items(), key=lambda kv: -kv[1])[:8]:
        print(f"    {spent / total:6.1%}  {kind}")
    return {
        "probe_requests": float(len(refresh)),
        "probe_refresh_p50_s": percentile(refresh, 0.5),
        "probe_refresh_p99_s": percentile(refresh, 0.99),
        "probe_query_p50_s": percentile(query, 0.5),
        "probe_query_p99_s": percentile(query, 0.99),
        "probe_commits_per_refresh": statistics.mean(commits),
        "probe_traces_per_refresh": statistics.mean(traces),
        "probe_tasks_per_refresh": statistics.mean(tasks),
    }


def _wait_answer(url: str, timeout: float = 1800.0) -> float:
    """Seconds until the API answers cost-per-task (the store is built on the first ask);
    an answer that is neither 200 nor 503 (building) ends the benchmark."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        resp = requests.get(url + "/api/v1/cost-per-task", timeout=timeout)
        if resp.status_code == 200:
            return time.monotonic() - started
        if resp.status_code != 503:
            raise RuntimeError(f"cost-per-task answered {resp.status_code}: {resp.text[:500]}")
        time.sleep(0.5)
    raise TimeoutError("the API did not answer cost-per-task")


def measure(
    *, rate: float, seconds: float, probe_seconds: float, shape: LakeShape = SHAPE
) -> dict[str, float]:
    """One served copy of the lake under load; ``probe_seconds`` > 0 adds the breakdown."""
    cache = write_cache(1000)
    lake = working_copy(cached_lake(shape), OUT / "read-under-ingest-lake")
    args = [
        *("--writer-id", "bench", "--compaction-interval", str(COMPACTION_INTERVAL)),
        *("--query-memory-limit", str(MEMORY_LIMIT)),
    ]
    server = Server(lake=lake, log=OUT / "read-under-ingest.log", args=args).start(timeout=120)
    probe = (
        Database(Settings(lake=str(lake), writer_id="probe", query_memory_limit=MEMORY_LIMIT))
        if probe_seconds
        else None
    )
    load_seconds = seconds + probe_seconds + 5
    out = Progress()
    try:
        # the probe builds its store while the server builds its own
        warming = threading.Thread(target=probe.warm) if probe is not None else None
        if warming is not None:
            warming.start()
        out["first_answer_s"] = _wait_answer(server.url)  # the store is built
        if warming is not None:
            warming.join()
        if probe is not None and probe.follower is not None:
            probe.follower.stop()  # the probe refreshes its store itself, timed
        stop = threading.Event()
        signal_answers: list[int] = []
        signals = threading.Thread(
            target=_signals, args=(server.url, stop, signal_answers), daemon=True
        )
        started = threading.Event()
        sent = _ingest(server, cache, rate, load_seconds, started)
        started.wait()
        signals.start()
        t0 = time.monotonic()
        commits0 = metric(server, "lake_commits")
        latencies, statuses = _http_phase(server.url, seconds)
        elapsed = time.monotonic() - t0
        out["queries"] = float(len(latencies))
        out["cost_per_task_p50_s"] = percentile(latencies, 0.5)
        out["cost_per_task_p95_s"] = percentile(latencies, 0.95)
        out["cost_per_task_p99_s"] = percentile(latencies, 0.99)
        out["cost_per_task_max_s"] = max(latencies)
        out["non_200_answers"] = float(sum(n for s, n in statuses.items() if s != 200))
        out["commits_per_s"] = (metric(server, "lake_commits") - commits0) / elapsed
        if probe is not None:
            out.update(_breakdown(probe, probe_seconds))
        stop.set()
        signals.join()
        while not sent:
            time.sleep(0.2)
        out["ingest_spans_per_s"] = sent[0].acked_spans / load_seconds
        out["ingest_refused_requests"] = float(sent[0].refused)
        out["signal_posts_not_200"] = float(sum(1 for s in signal_answers if s != 200))
        out["compactions"] = metric(server, "compactions")
    finally:
        if probe is not None:
            probe.close()
        server.stop()
    if out.get("cost_per_task_p99_s", 0.0) > P99_TARGET_S:
        print(f"  over target: cost_per_task_p99_s {out['cost_per_task_p99_s']:.2f} s > 1 s")
    return out


def run(
    rate: float = 4096.0,
    seconds: float = 60.0,
    probe_seconds: float = 30.0,
    spans: int = SHAPE.spans,
) -> dict[str, float]:
    """``spans``: a smaller lake of the same shape for a smoke run (``BENCH_QUICK``)."""
    shape = replace(SHAPE, spans=spans)
    out = measure(rate=rate, seconds=seconds, probe_seconds=probe_seconds, shape=shape)
    return {"lake_spans": float(spans), **out}


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:42s} {value:12.3f}")
