"""Every ingest door admits its requests within one memory budget, over real sockets.

One request is kept in flight (the sink holds it) so the budget is taken; then each kind of
request (OTLP/HTTP traces and logs in protobuf and JSON, chunked and gzip bodies, signals, cost
entries, OTLP/gRPC) is refused with 503 + Retry-After / UNAVAILABLE + RetryInfo and reaches
nothing, and once the first is answered the same request goes through.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import grpc
import pytest
import requests
from google.rpc.error_details_pb2 import RetryInfo

from ingest.receive.admission import PROTOBUF_WEIGHT, Admission
from ingest.receive.otlp_json import to_otlp_json
from ingest.receive.status import GRPC_RETRY_INFO_KEY
from schemas.settings import KiB
from tests.ingest.otlp_builders import logs_request, trace_request
from tests.ingest.receiver_harness import TEST_SETTINGS, ReceiverServer, SinkExporter

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
BUDGET = 64 * KiB


@pytest.fixture(scope="module")
def budgeted() -> Iterator[ReceiverServer]:
    server = ReceiverServer(TEST_SETTINGS, admission=Admission(BUDGET, wait=0.1)).start()
    yield server
    server.stop()


@pytest.fixture
def held(budgeted: ReceiverServer) -> Iterator[SinkExporter]:
    """The sink, with a first request in flight that takes the whole budget until released."""
    sink = budgeted.sink
    sink.reset()
    sink.hold = threading.Event()
    body = trace_request(200).SerializeToString()
    assert len(body) * (1 + PROTOBUF_WEIGHT) > BUDGET
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(_post, budgeted, "/v1/traces", body, "application/x-protobuf")
        _wait_until(lambda: budgeted.admission.inflight > 0)
        yield sink
        sink.hold.set()
        assert first.result(30).status_code == 200
    sink.reset()
    assert budgeted.admission.inflight == 0


def _post(
    server: ReceiverServer, path: str, body: bytes | Iterator[bytes], content_type: str, **h: str
) -> requests.Response:
    headers = {"Content-Type": content_type, **h}
    return requests.post(server.url + path, data=body, headers=headers, timeout=30)


def _wait_until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        threading.Event().wait(0.01)
    raise AssertionError("condition not reached")


def _chunks(body: bytes) -> Iterator[bytes]:
    yield body[: len(body) // 2]
    yield body[len(body) // 2 :]


def _traces_pb() -> bytes:
    return trace_request(5).SerializeToString()


CASES: dict[str, tuple[str, Callable[[], bytes | Iterator[bytes]], str, dict[str, str]]] = {
    "traces protobuf": ("/v1/traces", _traces_pb, "application/x-protobuf", {}),
    "traces json": ("/v1/traces", lambda: to_otlp_json(trace_request(5)), "application/json", {}),
    "traces chunked": ("/v1/traces", lambda: _chunks(_traces_pb()), "application/x-protobuf", {}),
    "traces gzip": (
        "/v1/traces",
        lambda: gzip.compress(_traces_pb()),
        "application/x-protobuf",
        {"Content-Encoding": "gzip"},
    ),
    "logs protobuf": (
        "/v1/logs",
        lambda: logs_request().SerializeToString(),
        "application/x-protobuf",
        {},
    ),
    "signals": (
        "/api/v1/signals",
        lambda: json.dumps({"task_id": "T-1", "outcome": "completed"}).encode(),
        "application/json",
        {},
    ),
    "cost entries": (
        "/api/v1/costs",
        lambda: json.dumps(
            {
                "component": "labor",
                "amount_usd": 10,
                "period_start": "2026-11-01",
                "period_end": "2026-12-01",
            }
        ).encode(),
        "application/json",
        {},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_over_the_budget_is_503_with_retry_after_then_served(
    budgeted: ReceiverServer, held: SinkExporter, case: str
) -> None:
    path, body, content_type, headers = CASES[case]
    refused = _post(budgeted, path, body(), content_type, **headers)
    assert refused.status_code == 503, refused.content
    assert refused.headers["retry-after"] == "1"
    assert "max_inflight_bytes" in refused.text
    assert not held.traces and not held.logs and not held.rows
    held.hold.set()  # type: ignore[union-attr]
    _wait_until(lambda: budgeted.admission.inflight == 0)
    served = _post(budgeted, path, body(), content_type, **headers)
    assert served.status_code == 200, served.content


def test_grpc_over_the_budget_is_unavailable_with_retry_info(
    budgeted: ReceiverServer, held: SinkExporter
) -> None:
    with grpc.insecure_channel(budgeted.grpc_target) as channel:
        export = channel.unary_unary(EXPORT)
        with pytest.raises(grpc.RpcError) as refused:
            export(_traces_pb(), timeout=30)
        call = refused.value
        assert isinstance(call, grpc.Call)
        assert call.code() == grpc.StatusCode.UNAVAILABLE
        trailers = dict(call.trailing_metadata() or ())
        info = RetryInfo.FromString(trailers[GRPC_RETRY_INFO_KEY])
        assert info.retry_delay.seconds == 1
        assert not held.traces
        held.hold.set()  # type: ignore[union-attr]
        _wait_until(lambda: budgeted.admission.inflight == 0)
        served: Future[bytes] = export.future(_traces_pb(), timeout=30)
        assert served.result() is not None
    assert len(held.traces) == 2  # the first request and this one
