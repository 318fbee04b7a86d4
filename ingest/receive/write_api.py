"""``POST /api/v1/signals`` and ``POST /api/v1/costs``: the REST doors into the write path.

Like ``/v1/traces`` they are ingest routes: the body is read within the size limits
(``http_body``: 413 before and after decompression), split into items and validated one by one
(``schemas.signals.parse_signals``, ``schemas.costs.parse_costs``), and the good items are
appended to the write-ahead log as one record (``RowSink.write_rows``); the answer is sent only
once that record is fsynced. A bad item never drops the good ones::

    200 {"accepted": 2, "rejected": [{"index": 1, "error": "outcome: expected one of ..."}],
         "warnings": []}

(``warnings`` on signal answers only.) A value outside the one money range or time bounds
(``schemas.money``, ``schemas.jsonitems.check_time``) is the item's error, never a 503: no
retry could fix it. A signal whose task or attempt is not known (yet: it may arrive before
its spans), or that names another workflow than its task's, is stored all the same; the
answer lists it under ``"warnings": [{"index": i, "warning": "..."}]``. The write side cannot
read the lake's tasks itself: the composition root hands it a ``SignalLookup`` that asks the
read side, and a lookup that fails or takes longer than ``LOOKUP_TIMEOUT`` only means no
warnings — never a failed write.

When no item is valid the answer is 400 with the same ``accepted`` / ``rejected`` keys beside
the API's error shape ``{"error": {"status": 400, "message": "..."}, "request_id": "..."}``
(the id the server's request-id middleware gave the request), which is also what every
other refusal looks like: 400 for a body that is not JSON or NDJSON at all, 401/403 without a
valid bearer token, 405 for another method, 413 when too large, 415 for another Content-Type,
503 with ``Retry-After`` when ingest is overloaded (nothing of the request was stored).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import pyarrow as pa
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from ingest.errors import BadRequest, IngestError, MethodNotAllowed, UnsupportedMediaType
from ingest.receive.admission import ITEMS_WEIGHT, Admission
from ingest.receive.auth import check_bearer
from ingest.receive.export import RowSink
from ingest.receive.http_body import read_body
from ingest.receive.status import as_ingest_error, error_headers
from ingest.wal.log import KIND_COSTS, KIND_SIGNALS
from schemas.costs import costs_table, parse_costs
from schemas.jsonitems import NDJSON_TYPES, BodyError, Parsed, now_ns
from schemas.settings import Settings
from schemas.signals import Signal, parse_signals, signals_table

log = logging.getLogger(__name__)

SIGNALS_PATH = "/api/v1/signals"
COSTS_PATH = "/api/v1/costs"
JSON_TYPE = "application/json"
#: Bodies above this are parsed in a worker thread, off the event loop.
THREAD_THRESHOLD = 256 * 1024
#: Longest the answer to a signal write waits for its warnings (then it goes without).
LOOKUP_TIMEOUT = 1.0

#: (body, content type, now in ns) -> the parsed items, and items -> the rows to store.
Parse = Callable[[bytes, str | None, int], Parsed[Any]]
Rows = Callable[[list[Any], int], pa.Table]
#: (stored items, their indexes in the body) -> warnings about them.
Warn = Callable[[list[Any], list[int]], Awaitable[list[dict[str, Any]]]]


class SignalLookup(Protocol):
    """The read side's answer to "which of these signals count for no task (yet)?"."""

    def unmatched(self, signals: Sequence[Signal]) -> Mapping[str, tuple[str, str | None]]:
        """``signal_id`` -> (reason, the task's workflow) for each signal naming a task or
        attempt not known (``"unknown task"``) or another workflow (``"workflow mismatch"``).
        Called in a worker thread; may block, fail or be abandoned after a timeout."""
        ...


def signal_warning(signal: Signal, reason: str, task_workflow: str | None) -> str:
    """What the sender is told about a stored signal that counts for no task."""
    if reason == "workflow mismatch":
        return (
            f"workflow {signal.workflow!r} is not its task's ({task_workflow!r}): stored, but"
            " it counts for no task and its rework is listed as unallocated"
        )
    named = (
        f"task {signal.task_id!r}"
        if signal.task_id is not None
        else f"attempt {signal.correlation_id!r}"
    )
    return (
        f"{named} is not known (yet): stored, and it counts once the task's spans arrive;"
        " until then its rework is listed as unallocated"
    )


async def signal_warnings(
    lookup: SignalLookup | None, signals: Sequence[Signal], indexes: Sequence[int]
) -> list[dict[str, Any]]:
    """``{"index", "warning"}`` for each signal that counts for no task; none when the lookup
    fails or is slow (a warning is advice: it must never fail or hold up the write)."""
    if lookup is None or not signals:
        return []
    try:
        found = await asyncio.wait_for(asyncio.to_thread(lookup.unmatched, signals), LOOKUP_TIMEOUT)
    except Exception as exc:
        log.warning("signal lookup failed, answering without warnings: %r", exc)
        return []
    out = []
    for index, signal in zip(indexes, signals, strict=True):
        hit = found.get(signal.signal_id)
        if hit is not None:
            out.append({"index": index, "warning": signal_warning(signal, *hit)})
    return out


