"""``GET /api/v1/cost-per-task``: cost per completed task for any grouping.

Every figure comes from the ``cost_per_task_by`` macro (``schemas/cost_rows.sql``; with
``cost=full`` the cost entries allocated by ``schemas/allocation.sql``); this module only checks
the parameters, picks the columns and renders them. With ``cost=full`` the answer also lists
under ``unallocated`` (``schemas/unallocated.sql``) the cost entries that could not be
allocated (no inference spend in their scope, ``kind: "entry"``) and the rework money of
signals that count for no task (unknown task, or another workflow named: ``kind: "signal"``):
they are in no row, never silently dropped, and ``unallocated_usd`` adds them up.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from schemas.auth import Principal
from schemas.views import COMPONENT_COLUMNS
from service.access import ReadPrincipal
from service.api.openapi import CSV, errors
from service.api.params import (
    COSTS,
    FILTERS,
    Cost,
    Usual,
    choices,
    declared,
    one_of,
)
from service.api.render import csv_response, json_response, plain
from service.audit import note
from service.db import Database, get_db

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
PARAMS = ("group_by", "cost", *FILTERS)


def cost_per_task_query(
    group_by: list[str],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    workflows: list[str] | None = None,
    teams: list[str] | None = None,
    full: bool = False,
    macro: str = "cost_per_task_by",
) -> tuple[str, list[Any]]:
    """The SELECT over ``macro`` (``cost_per_task_by``, or the store's twin rendered from the
    same template) for these parameters, group keys first in the order asked; ``full``: the
    fully loaded cost, with its components."""
    flags = ", ".join(
        [f"by_{key} := {'true' if key in group_by else 'false'}" for key in GROUP_KEYS]
        + [f"full_cost := {'true' if full else 'false'}"]
    )
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
    columns = ", ".join([*group_by, *METRICS, *(COMPONENT_COLUMNS if full else ())])
    call = ", ".join([flags, *extra])
    return f"SELECT {columns} FROM {macro}({call})", args


def unallocated_query(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    workflows: list[str] | None = None,
    teams: list[str] | None = None,
    macro: str = "unallocated_costs_in",
) -> tuple[str, list[Any]]:
    """What ``cost=full`` puts in no row (``schemas/unallocated.sql``): entries without spend
    in their scope, and the rework of signals that count for no task, within the filters."""
    sql = (
        f"SELECT * FROM {macro}(start_at := ?::TIMESTAMPTZ, end_at := ?::TIMESTAMPTZ,"
        " workflows := ?::VARCHAR[], teams := ?::VARCHAR[])"
    )
    return sql, [start, end, workflows, teams]


def cost_per_task_rows(
    db: Database,
    group_by: list[str],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    workflows: list[str] | None = None,
    teams: list[str] | None = None,
    as_of: datetime | None = None,
    full: bool = False,
) -> list[dict[str, Any]]:
    store = db.store_for(as_of)
    sql, args = cost_per_task_query(
        group_by,
        start=start,
        end=end,
        workflows=workflows,
        teams=teams,
        full=full,
        macro="store_cost_per_task_by" if store is not None else "cost_per_task_by",
    )
    return db.rows(sql, args, as_of=as_of, snapshot=store.snapshot if store else None)


def unallocated_rows(
    db: Database,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    workflows: list[str] | None = None,
    teams: list[str] | None = None,
    as_of: datetime | None = None,
) -> list[dict[str, Any]]:
    """What ``cost=full`` could put in no row (see ``unallocated_query``)."""
    store = db.store_for(as_of)
    sql, args = unallocated_query(
        start=start,
        end=end,
        workflows=workflows,
        teams=teams,
        macro="store_unallocated_costs_in" if store is not None else "unallocated_costs_in",
    )
    return db.rows(sql, args, as_of=as_of, snapshot=store.snapshot if store else None)


def visible_unallocated(principal: Principal, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a caller sees of the unallocated money: a team-scoped one only the entries naming
    one of its teams (an entry for every team, and a signal of no known task, are nobody's)."""
    if principal.teams is None:
        return rows
    return [r for r in rows if r["kind"] == "entry" and principal.sees(r["team"])]


GroupBy = Annotated[
    str | None,
    declared(
        f"Comma list of {', '.join(GROUP_KEYS)} (default: workflow)",
        pattern=f"^({'|'.join(GROUP_KEYS)})(,({'|'.join(GROUP_KEYS)}))*$",
    ),
]


class CostPerTaskAnswer(BaseModel):
    """The JSON answer (``unallocated`` and ``unallocated_usd`` with ``cost=full`` only)."""

    model_config = ConfigDict(extra="allow")

    rows: list[dict[str, Any]]
    currency: str
    cost: str
    group_by: list[str]
    filters: dict[str, Any]
    as_of: str | None


@router.get(
    "/api/v1/cost-per-task",
    response_model=None,
    responses={
        200: {"model": CostPerTaskAnswer, "content": CSV, "description": "JSON, or CSV rows"},
        **errors(400, 401, 403, 503),
    },
)
def cost_per_task(
    request: Request,
    db: Annotated[Database, Depends(get_db)],
    principal: ReadPrincipal,
    *,
    given: Usual,
    group_by: GroupBy = None,
    cost: Cost = None,
) -> Response:
    """Cost per completed task, grouped by ``group_by`` (default: workflow). A team-scoped
    token reads its teams' tasks: ``team`` narrows them, a team outside them is 403."""
    f = given.checked(PARAMS)
    keys = choices("group_by", group_by, GROUP_KEYS, "workflow")
    kind = one_of("cost", cost, COSTS, "inference")
    full = kind == "full"
    rows = cost_per_task_rows(
        db,
        keys,
        start=f.start,
        end=f.end,
        workflows=f.workflows,
        teams=f.teams,
        as_of=f.as_of,
        full=full,
    )
    note(request, rows=len(rows))
    if f.format == "csv":
        columns = [*keys, *METRICS, *(COMPONENT_COLUMNS if full else ())]
        return csv_response(rows, columns, "cost-per-task")
    doc: dict[str, Any] = {
        "rows": rows,
        "currency": "USD",
        "cost": kind,
        "group_by": keys,
        "filters": f.plain(),
        "as_of": plain(f.as_of),
    }
    if full:
        unallocated = visible_unallocated(
            principal,
            unallocated_rows(
                db, start=f.start, end=f.end, workflows=f.workflows, teams=f.teams, as_of=f.as_of
            ),
        )
        doc["unallocated"] = unallocated
        doc["unallocated_usd"] = sum((u["amount_usd"] for u in unallocated), Decimal(0))
    return json_response(doc)
