"""``POST /api/v1/query``: read-only SQL over the views (``service.sql``).

Body ``{"sql": "SELECT ...", "format": "json" | "csv" | "arrow"}`` (``format`` optional: else
``?format=``, else the ``Accept`` header: ``text/csv``, ``application/vnd.apache.arrow.stream``,
else JSON). JSON answers ``{"columns": [...], "types": [...], "rows": [[...], ...],
"row_count": n, "truncated": false, "max_rows": cap}``; CSV and Arrow IPC carry
``X-Tasklake-Truncated``. A team-scoped token's query sees its teams' rows only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from service.access import ReadPrincipal
from service.api.openapi import CSV, errors
from service.api.params import declared, one_of
from service.api.render import (
    ARROW_STREAM,
    arrow_response,
    arrow_rows,
    csv_table_response,
    json_response,
)
from service.audit import note
from service.sql import SqlRunner
from service.sql.statements import MAX_SQL_CHARS

router = APIRouter()

FORMATS = ("json", "csv", "arrow")
_ACCEPT = {"text/csv": "csv", ARROW_STREAM: "arrow", "application/json": "json"}


class QueryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sql: str = Field(min_length=1, max_length=MAX_SQL_CHARS, description="One read-only query")
    format: Literal["json", "csv", "arrow"] | None = None


class QueryAnswer(BaseModel):
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    row_count: int
    truncated: bool
    max_rows: int


def answer_format(body: str | None, param: str | None, accept: str | None) -> str:
    """The body's format, else ``?format=``, else the first known type ``Accept`` names."""
    if body is not None:
        return body
    if param is not None:
        return one_of("format", param, FORMATS, "json")
    for part in (accept or "").split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in _ACCEPT:
            return _ACCEPT[media]
    return "json"


def runner(request: Request) -> SqlRunner:
    state = request.app.state
    found = getattr(state, "sql", None)
    if found is None:
        found = state.sql = SqlRunner.for_database(state.db)
    assert isinstance(found, SqlRunner)
    return found


@router.post(
    "/api/v1/query",
    response_model=None,
    responses={
        200: {
            "model": QueryAnswer,
            "content": {**CSV, ARROW_STREAM: {"schema": {"type": "string"}}},
            "description": "JSON, CSV or Arrow IPC",
        },
        **errors(400, 401, 403, 503),
    },
)
def query(
    request: Request,
    principal: ReadPrincipal,
    body: Annotated[QueryBody, Body()],
    format: Annotated[str | None, declared("json, csv or arrow", enum=list(FORMATS))] = None,
) -> Response:
    """Run one read-only query over the views (a team-scoped token: its teams' rows)."""
    note(request, sql=body.sql)
    fmt = answer_format(body.format, format, request.headers.get("accept"))
    answer = runner(request).query(body.sql, principal)
    table = answer.table
    note(request, rows=table.num_rows, truncated=answer.truncated)
    flag = {"X-Tasklake-Truncated": "true" if answer.truncated else "false"}
    if fmt == "arrow":
        return arrow_response(table, **flag)
    rows = arrow_rows(table)
    if fmt == "csv":
        return csv_table_response(table.column_names, rows, "query", **flag)
    max_rows = request.app.state.db.settings.query_max_rows
    return json_response(
        {
            "columns": table.column_names,
            "types": answer.types,
            "rows": rows,
            "row_count": len(rows),
            "truncated": answer.truncated,
            "max_rows": max_rows,
        }
    )
