"""The unmodified OTel SDK exporters, HTTP and gRPC, configured the two ways users configure them,
deliver spans through a real ``tasklake serve`` into the lake with every field intact."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.span import TraceState
from opentelemetry.trace.status import Status, StatusCode

from schemas.attributes import decode_attributes, encode_attributes
from tests.e2e.harness import Server, query, wait_for
from tests.lakes import both_lakes, tables
from tests.s3 import S3

CASES = [
    ("http", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    ("http", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
    ("grpc", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    ("grpc", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
]


@pytest.fixture(scope="module", params=both_lakes())
def shared_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server over a local lake, one over an S3-compatible lake (moto)."""
    base = tmp_path_factory.mktemp("sdk")
    store: S3 | None = request.getfixturevalue("s3") if request.param == "s3" else None
    srv = Server(
        lake=base / "lake",
        log=base / "server.log",
        env=store.env if store else {},
        uri=store.lake("sdk") if store else None,
        local=store is None,
    ).start()
    try:
        yield srv
    finally:
        srv.stop()


def _exporter(protocol: str, variable: str, server: Server, mp: pytest.MonkeyPatch) -> SpanExporter:
    for key in list(os.environ):
        if key.startswith("OTEL_"):
            mp.delenv(key)
    if protocol == "http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        traces_only = variable == "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        mp.setenv(variable, server.url + "/v1/traces" if traces_only else server.url)
        mp.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
        return HttpExporter()
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
        OTLPSpanExporter as GrpcExporter,
    )

    mp.setenv(variable, f"http://{server.grpc_target}")
    mp.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
    return GrpcExporter()


def _emit(exporter: SpanExporter, label: str) -> tuple[list[ReadableSpan], Resource]:
    """A small agent run exercising every span field the SDK can set."""
    resource = Resource.create(
        {
            "service.name": f"support-bot-{label}",
            "service.namespace": "team-support",
            "service.version": "1.2.3",
            "deployment.environment.name": "test",
            "host.cpu.count": 2,
        }
    )
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer(
        "tests.e2e",
        "9.9.9",
        schema_url="https://opentelemetry.io/schemas/1.26.0",
        attributes={"scope.flavour": "e2e"},
    )
    remote = SpanContext(
        trace_id=random.getrandbits(127) | 1,
        span_id=0x1122334455667788,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "opaque-value")]),
    )
    other = SpanContext(
        trace_id=0xABCDEF0123456789ABCDEF0123456789,
        span_id=0x0FEDCBA987654321,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    ctx = trace.set_span_in_context(NonRecordingSpan(remote))
    with tracer.start_as_current_span(
        "invoke_agent triage",
        context=ctx,
        kind=SpanKind.SERVER,
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "triage",
            "correlation.id": f"attempt-{label}",
            "task.id": f"ticket-{label}",
            "workflow.id": "support-triage",
            "team.id": "support",
            "workflow.version": "v2",
            "custom.ratio": 0.25,
            "custom.flag": True,
            "custom.list": ["a", "b"],
            "custom.ints": [1, 2, 3],
        },
    ) as root:
        root.add_event("triage.started", {"queue": "billing", "priority": 2})
        with tracer.start_as_current_span(
            "chat gpt-4o",
            kind=SpanKind.CLIENT,
            links=[Link(other, {"link.reason": "retry-of"})],
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.usage.input_tokens": 1200,
                "gen_ai.usage.output_tokens": 300,
                "gen_ai.request.temperature": 0.2,
                "gen_ai.response.finish_reasons": ["stop"],
                "workflow.role": "drafter",
            },
        ):
            pass
        with tracer.start_as_current_span("execute_tool search_kb", kind=SpanKind.INTERNAL) as tool:
            tool.set_attribute("gen_ai.operation.name", "execute_tool")
            tool.set_attribute("gen_ai.tool.name", "search_kb")
            tool.record_exception(ValueError("index offline"))
            tool.set_status(Status(StatusCode.ERROR, "tool failed"))
    provider.shutdown()
    spans = list(memory.get_finished_spans())
    assert len(spans) == 3
    return spans, resource


def _lake_rows(lake: Path | str, trace_hex: str) -> dict[str, dict[str, Any]]:
    """The rows of the newest spans table version, as stored (times are int64 nanoseconds)."""
    t = tables(lake)
    fs, _ = t.location.filesystem()
    files = [t.location.fs_path(uri) for uri in t.version_of("spans").uris()]
    table = pa.concat_tables(
        [pq.read_table(f, filesystem=fs) for f in files], promote_options="default"
    )
    table = table.filter(pc.equal(table["trace_id"], trace_hex))
    return {r["span_id"]: r for r in table.to_pylist()}