def write_routes(
    sink: RowSink,
    settings: Settings,
    admission: Admission | None = None,
    lookup: SignalLookup | None = None,
) -> list[BaseRoute]:
    """The routes that write signals and cost entries through ``sink`` (the lake exporter),
    within ``admission`` (the process's budget; one of its own when not given); ``lookup``
    (the read side) tells which stored signals count for no task yet."""
    admission = admission or Admission(settings.max_inflight_bytes)
    signals = _ItemsEndpoint(
        settings,
        sink,
        admission,
        kind=KIND_SIGNALS,
        noun="signal",
        parse=lambda body, ctype, now: parse_signals(
            body, ctype, now=now, max_clock_skew=settings.max_clock_skew
        ),
        rows=lambda items, received: signals_table(items, received_at_ms=received, source="api"),
        warn=lambda items, indexes: signal_warnings(lookup, items, indexes),
    )
    costs = _ItemsEndpoint(
        settings,
        sink,
        admission,
        kind=KIND_COSTS,
        noun="cost entry",
        parse=lambda body, ctype, now: parse_costs(body, ctype),
        rows=lambda items, received: costs_table(items, received_at_ms=received, source="api"),
    )
    return [
        Route(SIGNALS_PATH, signals, name="write_signals"),
        Route(COSTS_PATH, costs, name="write_costs"),
    ]


def error_body(status: int, message: str, rid: str | None = None, **extra: Any) -> bytes:
    """The REST API's one error shape (``service.errors``), plus any ``extra`` keys."""
    body: dict[str, Any] = {"error": {"status": status, "message": message}, **extra}
    if rid is not None:
        body["request_id"] = rid
    return json.dumps(body).encode()


def _request_id(request: Request) -> str | None:
    """The id the server's request-id middleware gave this request (None without one)."""
    state = request.scope.get("state")
    return state.get("request_id") if isinstance(state, dict) else None


def _json(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status, headers=headers, media_type=JSON_TYPE)


def _check_content_type(header: str | None) -> str | None:
    """The media type of a JSON or NDJSON body (None when the client sent none); else 415."""
    media = (header or "").split(";", 1)[0].strip().lower()
    if not media:
        return None
    if media == JSON_TYPE or media in NDJSON_TYPES:
        return media
    raise UnsupportedMediaType(
        f"unsupported Content-Type {header!r}; send {JSON_TYPE} (one object or an array)"
        f" or application/x-ndjson (one object per line)"
    )


class _ItemsEndpoint:
    def __init__(
        self,
        settings: Settings,
        sink: RowSink,
        admission: Admission,
        *,
        kind: int,
        noun: str,
        parse: Parse,
        rows: Rows,
        warn: Warn | None = None,
    ) -> None:
        self.settings, self.sink, self.kind, self.noun = settings, sink, kind, noun
        self.admission = admission
        self.parse, self.rows, self.warn = parse, rows, warn

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        rid = _request_id(request)
        try:
            if request.method != "POST":
                raise MethodNotAllowed(f"{request.method} is not allowed here; use POST")
            check_bearer(request.headers.get("authorization"), self.settings.auth_tokens)
            media = _check_content_type(request.headers.get("content-type"))
            with self.admission.ticket() as ticket:
                body = await read_body(request, self.settings, ticket, ITEMS_WEIGHT)
                parsed = await self._store(body, media)
        except Exception as exc:
            err = as_ingest_error(exc)
            if err is not exc:
                if rid is None:
                    log.exception("%s %s failed unexpectedly", request.method, request.url.path)
                else:  # the request-id middleware logs it, with the id
                    request.scope["state"]["error"] = exc
            return _error(err, rid)
        accepted = len(parsed.items)
        if not accepted and parsed.rejected:
            first = parsed.rejected[0]
            message = f"no valid {self.noun} in the body; item {first['index']}: {first['error']}"
            body = error_body(400, message, rid, accepted=0, rejected=parsed.rejected)
            return _json(400, body)
        answer: dict[str, Any] = {"accepted": accepted, "rejected": parsed.rejected}
        if self.warn is not None:
            answer["warnings"] = await self.warn(parsed.items, parsed.indexes)
        return _json(200, json.dumps(answer).encode())

    async def _store(self, body: bytes, media: str | None) -> Parsed[Any]:
        """Parse the items of ``body`` and write the good ones; what was parsed."""
        now = now_ns()
        try:
            if len(body) > THREAD_THRESHOLD:
                parsed = await asyncio.to_thread(self.parse, body, media, now)
            else:
                parsed = self.parse(body, media, now)
        except BodyError as exc:
            raise BadRequest(str(exc)) from None
        if parsed.items:
            await self.sink.write_rows(self.kind, self.rows(parsed.items, now // 1_000_000))
        return parsed


def _error(err: IngestError, rid: str | None) -> Response:
    body = error_body(err.http_status, err.message, rid)
    return _json(err.http_status, body, error_headers(err))
