"""``GET /api/v1/autonomy``: per workflow, whether quality and cost are proven over its
autonomy window, and the verdict (``ready`` only when both are).

Everything comes from ``autonomy_by`` (``schemas/views/autonomy.sql``: the Wilson bound and
the drift rule are in ``autonomy.sql``), judged by each workflow's ``[workflows.<name>]``
settings; ``end`` closes the window (default: today, which is not in it).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from service.api.analysis import filter_args, macro_rows, table_answer
from service.api.openapi import CSV, errors
from service.api.params import COSTS, FILTERS, Cost, Usual, one_of
from service.db import Database, get_db

router = APIRouter()

PARAMS = ("cost", *FILTERS)
#: The columns of the CSV table (JSON rows also carry the drift's two sides).
COLUMNS = (
    "workflow",
    "verdict",
    "quality_proven",
    "cost_proven",
    "success_rate",
    "wilson_lower_bound",
    "target_success_rate",
    "decided",
    "min_tasks",
    "cost_per_completed_task_usd",
    "budget_per_completed_task",
    "drift",
    "drift_threshold",
    "drift_period",
    "drift_cause",
    "window_start",
    "window_end",
    "reasons",
)


class AutonomyAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    rows: list[dict[str, Any]]


@router.get(
    "/api/v1/autonomy",
    response_model=None,
    responses={
        200: {"model": AutonomyAnswer, "content": CSV, "description": "JSON, or CSV rows"},
        **errors(400, 401, 403, 503),
    },
)
def autonomy(
    db: Annotated[Database, Depends(get_db)],
    *,
    given: Usual,
    cost: Cost = None,
) -> Response:
    """Per workflow: quality_proven, cost_proven, the verdict, and the reasons with the
    numbers behind them."""
    f = given.checked(PARAMS)
    kind = one_of("cost", cost, COSTS, "inference")
    args = filter_args(f, full_cost=("BOOLEAN", kind == "full"))
    rows = macro_rows(db, "autonomy_by", args, as_of=f.as_of)
    return table_answer(f, rows, COLUMNS, "autonomy", cost=kind)
