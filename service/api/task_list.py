"""``GET /api/v1/tasks``: the tasks behind a figure of ``/api/v1/cost-per-task``.

A cost-per-task row is the tasks of one cohort (started in ``[start, end)``, of a workflow,
team, version); this lists exactly those tasks, each with its outcome, attempts and spend, so
the dashboard (and a script) can go from any number to the rows that make it up, and from a
row to ``/api/v1/tasks/{id}``. The rows are the ``tasks`` view's (or the task store's twin of
it, rendered from the same template): nothing is computed here but the filter and the order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from schemas.signals import OUTCOMES
from schemas.templates import render
from service.api.openapi import CSV, errors
from service.api.params import (
    Names,
    Usual,
    choices,
    declared,
    names,
    one_of,
)
from service.api.render import csv_response, json_response, plain
from service.audit import note
from service.db import Database, get_db
from service.errors import ApiError

router = APIRouter()

#: What a task row answers with, in order.
COLUMNS: tuple[str, ...] = (
    "task_key",
    "task_id",
    "workflow",
    "team",
    "version",
    "started_at",
    "ended_at",
    "duration_ms",
    "outcome",
    "counted_as",
    "decided_at",
    "reason",
    "attempts",
    "signals",
    "spans",
    "model_calls",
    "errors",
    "unpriced_spans",
    "total_tokens",
    "spend_usd",
    "rework_usd",
)
#: An outcome filter names what a task is counted as (the cost-per-task columns), or its
#: outcome itself (``reopened`` is counted as failed).
OUTCOME_WORDS: tuple[str, ...] = tuple(
    dict.fromkeys(("completed", "failed", "escalated", "abandoned", "pending", *OUTCOMES))
)
ORDERS = {
    "started_at": "started_at ASC, task_key ASC",
    "-started_at": "started_at DESC, task_key DESC",
    "spend_usd": "spend_usd ASC NULLS FIRST, task_key ASC",
    "-spend_usd": "spend_usd DESC NULLS LAST, task_key ASC",
}
DEFAULT_LIMIT = 50
MAX_LIMIT = 100_000
PARAMS = (
    "start",
    "end",
    "workflow",
    "team",
    "version",
    "outcome",
    "order",
    "limit",
    "offset",
    "format",
    "as_of",
)

Outcome = Annotated[
    str | None,
    declared(
        "Comma list: what the task is counted as (completed, failed, escalated, abandoned,"
        " pending) or its outcome (reopened, rework)"
    ),
]
Order = Annotated[
    str | None,
    declared("started_at, -started_at (default: newest first), spend_usd or -spend_usd"),
]
Count = Annotated[str | None, declared(f"Rows to answer (default {DEFAULT_LIMIT})")]
Offset = Annotated[str | None, declared("Rows to skip (default 0)")]


def _count(key: str, raw: str | None, default: int, top: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError as exc:
        raise ApiError(400, f"{key}: expected a whole number, got '{raw}'") from exc
    if not 0 <= value <= top:
        raise ApiError(400, f"{key}: expected 0 .. {top}, got {value}")
    return value


def task_list_query(
    *,
    source: str,
    start: datetime | None,
    end: datetime | None,
    workflows: list[str] | None,
    teams: list[str] | None,
    versions: list[str] | None,
    outcomes: list[str] | None,
    order: str,
    limit: int,
    offset: int,
) -> tuple[str, list[Any]]:
    """The SELECT of one page of the tasks of ``source`` (task rows), with the number of
    tasks that match (``total``) on every row."""
    where: list[str] = []
    args: list[Any] = []
    for column, op, value in (("started_at", ">=", start), ("started_at", "<", end)):
        if value is not None:
            where.append(f"{column} {op} ?::TIMESTAMPTZ")
            args.append(value)
    for column, values in (("workflow", workflows), ("team", teams), ("version", versions)):
        if values is not None:
            where.append(f"list_contains(?::VARCHAR[], {column})")
            args.append(values)
    if outcomes is not None:
        where.append(
            "(list_contains(?::VARCHAR[], counted_as) OR list_contains(?::VARCHAR[], outcome))"
        )
        args += [outcomes, outcomes]
    sql = (
        f"SELECT {', '.join(COLUMNS)}, count(*) OVER () AS total FROM {source}"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" ORDER BY {ORDERS[order]} LIMIT {limit} OFFSET {offset}"
    )
    return sql, args


class TaskListAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    rows: list[dict[str, Any]]
    total: int
    limit: int
    offset: int
    currency: str


@router.get(
    "/api/v1/tasks",
    response_model=None,
    responses={
        200: {"model": TaskListAnswer, "content": CSV, "description": "JSON, or CSV rows"},
        **errors(400, 401, 403, 503),
    },
)
def task_list(
    request: Request,
    db: Annotated[Database, Depends(get_db)],
    *,
    given: Usual,
    version: Names = None,
    outcome: Outcome = None,
    order: Order = None,
    limit: Count = None,
    offset: Offset = None,
) -> Response:
    """The tasks that started in ``[start, end)`` of these workflows, teams and versions, with
    their outcome and spend: the rows behind a cost-per-task figure (a team-scoped token: its
    teams' tasks)."""
    f = given.checked(PARAMS)
    outcomes = None if outcome is None else choices("outcome", outcome, OUTCOME_WORDS, "")
    sort = one_of("order", order, tuple(ORDERS), "-started_at")
    count = _count("limit", limit, DEFAULT_LIMIT, MAX_LIMIT)
    skip = _count("offset", offset, 0, 10**12)
    fmt, at = f.format, f.as_of
    store = db.store_for(at)
    source = (
        f"({render('task_outcomes', {'task_facts': 'store_task_facts'})})"
        if store is not None
        else "tasks"
    )
    filters: dict[str, Any] = {
        "start": f.start,
        "end": f.end,
        "workflows": f.workflows,
        "teams": f.teams,
        "versions": names("version", version),
        "outcomes": outcomes,
    }
    sql, args = task_list_query(source=source, order=sort, limit=count, offset=skip, **filters)
    rows = db.rows(sql, args, as_of=at, snapshot=store.snapshot if store else None)
    total = rows[0]["total"] if rows else 0
    for r in rows:
        del r["total"]
    note(request, rows=len(rows))
    if fmt == "csv":
        return csv_response(rows, COLUMNS, "tasks")
    if not rows and skip:  # a page past the end still says how many there are
        probe, args = task_list_query(source=source, order=sort, limit=1, offset=0, **filters)
        first = db.rows(probe, args, as_of=at, snapshot=store.snapshot if store else None)
        total = first[0]["total"] if first else 0
    return json_response(
        {
            "rows": rows,
            "total": total,
            "limit": count,
            "offset": skip,
            "order": sort,
            "currency": "USD",
            "filters": {k: plain(v) for k, v in filters.items()},
            "as_of": plain(at),
        }
    )
