"""``GET /api/v1/time-saved``: hours of human work each workflow saved (completed tasks x
``human_minutes_per_task``), their value at ``human_cost_per_hour`` and the net value after
the fully loaded spend (``time_saved_by``, ``schemas/views/outcome_reasons.sql``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from service.api.analysis import filter_args, macro_rows, table_answer
from service.api.openapi import CSV, errors
from service.api.params import FILTERS, Usual
from service.db import Database, get_db

router = APIRouter()

COLUMNS = (
    "workflow",
    "tasks",
    "completed",
    "pending",
    "human_minutes_per_task",
    "hours_saved",
    "human_cost_per_hour",
    "value_usd",
    "fully_loaded_spend_usd",
    "net_value_usd",
    "cost_per_completed_task_usd",
)


class TimeSavedAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    rows: list[dict[str, Any]]


@router.get(
    "/api/v1/time-saved",
    response_model=None,
    responses={
        200: {"model": TimeSavedAnswer, "content": CSV, "description": "JSON, or CSV rows"},
        **errors(400, 401, 403, 503),
    },
)
def time_saved(db: Annotated[Database, Depends(get_db)], *, given: Usual) -> Response:
    """Hours saved, their value and the net value per workflow."""
    f = given.checked(FILTERS)
    rows = macro_rows(db, "time_saved_by", filter_args(f), as_of=f.as_of)
    return table_answer(f, rows, COLUMNS, "time-saved")
