"""``GET /api/v1/reasons``: why tasks did not complete: escalation, failure and abandonment
reasons of each workflow, ranked by how many tasks they ended and what those tasks spent
(``outcome_reasons_by``, ``schemas/views/outcome_reasons.sql``)."""

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
    "rank",
    "counted_as",
    "outcome",
    "reason",
    "tasks",
    "attempts",
    "spend_usd",
    "signal_rework_usd",
    "share_of_decided",
)


class ReasonsAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    rows: list[dict[str, Any]]


@router.get(
    "/api/v1/reasons",
    response_model=None,
    responses={
        200: {"model": ReasonsAnswer, "content": CSV, "description": "JSON, or CSV rows"},
        **errors(400, 401, 403, 503),
    },
)
def reasons(db: Annotated[Database, Depends(get_db)], *, given: Usual) -> Response:
    """Escalation, failure and abandonment reasons per workflow, with tasks and spend."""
    f = given.checked(FILTERS)
    rows = macro_rows(db, "outcome_reasons_by", filter_args(f), as_of=f.as_of)
    return table_answer(f, rows, COLUMNS, "reasons")
