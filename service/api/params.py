"""Query parameters of the read API, checked strictly: a typo is a 400 that names the
parameter, never a silently different answer."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query
from starlette.datastructures import QueryParams

from schemas.jsonitems import rfc3339_ns
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
