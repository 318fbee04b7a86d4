"""Cost per completed task on a 10M-span lake: the two read targets of issue 3.

A realistic lake (``bench.lakegen``: ~1.54M attempts, 90 days, 20 workflows, 8 teams, signals)
is generated once and cached under ``bench/out/``, with the roll-up companions the ingest hook
writes. The read API then runs in a real uvicorn on a free port, and we time over HTTP:

- ``GET /api/v1/cost-per-task?group_by=workflow,team,month`` (target <= 1 s): on a quiet lake,
  and right after a new span file and a new signal file landed (the incremental refresh of the
  task store is part of the request, as under ingest);
- ``GET /api/v1/tasks/{id}`` for tasks and attempts across the lake (target <= 200 ms);
- for reference, the same cost query answered by the views alone (no store), once, and a
  role grouping, once;
- the store's initial build and its memory.

Over target, the plan DuckDB ran is printed (EXPLAIN ANALYZE).
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import requests
import uvicorn
from fastapi import FastAPI

from bench.lakegen import LakeShape, as_of, generate_lake, write_rollups
from schemas.settings import Settings
from service.api import install_read_api
from service.api.cost_per_task import cost_per_task_query
from service.db import Database
from service.errors import install_error_handlers

OUT = Path(__file__).parent / "out"
COST_TARGET_S = 1.0
DRILL_TARGET_S = 0.2
DELTA = "bench-delta"  # files the bench adds and removes again


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
    return lake


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
    settings = Settings(lake=str(lake), query_timeout=600.0)
    results: dict[str, float] = {}
    params = {"group_by": "workflow,team,month", "as_of": moment.isoformat()}

    db = Database(settings)
    started = time.perf_counter()
    db.warm()
    results["store_build_s"] = time.perf_counter() - started
    results["store_rss_mib"] = _rss_mib()
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
            started = time.perf_counter()
            _timed_get(http, url, group_by="workflow,role", as_of=moment.isoformat())
            results["cost_per_task_by_role_s"] = time.perf_counter() - started
        if results["cost_per_task_s"] > COST_TARGET_S:
            sql, args = cost_per_task_query(
                ["workflow", "team", "month"], macro="store_cost_per_task_by"
            )
            _explain(db, sql, args)
    finally:
        db.close()
        for leftover in lake.glob(f"*/date=*/{DELTA}*.parquet"):
            leftover.unlink()

    views = Database(settings, store=False)
    try:
        sql, args = cost_per_task_query(["workflow", "team", "month"])
        started = time.perf_counter()
        views.rows(sql, args, as_of=moment)
        results["cost_per_task_views_only_s"] = time.perf_counter() - started
    finally:
        views.close()
    for key, value in results.items():
        print(f"{key}: {value:.3f}")
    return results


def _rss_mib() -> float:
    with open(f"/proc/{os.getpid()}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


if __name__ == "__main__":
    run()
