"""Receiver-only throughput: bytes on a socket -> decoded request -> a no-op exporter.

The server (uvicorn + OTLP/HTTP routes + OTLP/gRPC, one event loop, as ``tasklake serve``)
runs in a child process; 4 client threads in this process send 512-span requests over
keep-alive connections. What it shows is the cost of the wire side alone (read, decompress,
upb decode, respond), i.e. the share of the ingest budget the receivers take.

    .venv/bin/python -m bench.receivers [seconds per case]
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import multiprocessing
import os
import resource
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

import grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from ingest.receive.export import ExportResult
from ingest.receive.otlp_json import to_otlp_json
from schemas.settings import Settings

SPANS = 512
CLIENTS = 4
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class NullExporter:
    async def export_traces(
        self, request: ExportTraceServiceRequest, raw: bytes | None = None
    ) -> ExportResult:
        return ExportResult()

    async def export_logs(
        self, request: ExportLogsServiceRequest, raw: bytes | None = None
    ) -> ExportResult:
        return ExportResult()


def agent_request(spans: int) -> ExportTraceServiceRequest:
    """GenAI chat spans with 15 attributes each (GenAI semantic conventions)."""

    def kv(key: str, value: str | int | float) -> KeyValue:
        if isinstance(value, str):
            return KeyValue(key=key, value=AnyValue(string_value=value))
        if isinstance(value, int):
            return KeyValue(key=key, value=AnyValue(int_value=value))
        return KeyValue(key=key, value=AnyValue(double_value=value))

    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend([kv("service.name", "support-agent"), kv("team.id", "t1")])
    ss = rs.scope_spans.add()
    ss.scope.name = "opentelemetry.instrumentation.openai"
    t0 = 1_767_225_600_000_000_000
    for i in range(spans):
        span = ss.spans.add()
        span.trace_id = (i // 12 + 1).to_bytes(16, "big")
        span.span_id = (i + 1).to_bytes(8, "big")
        span.parent_span_id = (i // 12 * 12 + 1).to_bytes(8, "big")
        span.name = "chat gpt-4o"
        span.kind = Span.SPAN_KIND_CLIENT
        span.start_time_unix_nano = t0 + i * 1_000_000
        span.end_time_unix_nano = t0 + i * 1_000_000 + 900_000_000
        span.attributes.extend(
            [
                kv("gen_ai.operation.name", "chat"),
                kv("gen_ai.provider.name", "openai"),
                kv("gen_ai.request.model", "gpt-4o"),
                kv("gen_ai.response.model", "gpt-4o-2024-08-06"),
                kv("gen_ai.response.id", f"chatcmpl-{i:012d}"),
                kv("gen_ai.usage.input_tokens", 1200 + i),
                kv("gen_ai.usage.output_tokens", 310),
                kv("gen_ai.usage.cache_read.input_tokens", 512),
                kv("gen_ai.request.temperature", 0.2),
                kv("gen_ai.request.max_tokens", 1024),
                kv("gen_ai.response.finish_reasons", "stop"),
                kv("correlation.id", f"att-{i // 12}"),
                kv("task.id", f"T-{i // 36}"),
                kv("workflow.role", "drafter"),
                kv("server.address", "api.openai.com"),
            ]
        )
    return request


def _serve(conn: Connection) -> None:
    import uvicorn
    from starlette.applications import Starlette

    from ingest.receive.otlp_grpc import bound_port, start_grpc_server
    from ingest.receive.otlp_http import otlp_routes

    settings = Settings(host="127.0.0.1", grpc_port=0)
    exporter = NullExporter()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # clients may connect before uvicorn accepts
    config = uvicorn.Config(
        Starlette(routes=otlp_routes(exporter, settings)),
        http="httptools",
        loop="none",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )
    server = uvicorn.Server(config)

    async def main() -> None:
        grpc_server = await start_grpc_server(exporter, settings)
        conn.send((sock.getsockname()[1], bound_port(grpc_server)))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        await asyncio.to_thread(conn.recv)  # any message: report CPU and stop
        usage = resource.getrusage(resource.RUSAGE_SELF)
        conn.send(usage.ru_utime + usage.ru_stime)
        server.should_exit = True
        await task
        await grpc_server.stop(None)

    asyncio.run(main())


def _run(send_one: Callable[[], None], seconds: float) -> tuple[int, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        mine: list[float] = []
        while time.monotonic() < stop:
            t = time.perf_counter()
            send_one()
            mine.append(time.perf_counter() - t)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(latencies), latencies


def _measure(kind: str, payload: bytes, headers: dict[str, str], seconds: float) -> str:
    """One case against a fresh server process: throughput, latency, server CPU per span."""
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("spawn").Process(target=_serve, args=(child,))
    proc.start()
    http_port, grpc_port = parent.recv()
    local = threading.local()
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    stub = channel.unary_unary(EXPORT, response_deserializer=ExportTraceServiceResponse.FromString)

    def send_http() -> None:
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection("127.0.0.1", http_port)
        local.conn.request("POST", "/v1/traces", payload, headers)
        response = local.conn.getresponse()
        response.read()
        assert response.status == 200, response.status

    def send_grpc() -> None:
        stub(payload, timeout=30)

    send = send_http if kind == "http" else send_grpc
    try:
        send()  # warm up
        t0 = time.monotonic()
        n, latencies = _run(send, seconds)
        elapsed = time.monotonic() - t0
    finally:
        parent.send("stop")
        server_cpu = parent.recv()
        proc.join()
        channel.close()
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    return (
        f"{n * SPANS / elapsed:9,.0f} spans/s  {n / elapsed:6.0f} req/s  "
        f"p50 {p50:5.1f} ms  p99 {p99:5.1f} ms  "
        f"server CPU {server_cpu / (n * SPANS) * 1e6:5.2f} us/span"
    )


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    request = agent_request(SPANS)
    body = request.SerializeToString()
    cases: dict[str, tuple[str, bytes, dict[str, str]]] = {
        "http protobuf": ("http", body, {"Content-Type": "application/x-protobuf"}),
        "http protobuf gzip": (
            "http",
            gzip.compress(body, 6),
            {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
        ),
        "http json": ("http", to_otlp_json(request), {"Content-Type": "application/json"}),
        "grpc protobuf": ("grpc", body, {}),
    }
    print(
        f"receivers only, no-op exporter: {SPANS}-span requests ({len(body)} bytes protobuf), "
        f"{CLIENTS} client threads, {seconds:.0f} s per case, {os.cpu_count()} CPUs"
    )
    for name, (kind, payload, headers) in cases.items():
        print(f"  {name:20s} {_measure(kind, payload, headers, seconds)}")


if __name__ == "__main__":
    main()
