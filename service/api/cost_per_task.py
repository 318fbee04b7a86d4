"""``GET /api/v1/cost-per-task``: cost per completed task for any grouping.

Every figure comes from the ``cost_per_task_by`` macro (``schemas/cost_per_task.sql``); this
module only checks the parameters, picks the columns and renders them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from service.api.params import FORMATS, check_known, choices, moment, names, one_of
from service.api.render import csv_response, json_response, plain
from service.db import Database, QueryError, get_db
from service.errors import ApiError

router = APIRouter()

GROUP_KEYS: tuple[str, ...] = (
    "workflow",
    "team",
    "role",
    "version",
    "model",
    "provider",
    "day",
    "week",
    "month",
)
METRICS: tuple[str, ...] = (
    "attempts",
    "tasks",
    "completed",
    "failed",
    "escalated",
    "abandoned",
    "pending",
    "success_rate",
    "spend_usd",
    "cost_per_attempt_usd",
    "cost_per_completed_task_usd",
    "tokens_per_attempt",
    "unpriced_spans",
)
COSTS = ("inference", "full")
PARAMS = ("group_by", "start", "end", "workflow", "team", "cost", "format", "as_of")


def cost_per_task_query(
    group_by: list[str],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    workflows: list[str] | None = None,
    teams: list[str] | None = None,
    macro: str = "cost_per_task_by",
) -> tuple[str, list[Any]]:
    """The SELECT over ``macro`` (``cost_per_task_by``, or the store's twin rendered from the
    same template) for these parameters, group keys first in the order asked."""
    flags = ", ".join(f"by_{key} := {'true' if key in group_by else 'false'}" for key in GROUP_KEYS)
    args: list[Any] = []
    extra = []
    for name, value in (("start_at", start), ("end_at", end)):
        if value is not None:
            extra.append(f"{name} := ?::TIMESTAMPTZ")
            args.append(value)
    for name, values in (("workflows", workflows), ("teams", teams)):
        if values is not None:
            extra.append(f"{name} := ?::VARCHAR[]")
            args.append(values)
    columns = ", ".join([*group_by, *METRICS])
    call = ", ".join([flags, *extra])
    return f"SELECT {columns} FROM {macro}({call})", args


def cost_per_task_rows(
    db: Database,
    group_by: list[str],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    workflows: list[str] | None = None,
    teams: list[str] | None = None,
    as_of: datetime | None = None,
) -> list[dict[str, Any]]:
    store = db.store_for(as_of)
    sql, args = cost_per_task_query(
        group_by,
        start=start,
        end=end,
        workflows=workflows,
        teams=teams,
        macro="store_cost_per_task_by" if store is not None else "cost_per_task_by",
    )
    return db.rows(sql, args, as_of=as_of)


@router.get("/api/v1/cost-per-task")
def cost_per_task(request: Request, db: Annotated[Database, Depends(get_db)]) -> Response:
    """Cost per completed task, grouped by ``group_by`` (default: workflow)."""
    q = request.query_params
    check_known(q, PARAMS)
    group_by = choices(q, "group_by", GROUP_KEYS, "workflow")
    start, end = moment(q, "start"), moment(q, "end")
    if start is not None and end is not None and end <= start:
        raise ApiError(400, "end: must be after start (the period is [start, end))")
    workflows, teams = names(q, "workflow"), names(q, "team")
    cost = one_of(q, "cost", COSTS, "inference")
    fmt = one_of(q, "format", FORMATS, "json")
    as_of = moment(q, "as_of")
    if cost == "full":
        raise ApiError(
            501,
            "cost=full needs the cost entries of POST /api/v1/costs, which are not served "
            "yet; use cost=inference",
        )
    try:
        rows = cost_per_task_rows(
            db, group_by, start=start, end=end, workflows=workflows, teams=teams, as_of=as_of
        )
    except QueryError as exc:
        raise ApiError(exc.status, exc.message) from exc
    if fmt == "csv":
        return csv_response(rows, [*group_by, *METRICS], "cost-per-task")
    return json_response(
        {
            "rows": rows,
            "currency": "USD",
            "cost": cost,
            "group_by": group_by,
            "filters": {
                "start": plain(start),
                "end": plain(end),
                "workflow": workflows,
                "team": teams,
            },
            "as_of": plain(as_of),
        }
    )
