"""Query parameters of the read API, checked strictly: a typo is a 400 that names the
parameter, never a silently different answer."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from starlette.datastructures import QueryParams

from schemas.auth import Principal
from schemas.jsonitems import rfc3339_ns
from service.access import ReadPrincipal, team_filter
from service.errors import ApiError

FORMATS = ("json", "csv")
#: What the OpenAPI document says a time parameter looks like (the parser is ``moment``).
TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2}))?$"


def declared(description: str, **schema: Any) -> Any:
    """A query parameter as the OpenAPI document describes it. Values arrive as text and are
    checked by the functions below (whose 400s name the parameter and the values allowed),
    so ``schema`` only documents them: ``enum``, ``pattern``."""
    return Query(description=description, json_schema_extra=schema or None)


#: The declared parameters every table route shares.
Format = Annotated[str | None, declared("json (default) or csv", enum=list(FORMATS))]
AsOf = Annotated[
    str | None,
    declared(
        "Outcomes as they stood at this time (RFC 3339 or a date; default: now)",
        pattern=TIME_PATTERN,
    ),
]


Names = Annotated[str | None, declared("Comma list of names to keep")]
Start = Annotated[
    str | None, declared("Tasks started at or after (RFC 3339 or a date)", pattern=TIME_PATTERN)
]
End = Annotated[
    str | None, declared("Tasks started before (RFC 3339 or a date)", pattern=TIME_PATTERN)
]
COSTS = ("inference", "full")
Cost = Annotated[
    str | None, declared("inference (default) or full: every cost component", enum=list(COSTS))
]
#: The parameters every analysis takes (DESIGN §7): the filters, the format and the moment.
FILTERS = ("start", "end", "workflow", "team", "format", "as_of")


@dataclass(frozen=True)
class Filters:
    """The usual filters of a read route, checked."""

    start: datetime | None
    end: datetime | None
    workflows: list[str] | None
    teams: list[str] | None
    format: str
    as_of: datetime | None

    def plain(self) -> dict[str, Any]:
        """As an answer shows them."""
        return {
            "start": _plain_time(self.start),
            "end": _plain_time(self.end),
            "workflow": self.workflows,
            "team": self.teams,
        }


def _plain_time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def filters(
    params: QueryParams,
    known: Collection[str],
    *,
    start: str | None,
    end: str | None,
    workflow: str | None,
    team: str | None,
    format: str | None,
    as_of: str | None,
) -> Filters:
    """Check that ``params`` holds only ``known`` ones, and the usual filters."""
    check_known(params, known)
    since, until = moment("start", start), moment("end", end)
    if since is not None and until is not None and until <= since:
        raise ApiError(400, "end: must be after start (the period is [start, end))")
    return Filters(
        since,
        until,
        names("workflow", workflow),
        names("team", team),
        one_of("format", format, FORMATS, "json"),
        moment("as_of", as_of),
    )


@dataclass(frozen=True)
class Given:
    """The usual filters as a request gives them (``usual``), before ``checked``; with the
    caller, whose teams bound ``team``."""

    params: QueryParams
    principal: Principal
    start: str | None
    end: str | None
    workflow: str | None
    team: str | None
    format: str | None
    as_of: str | None

    def checked(self, known: Collection[str]) -> Filters:
        """The filters, once ``params`` holds only ``known`` ones; ``teams`` within the
        caller's (``service.access.team_filter``)."""
        f = filters(
            self.params,
            known,
            start=self.start,
            end=self.end,
            workflow=self.workflow,
            team=self.team,
            format=self.format,
            as_of=self.as_of,
        )
        return replace(f, teams=team_filter(self.principal, f.teams))


def usual(
    request: Request,
    principal: ReadPrincipal,
    *,
    start: Start = None,
    end: End = None,
    workflow: Names = None,
    team: Names = None,
    format: Format = None,
    as_of: AsOf = None,
) -> Given:
    """FastAPI dependency: the usual filters, declared once for every route that takes them."""
    return Given(request.query_params, principal, start, end, workflow, team, format, as_of)


Usual = Annotated[Given, Depends(usual)]


def check_known(params: QueryParams, known: Collection[str]) -> None:
    for key in params:
        if key not in known:
            raise ApiError(400, f"unknown parameter '{key}' (known: {', '.join(sorted(known))})")
    for key in known:
        if len(params.getlist(key)) > 1:
            raise ApiError(400, f"parameter '{key}' given more than once")


def one_of(key: str, raw: str | None, allowed: Sequence[str], default: str) -> str:
    """One word from ``allowed`` (any case); ``default`` when absent."""
    value = (raw if raw is not None else default).strip().lower()
    if value not in allowed:
        raise ApiError(400, f"{key}: expected one of {', '.join(allowed)}, got '{value}'")
    return value


def names(key: str, raw: str | None) -> list[str] | None:
    """A comma list of names (``workflow=a,b``); None when absent."""
    if raw is None:
        return None
    values = [v.strip() for v in raw.split(",") if v.strip()]
    if not values:
        raise ApiError(400, f"{key}: expected one or more names, comma separated")
    return values


def choices(key: str, raw: str | None, allowed: Sequence[str], default: str) -> list[str]:
    """A comma list of distinct words from ``allowed``, in the order given."""
    raw = raw if raw is not None else default
    values = [v.strip().lower() for v in raw.split(",")]
    if not raw.strip() or any(not v for v in values):
        raise ApiError(400, f"{key}: expected a comma list of {', '.join(allowed)}")
    for v in values:
        if v not in allowed:
            raise ApiError(400, f"{key}: unknown '{v}' (allowed: {', '.join(allowed)})")
    if len(set(values)) != len(values):
        raise ApiError(400, f"{key}: a value is listed twice")
    return values


def moment(key: str, raw: str | None) -> datetime | None:
    """An RFC 3339 time or a date (midnight UTC); None when absent."""
    if raw is None:
        return None
    try:
        ns = rfc3339_ns(raw.strip(), allow_date=True)
    except ValueError as exc:
        raise ApiError(400, f"{key}: {exc}, got '{raw}'") from exc
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(
        microsecond=(ns // 1000) % 1_000_000
    )
