"""``GET /api/v1/compare``: two cohorts of one workflow side by side, and why cost per
completed task moved between them.

``a`` and ``b`` name the cohorts: ``version:v2``, ``team:support``, ``period:2026-10`` (a
year ``2026``, a month ``2026-10``, an ISO week ``2026-W41``, a day ``2026-10-05``, or a range
``2026-10-01..2026-10-15``: start included, end not), or several of them joined by commas
(``version:v2,period:2026-11``). Both sides and their change come from ``compare_by``, the
split of the change from ``compare_decomposition_by`` (``schemas/views/compare.sql``: LMDI);
this module only parses the cohorts and shapes the rows.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from service.access import ReadPrincipal
from service.api.analysis import Arg, frame, macro_rows
from service.api.openapi import CSV, errors
from service.api.params import (
    COSTS,
    FILTERS,
    AsOf,
    Cost,
    End,
    Format,
    Given,
    Names,
    Start,
    declared,
    moment,
    one_of,
)
from service.api.render import csv_response, json_response
from service.db import Database, get_db
from service.errors import ApiError

router = APIRouter()

PARAMS = ("a", "b", "cost", *FILTERS)
#: The rows of the compare table, in order (the factors of the decomposition last).
METRICS = (
    "attempts",
    "tasks",
    "completed",
    "pending",
    "failure_rate",
    "tokens_per_attempt",
    "cost_per_attempt_usd",
    "spend_usd",
    "cost_per_completed_task_usd",
    "price_per_token_usd",
    "attempts_per_completed_task",
)
FULL_METRICS = ("inference_per_completed_task_usd", "non_inference_per_completed_task_usd")
#: Each part of the decomposition: (name, its column, the factor it moves).
PARTS = (
    ("price_per_token", "part_price_per_token", "price_per_token_usd"),
    ("tokens_per_attempt", "part_tokens_per_attempt", "tokens_per_attempt"),
    (
        "attempts_per_completed_task",
        "part_attempts_per_completed_task",
        "attempts_per_completed_task",
    ),
)
COMPONENTS = ("rework", "labor", "infrastructure", "licence", "other")
#: What a side answers with (the component figures with ``cost=full`` only).
SIDE_KEYS = (
    "started_from",
    "started_before",
    "attempts",
    "tasks",
    "completed",
    "failed",
    "escalated",
    "abandoned",
    "pending",
    "success_rate",
    "failure_rate",
    "tokens",
    "tokens_per_attempt",
    "spend_usd",
    "cost_per_attempt_usd",
    "cost_per_completed_task_usd",
    "unpriced_spans",
    "price_per_token_usd",
    "attempts_per_completed_task",
    "inference_per_completed_task_usd",
)
FULL_SIDE_KEYS = (
    "non_inference_per_completed_task_usd",
    *(f"{c}_per_completed_task_usd" for c in COMPONENTS),
    "inference_usd",
    *(f"{c}_usd" for c in COMPONENTS),
)

_COHORT = "version:<v>, team:<t> or period:<2026 | 2026-10 | 2026-W41 | 2026-10-05 | a..b>"
Cohort = Annotated[
    str | None,
    declared(f"A cohort of the workflow: {_COHORT}; several joined by commas"),
]
Workflow = Annotated[str | None, declared("The workflow both cohorts belong to (required)")]


def _period(key: str, text: str) -> tuple[datetime, datetime]:
    """[start, end) of a period: a year, month, ISO week, day, or ``a..b``."""

    def at(d: date) -> datetime:
        return datetime(d.year, d.month, d.day, tzinfo=UTC)

    try:
        if ".." in text:
            first, _, last = text.partition("..")
            since, until = moment(key, first), moment(key, last)
            assert since is not None and until is not None
            if until <= since:
                raise ApiError(400, f"{key}: the period {text!r} ends before it starts")
            return since, until
        if re.fullmatch(r"\d{4}", text):
            year = int(text)
            return at(date(year, 1, 1)), at(date(year + 1, 1, 1))
        if re.fullmatch(r"\d{4}-\d{2}", text):
            first_day = date.fromisoformat(text + "-01")
            next_month = (first_day.replace(day=28) + timedelta(days=4)).replace(day=1)
            return at(first_day), at(next_month)
        if m := re.fullmatch(r"(\d{4})-W(\d{2})", text):
            monday = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
            return at(monday), at(monday + timedelta(days=7))
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = date.fromisoformat(text)
            return at(day), at(day + timedelta(days=1))
    except (ValueError, OverflowError) as exc:
        raise ApiError(400, f"{key}: {text!r} is not a period ({exc})") from exc
    raise ApiError(
        400, f"{key}: {text!r} is not a period (2026, 2026-10, 2026-W41, 2026-10-05, a..b)"
    )


def cohort(key: str, raw: str | None) -> dict[str, Any]:
    """The version, team and [start, end) of a cohort like ``version:v2,period:2026-11``."""
    if raw is None or not raw.strip():
        raise ApiError(400, f"{key}: required, e.g. {key}=version:v1 ({_COHORT})")
    out: dict[str, Any] = {"version": None, "team": None, "start": None, "end": None}
    for part in raw.split(","):
        kind, sep, value = part.strip().partition(":")
        kind, value = kind.strip().lower(), value.strip()
        if not sep or not value or kind not in ("version", "team", "period"):
            raise ApiError(400, f"{key}: expected {_COHORT}, got {part.strip()!r}")
        if kind == "period":
            if out["start"] is not None:
                raise ApiError(400, f"{key}: one period per cohort")
            out["start"], out["end"] = _period(key, value)
        elif out[kind] is not None:
            raise ApiError(400, f"{key}: one {kind} per cohort")
        else:
            out[kind] = value
    return out


def compare_args(
    workflow: str, a: dict[str, Any], b: dict[str, Any], f: Any, *, full: bool
) -> dict[str, Arg]:
    args: dict[str, Arg] = {
        "workflow_name": ("VARCHAR", workflow),
        "start_at": ("TIMESTAMPTZ", f.start),
        "end_at": ("TIMESTAMPTZ", f.end),
        "teams": ("VARCHAR[]", f.teams),
        "full_cost": ("BOOLEAN", full),
    }
    for side, c in (("a", a), ("b", b)):
        args[f"{side}_version"] = ("VARCHAR", c["version"])
        args[f"{side}_team"] = ("VARCHAR", c["team"])
        args[f"{side}_start"] = ("TIMESTAMPTZ", c["start"])
        args[f"{side}_end"] = ("TIMESTAMPTZ", c["end"])
    return args


def decomposition_doc(row: dict[str, Any], *, full: bool) -> dict[str, Any]:
    """The decomposition as the answer shows it: its parts by name."""
    parts = {name: row[column] for name, column, _ in PARTS}
    doc: dict[str, Any] = {
        "method": row["method"],
        "total_change_usd": row["total_change_usd"],
        "parts": parts,
    }
    if full:
        parts["non_inference"] = row["part_non_inference"]
        doc["non_inference_by_component"] = {c: row[f"part_{c}"] for c in COMPONENTS}
    doc |= {
        "sum_of_parts_usd": row["sum_of_parts_usd"],
        "residual_usd": row["residual_usd"],
        "largest_increase": row["largest_increase"],
        "explanation": row["explanation"],
    }
    return doc


class CompareAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    workflow: str
    a: dict[str, Any]
    b: dict[str, Any]
    change: dict[str, Any]
    rows: list[dict[str, Any]]
    decomposition: dict[str, Any]


@router.get(
    "/api/v1/compare",
    response_model=None,
    responses={
        200: {"model": CompareAnswer, "content": CSV, "description": "JSON, or CSV rows"},
        **errors(400, 401, 403, 503),
    },
)
def compare(
    request: Request,
    db: Annotated[Database, Depends(get_db)],
    principal: ReadPrincipal,
    *,
    a: Cohort = None,
    b: Cohort = None,
    start: Start = None,
    end: End = None,
    workflow: Workflow = None,
    team: Names = None,
    cost: Cost = None,
    format: Format = None,
    as_of: AsOf = None,
) -> Response:
    """Two cohorts of one workflow side by side, and the change of cost per completed task
    split exactly into its factors (LMDI)."""
    given = Given(request.query_params, principal, start, end, workflow, team, format, as_of)
    f = given.checked(PARAMS)  # its own workflow parameter (one name), the usual rest
    if f.workflows is None or len(f.workflows) != 1:
        raise ApiError(400, "workflow: required, one name (both cohorts belong to it)")
    side_a, side_b = cohort("a", a), cohort("b", b)
    kind = one_of("cost", cost, COSTS, "inference")
    full = kind == "full"
    args = compare_args(f.workflows[0], side_a, side_b, f, full=full)
    sides = {r["side"]: r for r in macro_rows(db, "compare_by", args, as_of=f.as_of)}
    (split,) = macro_rows(db, "compare_decomposition_by", args, as_of=f.as_of)
    keys = [*SIDE_KEYS, *(FULL_SIDE_KEYS if full else ())]
    metrics = [*METRICS, *(FULL_METRICS if full else ())]
    rows = [
        {"metric": m, "a": sides["a"][m], "b": sides["b"][m], "change": sides["change"][m]}
        for m in metrics
    ]
    parts = [(name, column, factor) for name, column, factor in PARTS]
    if full:
        parts.append(
            ("non_inference", "part_non_inference", "non_inference_per_completed_task_usd")
        )
    rows += [
        {
            "metric": f"part:{name}",
            "a": sides["a"][factor],
            "b": sides["b"][factor],
            "change": split[column],
        }
        for name, column, factor in parts
    ]
    if f.format == "csv":
        return csv_response(rows, ["metric", "a", "b", "change"], "compare")
    doc = frame(
        f,
        workflow=f.workflows[0],
        cost=kind,
        a={"cohort": a, **{k: sides["a"][k] for k in keys}},
        b={"cohort": b, **{k: sides["b"][k] for k in keys}},
        change={k: sides["change"][k] for k in keys if k not in SIDE_KEYS[:2]},
        rows=rows,
        decomposition=decomposition_doc(split, full=full),
    )
    return json_response(doc)
