"""Cost per completed task on a 10M-span lake: the two read targets of issue 3.

A realistic lake (``bench.lakegen``: ~1.54M attempts, 90 days, 20 workflows, 8 teams, signals)
is generated once and cached under ``bench/out/``, with the roll-up companions the ingest hook
writes. The read API then runs in a real uvicorn on a free port, and we time over HTTP:

- ``GET /api/v1/cost-per-task?group_by=workflow,team,month`` (target <= 1 s): on a quiet lake,
  and right after a new span file and a new signal file landed (the incremental refresh of the
  task store is part of the request, as under ingest);
- ``GET /api/v1/tasks/{id}`` for tasks and attempts across the lake (target <= 200 ms);
- the analyses (``compare``, ``trends``, ``levers``, ``autonomy``, ``reasons``,
  ``time-saved``; target <= 1 s each) from the store;
- the span-level groupings (``workflow,role``, ``workflow,model``, ``provider``) and the fully
  loaded cost (``cost=full``, with a year of cost entries for teams, workflows and everyone)
  from the store;
- the store's cold build (it lives in ``lake/_store/``), a restart that takes it over, and the
  process's memory (RSS now and its peak; the target is the server's <= 1 GiB);
- for reference, the same cost query answered by the views alone (no store), once.

Over target, the plan DuckDB ran is printed (EXPLAIN ANALYZE).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import requests
import uvicorn
from fastapi import FastAPI
from schemas.snapshot import pin

from bench.lakegen import LakeShape, as_of, generate_lake, write_rollups
from schemas.costs import costs_table, parse_costs
from schemas.lake import COSTS
from schemas.settings import Settings
from schemas.views import load_views
from service.api import install_read_api
from service.api.cost_per_task import cost_per_task_query
from service.db import Database
from service.errors import install_error_handlers

OUT = Path(__file__).parent / "out"
COST_TARGET_S = 1.0
DRILL_TARGET_S = 0.2
DELTA = "bench-delta"  # files the bench adds and removes again
SPAN_GROUPINGS = ("workflow,role", "workflow,model", "provider")
VIEWS_MEMORY = 6 << 30
#: The analyses of issue 10 (target <= 1 s each), with the parameters each needs.
ANALYSES: tuple[tuple[str, dict[str, str]], ...] = (
    ("/api/v1/compare", {"workflow": "wf-00", "a": "version:v1", "b": "version:v2"}),
    ("/api/v1/trends", {"period": "week"}),
    ("/api/v1/levers", {}),
    ("/api/v1/autonomy", {}),
    ("/api/v1/reasons", {}),
    ("/api/v1/time-saved", {}),
)


def cached_lake(shape: LakeShape | None = None) -> Path:
    """The lake of ``shape`` under bench/out, generated (minutes) only when missing."""
    shape = shape or LakeShape()
    lake = OUT / f"lake-{shape.spans}-{shape.days}d-{shape.workflows}w-{shape.teams}t"
    done = lake / ".complete"
    if not done.exists():
        started = time.perf_counter()
        generate_lake(lake, shape)
        generated = time.perf_counter()
        files = write_rollups(lake)
        print(
            f"generated {shape.spans:,} spans in {generated - started:.0f} s;"
            f" roll-ups of {files} files in {time.perf_counter() - generated:.0f} s"
        )
        done.write_text("ok\n")
    for leftover in lake.glob(f"*/date=*/{DELTA}*.parquet"):
        leftover.unlink()
    _write_cost_entries(lake, shape)
    return lake


def _write_cost_entries(lake: Path, shape: LakeShape) -> None:
    """A quarter of cost entries: monthly labor per team and infrastructure per workflow, a
    yearly licence for everyone, rework for a few workflows, one entry with no spend."""
    target = lake / COSTS / "date=2026-01-01" / "bench-costs.parquet"
    if target.exists():
        return
    items: list[dict[str, Any]] = []
    for month in (1, 2, 3):
        period = {"period_start": f"2026-{month:02d}-01", "period_end": f"2026-{month + 1:02d}-01"}
        for team in range(shape.teams):
            items.append(
                {
                    "component": "labor",
                    "amount_usd": 4000 + 250 * team,
                    "team": f"team-{team}",
                    **period,
                }
            )
        for wf in range(shape.workflows):
            items.append(
                {
                    "component": "infrastructure",
                    "amount_usd": "812.50",
                    "workflow": f"wf-{wf:02d}",
                    **period,
                }
            )
        for wf in range(0, shape.workflows, 5):
            items.append(
                {"component": "rework", "amount_usd": 1500, "workflow": f"wf-{wf:02d}", **period}
            )
    items.append(
        {
            "component": "licence",
            "amount_usd": 120000,
            "period_start": "2026-01-01",
            "period_end": "2027-01-01",
        }
    )
    items.append(
        {
            "component": "other",
            "amount_usd": 99,
            "workflow": "wf-none",
            "period_start": "2026-01-01",
            "period_end": "2026-04-01",
        }
    )
    parsed = parse_costs(json.dumps(items).encode())
    assert not parsed.rejected, parsed.rejected
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(costs_table(parsed.items, received_at_ms=0), target)


@contextmanager
def _serve(db: Database) -> Iterator[str]:
    app = FastAPI()
    install_error_handlers(app)
    install_read_api(app, db)
    with socket_port() as port:
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()


@contextmanager
def socket_port() -> Iterator[int]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    yield port


def _timed_get(http: requests.Session, url: str, **params: Any) -> float:
    started = time.perf_counter()
    resp = http.get(url, params=params, timeout=600)
    elapsed = time.perf_counter() - started
    if resp.status_code != 200:
        raise RuntimeError(f"{url} {params}: {resp.status_code} {resp.text[:300]}")
    return elapsed


def _add_delta(lake: Path, n: int) -> None:
    """What a second of ingest leaves: a small span file (new attempts and late spans of
    existing traces) and a small signal file."""
    day = sorted(p for p in (lake / "spans").glob("date=2026-0*") if p.is_dir())[-1]
    src = next(p for p in sorted((lake / "spans").glob("date=2026-02-1*/*.parquet")))
    table = pq.read_table(src).slice(1000 * n, 1000)
    fresh_ids = pc.binary_join_element_wise(
        pa.array([f"d{n:03d}"] * table.num_rows), pc.utf8_slice_codeunits(table["trace_id"], 4), ""
    )
    fresh = table.set_column(table.schema.get_field_index("trace_id"), "trace_id", fresh_ids)
    late = pq.read_table(src).slice(50_000 + 100 * n, 50)  # new spans of existing traces
    late_ids = pc.binary_join_element_wise(
        pa.array([f"e{n:03d}"] * late.num_rows), pc.utf8_slice_codeunits(late["span_id"], 4), ""
    )
    late = late.set_column(late.schema.get_field_index("span_id"), "span_id", late_ids)
    pq.write_table(pa.concat_tables([fresh, late]), day / f"{DELTA}-{n:03d}.parquet")
    sig_src = next(p for p in sorted((lake / "signals").glob("date=2026-02-1*/*.parquet")))
    sig_day = sorted(p for p in (lake / "signals").glob("date=2026-0*") if p.is_dir())[-1]
    pq.write_table(pq.read_table(sig_src).slice(200 * n, 200), sig_day / f"{DELTA}-{n:03d}.parquet")


def _explain(db: Database, sql: str, params: list[Any]) -> None:
    plan = db.arrow("EXPLAIN ANALYZE " + sql, params)
    print(plan.column(1)[0].as_py())


def run(runs: int = 7, drilldowns: int = 30) -> dict[str, float]:
    shape = LakeShape()
    lake = cached_lake(shape)
    moment = as_of(shape)
    settings = Settings(lake=str(lake), query_timeout=600.0, writer_id="bench")
    results: dict[str, float] = {}
    params = {"group_by": "workflow,team,month", "as_of": moment.isoformat()}
    shutil.rmtree(lake / "_store", ignore_errors=True)  # a cold start: the store is built

    db = Database(settings)
    started = time.perf_counter()
    db.warm()
    results["store_build_s"] = time.perf_counter() - started
    results["store_file_mib"] = sum(
        f.stat().st_size for f in (lake / "_store").glob("*.duckdb*")
    ) / (1 << 20)
    results["rss_after_build_mib"] = _rss_mib()
    try:
        with _serve(db) as base:
            http = requests.Session()
            url = base + "/api/v1/cost-per-task"
            _timed_get(http, url, **params)
            quiet = [_timed_get(http, url, **params) for _ in range(runs)]
            results["cost_per_task_s"] = statistics.median(quiet)
            after = []
            for n in range(runs):
                _add_delta(lake, n)
                after.append(_timed_get(http, url, **params))
            results["cost_per_task_after_ingest_s"] = statistics.median(after)
            results["store_refresh_s"] = db.store.last.seconds if db.store else 0.0
            rng = random.Random(7)
            tasks = db.rows(
                "SELECT task_key, attempts FROM tl_store.tasks USING SAMPLE 200 ROWS (reservoir, 7)"
            )
            ids = [t["task_key"] for t in rng.sample(tasks, min(drilldowns, len(tasks)))]
            attempts = db.rows(
                "SELECT attempt_id FROM tl_store.attempts USING SAMPLE 50 ROWS (reservoir, 7)"
            )
            ids += [a["attempt_id"] for a in attempts[:10]]
            drill = [
                _timed_get(http, f"{base}/api/v1/tasks/{i}", as_of=moment.isoformat()) for i in ids
            ]
            results["task_drilldown_s"] = statistics.median(drill)
            results["task_drilldown_p90_s"] = sorted(drill)[int(0.9 * (len(drill) - 1))]
            for route, extra in ANALYSES:
                times = [
                    _timed_get(http, base + route, as_of=moment.isoformat(), **extra)
                    for _ in range(3)
                ]
                key = route.rsplit("/", 1)[-1].replace("-", "_")
                results[f"{key}_s"] = statistics.median(times)
            for group_by in SPAN_GROUPINGS:
                times = [
                    _timed_get(http, url, group_by=group_by, as_of=moment.isoformat())
                    for _ in range(3)
                ]
                results[f"cost_per_task_by_{group_by.replace(',', '_')}_s"] = statistics.median(
                    times
                )
            for group_by in ("workflow,team,month", "workflow,role"):
                times = [
                    _timed_get(http, url, group_by=group_by, cost="full", as_of=moment.isoformat())
                    for _ in range(3)
                ]
                key = f"cost_full_by_{group_by.replace(',', '_')}_s"
                results[key] = statistics.median(times)
            results["rss_after_queries_mib"] = _rss_mib()
            results["rss_peak_mib"] = _rss_mib("VmHWM")
        if results["cost_per_task_s"] > COST_TARGET_S:
            sql, args = cost_per_task_query(
                ["workflow", "team", "month"], macro="store_cost_per_task_by"
            )
            _explain(db, sql, args)
    finally:
        db.close()
        for leftover in lake.glob(f"*/date=*/{DELTA}*.parquet"):
            leftover.unlink()

    restarted = Database(settings)  # a restart: the store file is taken over, then refreshed
    try:
        started = time.perf_counter()
        restarted.warm()
        results["store_restart_s"] = time.perf_counter() - started
        assert restarted.store is not None and restarted.store.last.kind != "rebuild"
    finally:
        restarted.close()

    # the views alone regroup every roll-up row per query: far more memory than the store's
    # queries (it does not fit the default query_memory_limit at this size)
    views = Database(replace(settings, query_memory_limit=VIEWS_MEMORY), store=False)
    try:
        sql, args = cost_per_task_query(["workflow", "team", "month"])
        started = time.perf_counter()
        views.rows(sql, args, as_of=moment)
        results["cost_per_task_views_only_s"] = time.perf_counter() - started
    finally:
        views.close()
    results.update(_pinning(lake, runs))
    for key, value in results.items():
        print(f"{key}: {value:.3f}")
    return results


def _pinning(lake: Path, runs: int) -> dict[str, float]:
    """What pinning a query costs (schemas.snapshot): listing the lake and setting the
    variables, and a full scan of ``spans`` pinned against the same scan over the glob,
    interleaved in one run."""
    con = duckdb.connect()
    load_views(con, lake)
    pin_s, pinned_s, glob_s = [], [], []
    scan = "SELECT count(*), sum(cost_usd) FROM spans"
    for _ in range(runs):
        cur = con.cursor()
        started = time.perf_counter()
        pin(cur, lake)
        pin_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        pinned = cur.execute(scan).fetchall()
        pinned_s.append(time.perf_counter() - started)
        cur.close()
        cur = con.cursor()
        started = time.perf_counter()
        globbed = cur.execute(scan).fetchall()
        glob_s.append(time.perf_counter() - started)
        cur.close()
        assert pinned == globbed
    con.close()
    return {
        "pin_ms": statistics.median(pin_s) * 1e3,
        "spans_scan_pinned_s": statistics.median(pinned_s),
        "spans_scan_pinned_vs_glob": statistics.median(
            p / g for p, g in zip(pinned_s, glob_s, strict=True)
        ),
    }


def _rss_mib(field: str = "VmRSS") -> float:
    with open(f"/proc/{os.getpid()}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


if __name__ == "__main__":
    run()
