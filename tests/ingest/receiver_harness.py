"""Test harness for the OTLP receivers: a recording ``Exporter`` and a real server.

``ReceiverServer`` runs the OTLP/HTTP routes (and the signal / cost-entry write routes) under
uvicorn and the OTLP/gRPC server in one asyncio loop on a background thread, as ``tasklake
serve`` does, on free ports.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass, field, replace

import grpc
import pyarrow as pa
import uvicorn
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from ingest.receive.admission import Admission
from ingest.receive.export import ExportResult
from ingest.receive.otlp_grpc import bound_port, start_grpc_server
from ingest.receive.otlp_http import otlp_routes
from ingest.receive.validate import validate_traces
from ingest.receive.write_api import write_routes
from schemas.settings import MiB, Settings

#: Small limits keep the size tests cheap: 1 MiB on the wire, 4 MiB decompressed.
TEST_SETTINGS = Settings(max_request_bytes=1 * MiB, max_decompressed_bytes=4 * MiB)


@dataclass
class SinkExporter:
    """Records what reached the export path. ``error`` makes it refuse the request;
    ``result`` is returned as is; ``validate`` runs the real span validation instead."""

    traces: list[tuple[ExportTraceServiceRequest, bytes | None]] = field(default_factory=list)
    logs: list[tuple[ExportLogsServiceRequest, bytes | None]] = field(default_factory=list)
    rows: list[tuple[int, pa.Table]] = field(default_factory=list)
    error: BaseException | None = None
    result: ExportResult = field(default_factory=ExportResult)
    validate: bool = False
    #: while set and not yet released, every export waits for it (a request kept in flight)
    hold: threading.Event | None = None

    def reset(self) -> None:
        self.traces.clear()
        self.logs.clear()
        self.rows.clear()
        self.error = None
        self.result = ExportResult()
        self.validate = False
        self.hold = None

    async def _wait_for_hold(self) -> None:
        if self.hold is not None:
            await asyncio.to_thread(self.hold.wait)

    async def export_traces(
        self, request: ExportTraceServiceRequest, raw: bytes | None = None
    ) -> ExportResult:
        await self._wait_for_hold()
        if self.error is not None:
            raise self.error
        result = self.result
        if self.validate:
            _, rejected, message = validate_traces(request)
            result = ExportResult(rejected, message)
        self.traces.append((request, raw))
        return result

    async def export_logs(
        self, request: ExportLogsServiceRequest, raw: bytes | None = None
    ) -> ExportResult:
        await self._wait_for_hold()
        if self.error is not None:
            raise self.error
        self.logs.append((request, raw))
        return self.result

    async def write_rows(self, kind: int, rows: pa.Table) -> None:
        await self._wait_for_hold()
        if self.error is not None:
            raise self.error
        self.rows.append((kind, rows))

    @property
    def spans(self) -> list[Span]:
        return [
            span
            for request, _ in self.traces
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]


@dataclass(frozen=True)
class SeenRequest:
    """The headers of one HTTP request that reached the server."""

    method: str
    path: str
    headers: dict[str, str]


class RequestLog:
    """ASGI middleware noting every request's headers, so tests can tell what a real exporter
    sent (its Content-Encoding, its Transfer-Encoding)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[SeenRequest] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            self.seen.append(SeenRequest(scope["method"], scope["path"], headers))
        await self.app(scope, receive, send)


class ReceiverServer:
    """Both receivers over ``sink`` on free ports, in one event loop on a thread."""

    def __init__(
        self,
        settings: Settings = TEST_SETTINGS,
        sink: SinkExporter | None = None,
        admission: Admission | None = None,
    ):
        self.settings = replace(settings, host="127.0.0.1", grpc_port=0)
        self.sink = sink if sink is not None else SinkExporter()
        self.admission = admission or Admission(self.settings.max_inflight_bytes)
        self.http_port = 0
        self.grpc_port = 0
        routes = [
            *otlp_routes(self.sink, self.settings, self.admission),
            *write_routes(self.sink, self.settings, self.admission),
        ]
        self.requests = RequestLog(Starlette(routes=routes))
        self._uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self) -> ReceiverServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.http_port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.requests,
            http="httptools",
            loop="none",
            lifespan="off",
            access_log=False,
            log_level="warning",
        )
        self._uvicorn = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._main(sock),), name="receivers", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(30) or self._failure is not None:
            self.stop()
            raise RuntimeError(f"receivers did not start: {self._failure!r}")
        return self

    async def _main(self, sock: socket.socket) -> None:
        assert self._uvicorn is not None
        grpc_server: grpc.aio.Server | None = None
        try:
            grpc_server = await start_grpc_server(self.sink, self.settings, self.admission)
            self.grpc_port = bound_port(grpc_server)
            http = asyncio.create_task(self._uvicorn.serve(sockets=[sock]))
            while not self._uvicorn.started and not http.done():
                await asyncio.sleep(0.01)
            self._ready.set()
            await http
        except BaseException as exc:
            self._failure = exc
            raise
        finally:
            self._ready.set()
            if grpc_server is not None:
                await grpc_server.stop(None)

    def stop(self) -> None:
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(30)
