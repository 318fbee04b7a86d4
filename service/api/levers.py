"""``GET /api/v1/levers``: the five levers of each workflow, each with its measurement and the
dollars at stake for the period, ranked.

Everything comes from ``levers_by`` (``schemas/views/levers.sql``; each lever's definition is
its ``lever_*.sql`` template); this module flattens its ranking into rows, each with the
lever's measurement. What-if dollars (routing, caching, prompt size, retrieval) price tokens
at each model's list price in force on ``priced_on`` (``schemas/prices.py``: the pricer ingest
uses); failed runs are recorded spend.
"""

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

PARAMS = FILTERS
LEVERS = ("routing", "caching", "retrieval", "prompt_size", "failed_runs")
COLUMNS = ("workflow", "rank", "lever", "usd_at_stake", "measurement")


def lever_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per workflow and lever, in the order of the workflow's ranking."""
    out = []
    for r in rows:
        for rank, pick in enumerate(r["ranking"], start=1):
            measurement = dict(r[pick["lever"]] or {})
            measurement.pop("workflow", None)
            measurement.pop("usd_at_stake", None)
            out.append(
                {
                    "workflow": r["workflow"],
                    "rank": rank,
                    "lever": pick["lever"],
                    "usd_at_stake": pick["usd_at_stake"],
                    "measurement": measurement,
                }
            )
    return out


class LeversAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    rows: list[dict[str, Any]]


@router.get(
    "/api/v1/levers",
    response_model=None,
    responses={
        200: {"model": LeversAnswer, "content": CSV, "description": "JSON, or CSV rows"},
        **errors(400, 401, 403, 503),
    },
)
def levers(
    db: Annotated[Database, Depends(get_db)],
    *,
    given: Usual,
) -> Response:
    """Routing, caching, retrieval, prompt size and failed runs: each lever's measurement and
    the dollars at stake, ranked per workflow."""
    f = given.checked(PARAMS)
    rows = lever_rows(macro_rows(db, "levers_by", filter_args(f), as_of=f.as_of, priced=True))
    return table_answer(f, rows, COLUMNS, "levers")
