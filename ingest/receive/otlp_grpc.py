"""OTLP/gRPC receiver: ``TraceService/Export`` and ``LogsService/Export`` on grpc.aio.

It runs in the same event loop as uvicorn and calls the same ``Exporter`` as the HTTP routes.
Requests are registered with no deserializer, so the servicer receives the raw protobuf bytes:
it decodes them itself (undecodable -> INVALID_ARGUMENT with a message, rather than grpcio's
opaque INTERNAL) and passes them on as ``raw=`` so the durable write never re-serializes.
gzip is handled by grpcio; ``grpc.max_receive_message_length`` (checked after decompression)
makes oversized requests RESOURCE_EXHAUSTED. Errors map through ``status.grpc_error``.

Admission (``ingest.receive.admission``) weighs the message as it arrives here, decompressed by
grpcio and whole: gRPC gives no earlier hook, so up to one message per concurrent stream is held
before it can be refused (UNAVAILABLE + RetryInfo), but never decoded.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from ingest.errors import BadRequest
from ingest.receive.admission import PROTOBUF_WEIGHT, Admission
from ingest.receive.auth import check_bearer
from ingest.receive.export import Exporter
from ingest.receive.status import as_ingest_error, grpc_error
from schemas.settings import Settings

log = logging.getLogger(__name__)

TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
LOGS_SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"

_PORT_ATTRIBUTE = "_tasklake_bound_port"

T = TypeVar("T")
M = TypeVar("M", ExportTraceServiceRequest, ExportLogsServiceRequest)


async def start_grpc_server(
    exporter: Exporter, settings: Settings, admission: Admission | None = None
) -> grpc.aio.Server:
    """Start the OTLP/gRPC receiver on ``settings.host:settings.grpc_port`` (0: a free port,
    see ``bound_port``), within ``admission`` (the process's budget; one of its own when not
    given). The caller stops it with ``await server.stop(grace)``."""
    admission = admission or Admission(settings.max_inflight_bytes)
    limit = settings.max_decompressed_bytes
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", 4 << 20),
        ]
    )
    _register(
        server,
        TRACE_SERVICE,
        TraceReceiver(exporter, settings, admission).Export,
        ExportTraceServiceResponse.SerializeToString,
    )
    _register(
        server,
        LOGS_SERVICE,
        LogsReceiver(exporter, settings, admission).Export,
        ExportLogsServiceResponse.SerializeToString,
    )
    address = _address(settings.host, settings.grpc_port)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise OSError(f"cannot listen for OTLP/gRPC on {address}: {exc}") from exc
    if port == 0:  # older grpcio reports a failed bind this way
        raise OSError(f"cannot listen for OTLP/gRPC on {address}")
    setattr(server, _PORT_ATTRIBUTE, port)
    await server.start()
    return server


def bound_port(server: grpc.aio.Server) -> int:
    """The port a server from ``start_grpc_server`` listens on (useful with port 0)."""
    port: int = getattr(server, _PORT_ATTRIBUTE)
    return port


class TraceReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, exporter: Exporter, settings: Settings, admission: Admission) -> None:
        self.exporter = exporter
        self.settings = settings
        self.admission = admission

    async def Export(  # noqa: N802  (the gRPC method name)
        self, raw: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ExportTraceServiceResponse:
        async def export() -> ExportTraceServiceResponse:
            request = _decode(ExportTraceServiceRequest, raw)
            if not request.resource_spans:
                return ExportTraceServiceResponse()
            result = await self.exporter.export_traces(request, raw=raw)
            partial = None
            if result.rejected or result.error_message:
                partial = ExportTracePartialSuccess(
                    rejected_spans=result.rejected, error_message=result.error_message
                )
            return ExportTraceServiceResponse(partial_success=partial)

        return await _serve(context, self.settings, self.admission, len(raw), export)


class LogsReceiver(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, exporter: Exporter, settings: Settings, admission: Admission) -> None:
        self.exporter = exporter
        self.settings = settings
        self.admission = admission

    async def Export(  # noqa: N802
        self, raw: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ExportLogsServiceResponse:
        async def export() -> ExportLogsServiceResponse:
            request = _decode(ExportLogsServiceRequest, raw)
            if not request.resource_logs:
                return ExportLogsServiceResponse()
            result = await self.exporter.export_logs(request, raw=raw)
            partial = None
            if result.rejected or result.error_message:
                partial = ExportLogsPartialSuccess(
                    rejected_log_records=result.rejected, error_message=result.error_message
                )
            return ExportLogsServiceResponse(partial_success=partial)

        return await _serve(context, self.settings, self.admission, len(raw), export)


async def _serve(
    context: grpc.aio.ServicerContext[Any, Any],
    settings: Settings,
    admission: Admission,
    size: int,
    export: Callable[[], Awaitable[T]],
) -> T:
    """Auth, admission of a ``size``-byte message, then ``export``; any failure becomes the
    mapped status with its trailers."""
    try:
        check_bearer(_metadata(context, "authorization"), settings.auth_tokens)
        with admission.ticket() as ticket:
            await ticket.take(int(size * (1 + PROTOBUF_WEIGHT)))
            return await export()
    except Exception as exc:
        err = as_ingest_error(exc)
        if err is not exc:
            log.exception("OTLP/gRPC export failed unexpectedly")
        out = grpc_error(err)
        await context.abort(out.code, out.details, trailing_metadata=out.trailing_metadata)
        raise AssertionError("unreachable: abort raises") from None


def _decode(message_type: type[M], raw: bytes) -> M:
    try:
        return message_type.FromString(raw)
    except DecodeError as exc:
        raise BadRequest(f"protobuf request cannot be decoded: {exc}") from None


def _metadata(context: grpc.aio.ServicerContext[Any, Any], key: str) -> str | None:
    for name, value in context.invocation_metadata() or ():
        if name == key:
            return value if isinstance(value, str) else value.decode("latin-1")
    return None


def _register(
    server: grpc.aio.Server,
    service: str,
    method: Callable[..., Awaitable[Any]],
    serialize: Callable[[Any], bytes],
) -> None:
    handlers = {
        "Export": grpc.unary_unary_rpc_method_handler(
            method, request_deserializer=None, response_serializer=serialize
        )
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    # clients call with _registered_method=True; registering lets grpcio skip the generic lookup
    server.add_registered_method_handlers(service, handlers)


def _address(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"
