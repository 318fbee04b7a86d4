"""``kill -9`` of the real server in the middle of sustained ingest, then restart: every span
that was acknowledged is in the lake exactly once."""

from __future__ import annotations

import http.client
import random
import time
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from tests.e2e.harness import NumberedPoster, Server, query, wait_for

SPANS_PER_REQUEST = 200


def _request(first: int, count: int) -> bytes:
    """``count`` spans with span ids first..first+count-1 (one trace per request)."""
    now = time.time_ns()
    trace_id = random.getrandbits(128).to_bytes(16, "big")
    spans = [
        Span(
            trace_id=trace_id,
            span_id=(first + i).to_bytes(8, "big"),
            name="chat",
            start_time_unix_nano=now + i,
            end_time_unix_nano=now + i + 1_000_000,
            attributes=[
                KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat")),
                KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="gpt-4o-mini")),
                KeyValue(key="gen_ai.usage.input_tokens", value=AnyValue(int_value=100 + i)),
                KeyValue(key="gen_ai.usage.output_tokens", value=AnyValue(int_value=10)),
            ],
        )
        for i in range(count)
    ]
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]
    )
    return request.SerializeToString()


def _sender(port: int, start_id: int) -> NumberedPoster:
    return NumberedPoster(
        port,
        start_id,
        path="/v1/traces",
        content_type="application/x-protobuf",
        per_request=SPANS_PER_REQUEST,
        body=lambda first: _request(first, SPANS_PER_REQUEST),
    )


def test_kill_9_during_ingest_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    acked: list[int] = []
    next_id = 1
    rng = random.Random(42)
    for cycle in range(3):
        server = Server(lake=lake, log=tmp_path / f"server-{cycle}.log").start()
        senders = [_sender(server.http_port, next_id + k * 10_000_000) for k in range(3)]
        for s in senders:
            s.start()
        time.sleep(rng.uniform(0.8, 2.5))  # sustained ingest, then the plug is pulled
        server.kill()
        for s in senders:
            s.join(timeout=15)
            acked.extend(s.acked)
        next_id += 100_000_000
        assert sum(len(s.acked) for s in senders) > 0, server.log_text()

    server = Server(lake=lake, log=tmp_path / "server-final.log").start()
    try:
        expected = {first + i for first in acked for i in range(SPANS_PER_REQUEST)}
        # replay finishes in the background; wait until every acknowledged span is visible
        seen = wait_for(
            server.target,
            "SELECT count(DISTINCT span_id) FILTER (WHERE span_id IN "
            "(SELECT unnest(?::VARCHAR[]))) FROM spans",
            len(expected),
            timeout=60,
            params=[[f"{x:016x}" for x in expected]],
        )
        assert seen == len(expected), server.log_text()
        duplicates = query(
            server.target,
            "SELECT count(*) FROM (SELECT span_id FROM spans GROUP BY 1 HAVING count(*) > 1)",
        )[0][0]
        assert duplicates == 0
    finally:
        server.stop()


def test_sigterm_drains_every_acknowledged_span_before_exiting(tmp_path: Path) -> None:
    server = Server(lake=tmp_path / "lake", log=tmp_path / "server.log").start()
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=10)
    acked = 0
    for i in range(10):
        conn.request(
            "POST",
            "/v1/traces",
            body=_request(1 + i * SPANS_PER_REQUEST, SPANS_PER_REQUEST),
            headers={"Content-Type": "application/x-protobuf"},
        )
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
        acked += SPANS_PER_REQUEST
    conn.close()
    assert server.stop() == 0, server.log_text()
    # no restart: what the server published on its way out is all there is
    stored = query(server.target, "SELECT count(DISTINCT span_id) FROM spans")[0][0]
    assert stored == acked, server.log_text()
