"""What ``/api/openapi.json`` says about every route, including the ingest side's write routes.

The read routes declare their parameters and answers with FastAPI (the shapes below); the
write routes (``POST /api/v1/signals``, ``POST /api/v1/costs``) are plain Starlette routes of
the ingest side, so their operations are added here from the item fields of
``schemas.signals`` and ``schemas.costs``. Clients and the schemathesis tests read the same
document.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict

from schemas.costs import COMPONENTS
from schemas.costs import FIELDS as COST_FIELDS
from schemas.signals import FIELDS as SIGNAL_FIELDS
from schemas.signals import OUTCOMES


class ErrorDetail(BaseModel):
    status: int
    message: str


class ErrorBody(BaseModel):
    """Every refusal: ``{"error": {"status", "message"}, "request_id"}``."""

    model_config = ConfigDict(extra="allow")

    error: ErrorDetail
    request_id: str | None = None


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers of a route, in the one error shape."""
    what = {
        400: "A parameter is unknown or malformed.",
        401: "No bearer token (when auth_tokens is set).",
        403: "Wrong bearer token.",
        404: "Not found.",
        413: "Body too large, before or after decompression.",
        415: "Another Content-Type than JSON or NDJSON.",
        503: "Busy (timeout, memory, back-pressure): retry after Retry-After seconds.",
    }
    return {s: {"model": ErrorBody, "description": what[s]} for s in statuses}


CSV = {"text/csv": {"schema": {"type": "string"}}}

_MONEY = {"type": ["number", "string"], "description": "USD, 0 .. 10^15, 12 decimal places"}
_TIME = {"type": "string", "description": "RFC 3339 time"}
_ID = {"type": "string", "minLength": 1, "maxLength": 512}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 8192}

_SIGNAL_PROPS: dict[str, dict[str, Any]] = {
    "task_id": _ID,
    "correlation_id": _ID,
    "outcome": {"type": "string", "enum": list(OUTCOMES)},
    "occurred_at": _TIME,
    "workflow": _ID,
    "reason": _TEXT,
    "rework_cost_usd": _MONEY,
    "rework_minutes": {"type": "number", "minimum": 0},
    "signal_id": _ID,
    "attributes": {"type": "object"},
}
_COST_PROPS: dict[str, dict[str, Any]] = {
    "component": {"type": "string", "enum": list(COMPONENTS)},
    "amount_usd": _MONEY,
    "period_start": {"type": "string", "description": "RFC 3339 time or a date"},
    "period_end": {"type": "string", "description": "RFC 3339 time or a date"},
    "workflow": _ID,
    "team": _ID,
    "entry_id": _ID,
    "note": _TEXT,
}
assert set(_SIGNAL_PROPS) == set(SIGNAL_FIELDS) and set(_COST_PROPS) == set(COST_FIELDS)

_ANSWER = {
    "type": "object",
    "required": ["accepted", "rejected"],
    "properties": {
        "accepted": {"type": "integer"},
        "rejected": {"type": "array", "items": {"type": "object"}},
        "warnings": {"type": "array", "items": {"type": "object"}},
    },
}


def _write_operation(summary: str, item: dict[str, Any], required: list[str]) -> dict[str, Any]:
    one = {"type": "object", "properties": item, "required": required}
    error = {"$ref": "#/components/schemas/ErrorBody"}
    json_error = {"content": {"application/json": {"schema": error}}}
    return {
        "post": {
            "summary": summary,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"oneOf": [one, {"type": "array", "items": one}]}
                    },
                    "application/x-ndjson": {"schema": {"type": "string"}},
                },
            },
            "responses": {
                "200": {
                    "description": "Stored (fsynced); per-item errors and warnings listed.",
                    "content": {"application/json": {"schema": _ANSWER}},
                },
                **{
                    str(s): {"description": d, **json_error}
                    for s, d in (
                        (400, "No valid item, or not JSON / NDJSON (the items' errors listed)."),
                        (401, "No bearer token (when auth_tokens is set)."),
                        (403, "Wrong bearer token."),
                        (413, "Body too large."),
                        (415, "Another Content-Type."),
                        (503, "Ingest is behind: nothing was stored; retry after Retry-After."),
                    )
                },
            },
        }
    }


def install_openapi(app: FastAPI) -> None:
    """Serve the read routes' generated document with the write routes added."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            paths = doc.setdefault("paths", {})
            paths["/api/v1/signals"] = _write_operation(
                "Completion signals: one object, an array, or NDJSON.",
                _SIGNAL_PROPS,
                ["outcome"],
            )
            paths["/api/v1/costs"] = _write_operation(
                "Non-inference cost entries: one object, an array, or NDJSON.",
                _COST_PROPS,
                ["component", "amount_usd", "period_start", "period_end"],
            )
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            if "ErrorBody" not in schemas:  # no read route mounted: add it by hand
                body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(body.pop("$defs", {}))
                schemas["ErrorBody"] = body
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
