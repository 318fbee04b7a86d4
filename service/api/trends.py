"""``GET /api/v1/trends``: cost per completed task of each workflow per day, week or month,
with its factors and components, and a diagnosis of its recent periods.

The rows come from ``trends_by`` and the diagnosis from ``trend_diagnosis_by``
(``schemas/views/trends.sql``: ``diagnosis.sql`` says when each state holds); thresholds are
each workflow's ``[workflows.<name>]`` settings. ``cost`` defaults to ``full``: rework and
infrastructure, two of the causes a rise can have, are fully loaded components.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from schemas.settings import PERIODS
from service.api.analysis import filter_args, macro_rows, table_answer
from service.api.openapi import CSV, errors
from service.api.params import COSTS, FILTERS, Usual, declared, one_of
from service.db import Database, get_db

router = APIRouter()

PARAMS = ("period", "cost", *FILTERS)
#: The columns of a period row, in order.
COLUMNS = (
    "workflow",
    "period_start",
    "attempts",
    "tasks",
    "completed",
    "failed",
    "escalated",
    "abandoned",
    "pending",
    "failure_rate",
    "spend_usd",
    "cost_per_completed_task_usd",
    "cost_per_attempt_usd",
    "tokens_per_attempt",
    "price_per_token_usd",
    "attempts_per_completed_task",
    "inference_per_completed_task_usd",
    "unpriced_spans",
)
FULL_COLUMNS = (
    "non_inference_per_completed_task_usd",
    "rework_per_completed_task_usd",
    "labor_per_completed_task_usd",
    "infrastructure_per_completed_task_usd",
    "licence_per_completed_task_usd",
    "other_per_completed_task_usd",
    "inference_usd",
    "rework_usd",
    "labor_usd",
    "infrastructure_usd",
    "licence_usd",
    "other_usd",
)

Period = Annotated[
    str | None, declared("day, week (default) or month: what a row covers", enum=list(PERIODS))
]
TrendCost = Annotated[
    str | None,
    declared("full (default): every cost component, or inference", enum=list(COSTS)),
]


class TrendsAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    rows: list[dict[str, Any]]
    diagnosis: list[dict[str, Any]]
    period: str


@router.get(
    "/api/v1/trends",
    response_model=None,
    responses={
        200: {"model": TrendsAnswer, "content": CSV, "description": "JSON, or CSV rows"},
        **errors(400, 401, 403, 503),
    },
)
def trends(
    db: Annotated[Database, Depends(get_db)],
    *,
    given: Usual,
    period: Period = None,
    cost: TrendCost = None,
) -> Response:
    """Per period: spend, tasks, completed, cost per completed task, its factors and
    components; per workflow: rising, flat_with_growth, improving, stable or
    insufficient_data, with the numbers behind it."""
    f = given.checked(PARAMS)
    every = one_of("period", period, PERIODS, "week")
    kind = one_of("cost", cost, COSTS, "full")
    full = kind == "full"
    args = filter_args(f, period=("VARCHAR", every), full_cost=("BOOLEAN", full))
    rows = macro_rows(db, "trends_by", args, as_of=f.as_of)
    columns = [*COLUMNS, *(FULL_COLUMNS if full else ())]
    diagnosis = (
        [] if f.format == "csv" else macro_rows(db, "trend_diagnosis_by", args, as_of=f.as_of)
    )
    rows = [{c: r[c] for c in columns} for r in rows]
    return table_answer(f, rows, columns, "trends", period=every, cost=kind, diagnosis=diagnosis)