def _kv_text(kvs: Any) -> tuple[list[tuple[str, str]], str | None]:
    entries, codes, _ = encode_attributes(kvs)
    return entries, codes


def _all_attributes(lake: Path | str, span_id: str) -> dict[str, str]:
    ((value,),) = query(lake, "SELECT all_attributes FROM spans WHERE span_id = ?", [span_id])
    return dict(value)


@pytest.mark.parametrize(("protocol", "variable"), CASES)
def test_sdk_exporter_delivers_every_field(
    shared_server: Server, monkeypatch: pytest.MonkeyPatch, protocol: str, variable: str
) -> None:
    label = f"{protocol}-{variable.lower()}"
    spans, _ = _emit(_exporter(protocol, variable, shared_server, monkeypatch), label)
    trace_hex = f"{spans[0].context.trace_id:032x}"
    lake = shared_server.target
    seen = wait_for(lake, "SELECT count(*) FROM spans WHERE trace_id = ?", 3, params=[trace_hex])
    assert seen == 3, shared_server.log_text()

    # What the exporter put on the wire, built by the SDK's own encoder.
    sent = encode_spans(spans)
    (resource_spans,) = sent.resource_spans
    (scope_spans,) = resource_spans.scope_spans
    rows = _lake_rows(lake, trace_hex)
    assert len(rows) == 3
    for pb in scope_spans.spans:
        row = rows[pb.span_id.hex()]
        assert row["trace_id"] == pb.trace_id.hex()
        assert row["parent_span_id"] == (pb.parent_span_id.hex() or None)
        assert row["name"] == pb.name
        assert row["kind"] == pb.kind
        assert (row["trace_state"] or "") == pb.trace_state
        assert (row["flags"] or 0) == pb.flags
        assert row["start_time_unix_nano"] == pb.start_time_unix_nano
        assert row["duration_ns"] == pb.end_time_unix_nano - pb.start_time_unix_nano
        assert row["status_code"] == pb.status.code
        assert (row["status_message"] or "") == pb.status.message
        assert (row["dropped_attributes_count"] or 0) == pb.dropped_attributes_count
        # attributes: the view's all_attributes is exactly what was sent, as text
        sent_entries, _ = _kv_text(pb.attributes)
        assert _all_attributes(lake, row["span_id"]) == dict(sent_entries)
        # events and links, with their attributes and types
        assert len(row["events"]) == len(pb.events)
        for got, want in zip(row["events"], pb.events, strict=True):
            assert got["name"] == want.name
            assert got["time_unix_nano"] == want.time_unix_nano
            assert _decoded(got) == list(want.attributes)
        assert len(row["links"]) == len(pb.links)
        for got, link in zip(row["links"], pb.links, strict=True):
            assert got["trace_id"] == link.trace_id.hex()
            assert got["span_id"] == link.span_id.hex()
            assert (got["flags"] or 0) == link.flags
            assert _decoded(got) == list(link.attributes)
        # resource and scope
        assert _decoded(row, "resource_") == list(resource_spans.resource.attributes)
        assert row["service_name"] == f"support-bot-{label}"
        assert row["scope_name"] == scope_spans.scope.name
        assert row["scope_version"] == scope_spans.scope.version
        assert (row["scope_schema_url"] or "") == scope_spans.schema_url
        assert _decoded(row, "scope_") == list(scope_spans.scope.attributes)
        assert (row["resource_schema_url"] or "") == resource_spans.schema_url

    # normalization reached the typed columns
    (chat,) = [r for r in rows.values() if r["name"] == "chat gpt-4o"]
    assert (chat["operation"], chat["provider"], chat["response_model"]) == (
        "chat",
        "openai",
        "gpt-4o-2024-08-06",
    )
    assert (chat["input_tokens"], chat["output_tokens"], chat["is_model_call"]) == (1200, 300, True)
    assert chat["cost_source"] == "genai-prices" and chat["cost_usd"] > 0
    (root,) = [r for r in rows.values() if r["name"] == "invoke_agent triage"]
    assert (root["correlation_id"], root["task_id"], root["workflow"], root["team"]) == (
        f"attempt-{label}",
        f"ticket-{label}",
        "support-triage",
        "support",
    )
    assert root["is_model_call"] is False and root["cost_usd"] is None
    (tool,) = [r for r in rows.values() if r["name"] == "execute_tool search_kb"]
    assert tool["error_type"] == "ValueError" and tool["tool_name"] == "search_kb"


def _decoded(row: dict[str, Any], prefix: str = "") -> list[KeyValue]:
    """A lake map column back to OTLP KeyValues (the lossless direction)."""
    entries = row[f"{prefix}attributes"] or []
    return decode_attributes(entries, row[f"{prefix}attribute_types"])
