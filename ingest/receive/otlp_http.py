"""OTLP/HTTP receiver: ``POST /v1/traces`` and ``POST /v1/logs`` as plain starlette routes.

Raw ASGI -> ``Request`` -> ``Response`` with no validation framework on the hot path: the body
is read once (``http_body``), decoded by upb (protobuf) or ``otlp_json`` (JSON), and handed with
its raw protobuf bytes to the one ``Exporter``. Every refusal goes through
``status.http_error``, so an error body is always a ``google.rpc.Status`` in the request's
encoding (JSON when the request was not protobuf).

Order of checks: method (405), auth (401/403), Content-Type (415), Content-Encoding (400),
size (413), admission (503: ``ingest.receive.admission``, held until the answer is ready), decoding
(400), then the exporter (partial success, or 503 when overloaded).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from ingest.errors import BadRequest, IngestError, MethodNotAllowed, NotFound, UnsupportedMediaType
from ingest.receive.admission import Admission, decode_weight
from ingest.receive.auth import check_bearer
from ingest.receive.export import Exporter, ExportResult
from ingest.receive.http_body import read_body
from ingest.receive.otlp_json import to_otlp_json
from ingest.receive.otlp_json_stream import decode_logs_json, decode_traces_json
from ingest.receive.status import JSON, PROTOBUF, as_ingest_error, http_error
from schemas.settings import Settings

log = logging.getLogger(__name__)

TRACES_PATH = "/v1/traces"
#: OTLP/JSON bodies above this are decoded in a worker thread, off the event loop.
JSON_THREAD_THRESHOLD = 256 * 1024
LOGS_PATH = "/v1/logs"

Req = TypeVar("Req", ExportTraceServiceRequest, ExportLogsServiceRequest)


def otlp_routes(
    exporter: Exporter, settings: Settings, admission: Admission | None = None
) -> list[BaseRoute]:
    """The OTLP/HTTP routes; mount them before any other ``/v1/`` route.

    The last route answers every other ``/v1/...`` path with 404 and a Status body, so an
    exporter pointed at a signal we do not serve (``/v1/metrics``) gets a clear refusal.
    ``admission`` is the process's budget (one of its own when not given).
    """
    admission = admission or Admission(settings.max_inflight_bytes)

    async def export_traces(request: ExportTraceServiceRequest, raw: bytes | None) -> Message:
        if not request.resource_spans:
            return ExportTraceServiceResponse()  # nothing to store: 200 without a write
        result = await exporter.export_traces(request, raw=raw)
        return ExportTraceServiceResponse(partial_success=_trace_partial(result))

    async def export_logs(request: ExportLogsServiceRequest, raw: bytes | None) -> Message:
        if not request.resource_logs:
            return ExportLogsServiceResponse()
        result = await exporter.export_logs(request, raw=raw)
        return ExportLogsServiceResponse(partial_success=_logs_partial(result))

    # ASGI class endpoints: starlette then routes every method here, and we answer 405 ourselves
    traces = _OTLPEndpoint(
        settings, admission, ExportTraceServiceRequest, decode_traces_json, export_traces
    )
    logs = _OTLPEndpoint(
        settings, admission, ExportLogsServiceRequest, decode_logs_json, export_logs
    )
    return [
        Route(TRACES_PATH, traces, name="otlp_traces"),
        Route(LOGS_PATH, logs, name="otlp_logs"),
        Route("/v1/{rest:path}", _UnknownPath(), name="otlp_unknown"),
    ]


class _OTLPEndpoint(Generic[Req]):
    def __init__(
        self,
        settings: Settings,
        admission: Admission,
        request_type: type[Req],
        parse_json: Callable[[bytes], Req],
        export: Callable[[Req, bytes | None], Awaitable[Message]],
    ) -> None:
        self.settings = settings
        self.admission = admission
        self.request_type: type[Req] = request_type
        self.parse_json: Callable[[bytes], Req] = parse_json
        self.export: Callable[[Req, bytes | None], Awaitable[Message]] = export

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        as_json = not _is_protobuf(request)
        try:
            if request.method != "POST":
                raise MethodNotAllowed(f"{request.method} is not allowed; OTLP/HTTP uses POST")
            check_bearer(request.headers.get("authorization"), self.settings.auth_tokens)
            as_json = _media_type_is_json(request.headers.get("content-type"))
            with self.admission.ticket() as ticket:
                body = await read_body(request, self.settings, ticket, decode_weight(as_json))
                answer = await self._export(body, as_json)
        except Exception as exc:
            err = as_ingest_error(exc)
            if err is not exc:
                log.exception("OTLP/HTTP %s failed unexpectedly", request.url.path)
            return _error_response(err, as_json=as_json)
        if as_json:
            return Response(to_otlp_json(answer), 200, media_type=JSON)
        return Response(answer.SerializeToString(), 200, media_type=PROTOBUF)

    async def _export(self, body: bytes, as_json: bool) -> Message:
        if as_json:
            # seconds of Python for a large body: in a thread, so the loop keeps answering
            if len(body) > JSON_THREAD_THRESHOLD:
                return await self.export(await asyncio.to_thread(self.parse_json, body), None)
            return await self.export(self.parse_json(body), None)
        try:
            message = self.request_type.FromString(body)
        except DecodeError as exc:
            raise BadRequest(f"protobuf body cannot be decoded: {exc}") from None
        return await self.export(message, body)


class _UnknownPath:
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        err = NotFound(f"no OTLP endpoint at {request.url.path}; use {TRACES_PATH} or {LOGS_PATH}")
        await _error_response(err, as_json=not _is_protobuf(request))(scope, receive, send)


def _media_type_is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == PROTOBUF:
        return False
    if media == JSON:
        return True
    raise UnsupportedMediaType(
        f"unsupported Content-Type {content_type!r}; use {PROTOBUF} or {JSON}"
    )


def _is_protobuf(request: Request) -> bool:
    """Whether an error should be protobuf: only when the client said it speaks protobuf."""
    content_type = request.headers.get("content-type") or ""
    return content_type.split(";", 1)[0].strip().lower() == PROTOBUF


def _error_response(err: IngestError, *, as_json: bool) -> Response:
    out = http_error(err, as_json=as_json)
    return Response(out.body, out.status, headers=out.headers, media_type=out.content_type)


def _trace_partial(result: ExportResult) -> ExportTracePartialSuccess | None:
    if not result.rejected and not result.error_message:
        return None
    return ExportTracePartialSuccess(
        rejected_spans=result.rejected, error_message=result.error_message
    )


def _logs_partial(result: ExportResult) -> ExportLogsPartialSuccess | None:
    if not result.rejected and not result.error_message:
        return None
    return ExportLogsPartialSuccess(
        rejected_log_records=result.rejected, error_message=result.error_message
    )
