"""The dashboard's requests on a 10M-span lake: every endpoint the page at ``/`` calls must
answer within 300 ms there (issue 11).

The requests are the page's own (``service/dashboard/static/js``), for the views a user opens
first: the overview of the last 30 days (workflow table, filter lists, cost over time, the
composition, the role breakdown, the task list), its other breakdowns and the fully loaded
toggle, all time, one workflow (its tasks costliest first), and task drill-downs (the page's
``/api/openapi.json``, a static document, is left out). The lake is ``bench.lakegen``'s,
cached, and served by the read API exactly as ``economics_bench`` serves it (a warm task
store, as a running server has). Each figure is the median of ``runs`` after a
first request; ``slowest_s`` is the slowest of those medians.
"""

from __future__ import annotations

import statistics
from datetime import timedelta
from typing import Any

import requests

from bench.economics_bench import MEMORY_LIMIT, serve_read_api, timed_get
from bench.figures import Progress
from bench.lakegen import OUT, LakeShape, as_of, cached_lake, working_copy
from schemas.settings import Settings
from service.db import Database

TARGET_S = 0.3
#: ~1.54M attempts over 90 days, 20 workflows, 8 teams (the economics bench's lake)
SPANS = 10_000_000
COST = "/api/v1/cost-per-task"
TASKS = "/api/v1/tasks"
#: The task list's page size (tasklist.js).
PAGE = 25


def page_requests(
    start: str, end: str, workflow: str, task_ids: list[str]
) -> dict[str, tuple[str, dict[str, Any]]]:
    """What the page asks for, by figure name: (path, parameters)."""
    last30 = {"start": start, "end": end}
    one = {**last30, "workflow": workflow}
    asks: dict[str, tuple[str, dict[str, Any]]] = {
        "workflows_30d": (COST, {"group_by": "workflow", **last30, "cost": "inference"}),
        "team_list_30d": (COST, {"group_by": "team", **last30, "cost": "inference"}),
        "over_time_30d": (COST, {"group_by": "workflow,day", **last30, "cost": "inference"}),
        # also the workflow table once the fully loaded view is chosen (the page asks once)
        "composition_30d": (COST, {"group_by": "workflow", **last30, "cost": "full"}),
        "tasks_30d": (TASKS, {**last30, "order": "-started_at", "limit": PAGE, "offset": 0}),
        "workflows_all_time": (COST, {"group_by": "workflow", "cost": "inference"}),
        "over_time_all_time": (COST, {"group_by": "workflow,day", "cost": "inference"}),
        "over_time_full_30d": (COST, {"group_by": "workflow,day", **last30, "cost": "full"}),
        "one_workflow": (COST, {"group_by": "workflow", **one, "cost": "inference"}),
        "one_workflow_over_time": (COST, {"group_by": "workflow,day", **one, "cost": "inference"}),
        "one_workflow_tasks_costliest": (
            TASKS,
            {**one, "order": "-spend_usd", "limit": PAGE, "offset": 0},
        ),
    }
    for dim in ("role", "model", "team", "version"):
        asks[f"by_{dim}_30d"] = (
            COST,
            {"group_by": f"workflow,{dim}", **last30, "cost": "inference"},
        )
    for n, task_id in enumerate(task_ids):
        asks[f"task_{n}"] = (f"/api/v1/tasks/{task_id}", {})
    return asks


def run(runs: int = 5, spans: int = SPANS) -> dict[str, float]:
    """``spans``: a smaller lake of the same shape for a smoke run."""
    shape = LakeShape(spans=spans)
    # this bench only reads: a copy made once keeps its task store (built once, ~minutes)
    lake = OUT / f"dashboard-{shape.name}"
    if not (lake / "_store").exists():
        working_copy(cached_lake(shape), lake)
    moment = as_of(shape)
    last_day = shape.first_day + timedelta(days=shape.days)
    start, end = (last_day - timedelta(days=29)).isoformat(), (last_day + timedelta(1)).isoformat()
    settings = Settings(
        lake=str(lake), query_timeout=600.0, writer_id="bench", query_memory_limit=MEMORY_LIMIT
    )
    results = Progress()
    db = Database(settings)
    try:
        db.warm()  # a running server's store: built once, before the page is opened
        picked = db.rows("SELECT task_key FROM tl_store.tasks USING SAMPLE 3 ROWS (reservoir, 11)")
        busiest = db.rows(
            "SELECT workflow FROM tl_store.tasks GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        )
        asks = page_requests(start, end, busiest[0]["workflow"], [r["task_key"] for r in picked])
        with serve_read_api(db) as base:
            http = requests.Session()
            for name, (path, params) in asks.items():
                url, query = base + path, {**params, "as_of": moment.isoformat()}
                timed_get(http, url, **query)  # the first request of its kind
                results[f"{name}_s"] = statistics.median(
                    timed_get(http, url, **query) for _ in range(runs)
                )
    finally:
        db.close()
    times = list(results.values())
    results["slowest_s"] = max(times)
    results["requests_over_300_ms"] = float(sum(t > TARGET_S for t in times))
    return dict(results)
