"""One JSON error shape for the whole REST API, one request id per request, and a log line
for every 5xx.

Every error answer is ``{"error": {"status": n, "message": "..."}, "request_id": "..."}``.
Handlers raise ``ApiError`` (or let FastAPI raise its own HTTP/validation errors, or let a
query fail with ``service.db.QueryError``); ``install_error_handlers`` maps each of them here,
once, so a dashboard or script needs exactly one code path for failures. A query that timed
out or ran out of memory is a passing condition: 503 with ``Retry-After``.

``RequestIdMiddleware`` wraps everything the server answers (API, ingest routes, health): it
takes a sane incoming ``X-Request-Id`` (else makes one), keeps it in ``scope["state"]`` for
handlers to quote, sends it back on every response, and logs every 5xx at ERROR with that id
and the exception behind it (which handlers leave in ``scope["state"]["error"]``). An
exception nobody handled is logged with its traceback and answered 500 in the same shape.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Mapping, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.db import QueryError

log = logging.getLogger("tasklake.http")

REQUEST_ID_HEADER = "X-Request-Id"
#: An incoming request id is kept when it is this plain (it goes into logs and headers).
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


class ApiError(Exception):
    """An error with the HTTP status it deserves."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def request_id(scope: Scope | Mapping[str, Any]) -> str | None:
    """The id ``RequestIdMiddleware`` gave this request (None outside it)."""
    state = scope.get("state")
    return state.get("request_id") if isinstance(state, Mapping) else None


def note_error(scope: MutableMapping[str, Any], exc: BaseException) -> None:
    """Leave ``exc`` for the 5xx log line of this request."""
    scope.setdefault("state", {})["error"] = exc


def error_body(status: int, message: str, rid: str | None = None, **extra: Any) -> dict[str, Any]:
    """The one error shape (plus ``extra`` keys, e.g. a write route's rejected items)."""
    body: dict[str, Any] = {"error": {"status": status, "message": message}, **extra}
    if rid is not None:
        body["request_id"] = rid
    return body


def error_response(
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    *,
    request: Request | None = None,
) -> JSONResponse:
    rid = request_id(request.scope) if request is not None else None
    return JSONResponse(
        error_body(status, message, rid), status_code=status, headers=dict(headers or {})
    )


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        note_error(request.scope, exc)
        return error_response(exc.status, exc.message, exc.headers, request=request)

    async def on_query_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, QueryError)
        note_error(request.scope, exc)
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return error_response(exc.status, exc.message, headers, request=request)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = getattr(exc, "headers", None)
        return error_response(exc.status_code, str(exc.detail), headers, request=request)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body"))
            parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", ""))
        return error_response(400, "; ".join(parts) or "invalid request", request=request)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(QueryError, on_query_error)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1").strip()
            return text if _SANE_ID.fullmatch(text) else None
    return None


class RequestIdMiddleware:
    """Request ids on every answer, and an ERROR log line for every 5xx (see module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _incoming_id(scope) or uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
                if message["status"] >= 500:
                    self._log(scope, message["status"], rid, state.get("error"))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if started:  # the answer is on its way: only the log is left to give
                self._log(scope, 500, rid, exc)
                return
            note_error(scope, exc)
            body = error_body(500, f"internal error ({type(exc).__name__})", rid)
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    @staticmethod
    def _log(scope: Scope, status: int, rid: str, exc: BaseException | None) -> None:
        reason = f": {type(exc).__name__}: {exc}" if exc is not None else ""
        log.error(
            "%s %s -> %d [request_id=%s]%s",
            scope.get("method", "?"),
            scope.get("path", "?"),
            status,
            rid,
            reason,
            exc_info=exc,
        )
