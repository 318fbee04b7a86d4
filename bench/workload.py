"""Realistic agent traces as OTLP requests, for every benchmark that needs spans.

One trace is one agent run: a root ``invoke_agent`` span (correlation, task, workflow, team
and version on it, plus a usage roll-up that must not be counted twice), model calls (chat,
some with cache reads and reasoning), tool calls (a few failing with an ``exception`` event),
a retrieval and an embeddings call. Attributes follow the current OTel GenAI conventions, about
15 per span, without message content. Deterministic for a given seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, Status

#: 2026-03-02T09:00:00Z: a fixed start so prices (date-aware) and partitions are reproducible.
DEFAULT_START_NS = 1_772_442_000 * 1_000_000_000

WORKFLOWS = ("support-triage", "invoice-matching", "code-review", "lead-enrichment")
TEAMS = ("cx-platform", "finance-ops", "dev-productivity", "growth")
MODELS = (
    ("openai", "gpt-4o", "gpt-4o-2024-08-06"),
    ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
    ("openai", "o4-mini", "o4-mini-2025-04-16"),
)
ROLES = ("planner", "retriever", "drafter", "verifier")
TOOLS = ("search_tickets", "lookup_customer", "update_ticket", "send_email", "run_query")


@dataclass(frozen=True)
class Workload:
    """How requests are shaped: spans per request and services per request."""

    spans_per_request: int = 512
    services_per_request: int = 4
    seed: int = 0
    start_ns: int = DEFAULT_START_NS


def _kv(key: str, value: str | int | float | bool | list[str]) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, list):
        arr = AnyValue()
        arr.array_value.values.extend(AnyValue(string_value=v) for v in value)
        return KeyValue(key=key, value=arr)
    return KeyValue(key=key, value=AnyValue(string_value=value))


class _Ids:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def trace(self) -> bytes:
        return self.rng.getrandbits(128).to_bytes(16, "big") or b"\x01" * 16

    def span(self) -> bytes:
        return self.rng.getrandbits(64).to_bytes(8, "big") or b"\x01" * 8

    def uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _agent_trace(rng: random.Random, ids: _Ids, n: int, start_ns: int, run: int) -> list[Span]:
    """About ``n`` spans of one agent run (at least 2)."""
    trace_id = ids.trace()
    root_id = ids.span()
    workflow = WORKFLOWS[run % len(WORKFLOWS)]
    conversation = ids.uuid()
    spans: list[Span] = []
    t = start_ns
    roll_in = roll_out = 0
    for i in range(max(1, n - 1)):
        role = ROLES[i % len(ROLES)]
        dur = rng.randint(50, 4000) * 1_000_000
        span = Span(
            trace_id=trace_id,
            span_id=ids.span(),
            parent_span_id=root_id,
            start_time_unix_nano=t,
            end_time_unix_nano=t + dur,
            flags=0x101,
        )
        pick = i % 8
        if pick in (0, 2, 4, 6):  # model call
            provider, model, resp_model = MODELS[(run + i) % len(MODELS)]
            tin = rng.randint(800, 12000)
            tout = rng.randint(50, 1500)
            cached = rng.randint(0, tin // 2) if rng.random() < 0.5 else 0
            span.name = f"chat {model}"
            span.kind = Span.SPAN_KIND_CLIENT
            attrs = [
                _kv("gen_ai.operation.name", "chat"),
                _kv("gen_ai.provider.name", provider),
                _kv("gen_ai.request.model", model),
                _kv("gen_ai.response.model", resp_model),
                _kv("gen_ai.response.id", f"chatcmpl-{rng.getrandbits(64):016x}"),
                _kv("gen_ai.response.finish_reasons", ["stop"]),
                _kv("gen_ai.request.temperature", 0.2),
                _kv("gen_ai.request.max_tokens", 2048),
                _kv("gen_ai.usage.input_tokens", tin),
                _kv("gen_ai.usage.output_tokens", tout),
                _kv("server.address", f"api.{provider}.com"),
                _kv("server.port", 443),
                _kv("workflow.role", role),
                _kv("gen_ai.conversation.id", conversation),
            ]
            if cached:
                attrs.append(_kv("gen_ai.usage.cache_read.input_tokens", cached))
            if model.startswith("o4"):
                attrs.append(_kv("gen_ai.usage.reasoning.output_tokens", tout // 2))
            roll_in += tin
            roll_out += tout
        elif pick in (1, 5):  # tool call
            tool = TOOLS[(run + i) % len(TOOLS)]
            span.name = f"execute_tool {tool}"
            span.kind = Span.SPAN_KIND_INTERNAL
            attrs = [
                _kv("gen_ai.operation.name", "execute_tool"),
                _kv("gen_ai.tool.name", tool),
                _kv("gen_ai.tool.call.id", f"call_{rng.getrandbits(96):024x}"),
                _kv("gen_ai.tool.type", "function"),
                _kv("gen_ai.tool.description", f"{tool.replace('_', ' ')} for the agent"),
                _kv("workflow.role", role),
                _kv("gen_ai.conversation.id", conversation),
                _kv("code.function.name", f"tools.{tool}"),
                _kv("code.file.path", "agent/tools.py"),
                _kv("code.line.number", 40 + i),
                _kv("http.request.method", "POST"),
                _kv("url.full", f"https://internal.example.com/api/{tool}"),
                _kv("http.response.status_code", 200),
                _kv("retry.attempt", 0),
            ]
            if rng.random() < 0.03:
                span.status.code = Status.STATUS_CODE_ERROR
                span.status.message = "upstream timeout"
                ev = span.events.add()
                ev.time_unix_nano = t + dur
                ev.name = "exception"
                ev.attributes.extend(
                    [
                        _kv("exception.type", "TimeoutError"),
                        _kv("exception.message", "upstream timeout after 30s"),
                    ]
                )
        elif pick == 3:  # retrieval
            span.name = "retrieval kb-articles"
            span.kind = Span.SPAN_KIND_CLIENT
            attrs = [
                _kv("gen_ai.operation.name", "retrieval"),
                _kv("gen_ai.data_source.id", "kb-articles"),
                _kv("gen_ai.request.top_k", 8),
                _kv("db.system.name", "qdrant"),
                _kv("db.collection.name", "kb_articles_v3"),
                _kv("db.operation.name", "query"),
                _kv("db.response.returned_rows", rng.randint(0, 8)),
                _kv("server.address", "qdrant.internal"),
                _kv("server.port", 6333),
                _kv("workflow.role", "retriever"),
                _kv("gen_ai.conversation.id", conversation),
                _kv("code.function.name", "retrieval.search"),
                _kv("code.file.path", "agent/retrieval.py"),
                _kv("code.line.number", 88),
            ]
        else:  # embeddings
            tin = rng.randint(10, 400)
            span.name = "embeddings text-embedding-3-small"
            span.kind = Span.SPAN_KIND_CLIENT
            attrs = [
                _kv("gen_ai.operation.name", "embeddings"),
                _kv("gen_ai.provider.name", "openai"),
                _kv("gen_ai.request.model", "text-embedding-3-small"),
                _kv("gen_ai.response.model", "text-embedding-3-small"),
                _kv("gen_ai.usage.input_tokens", tin),
                _kv("gen_ai.embeddings.dimension.count", 1536),
                _kv("gen_ai.request.encoding_formats", ["float"]),
                _kv("server.address", "api.openai.com"),
                _kv("server.port", 443),
                _kv("workflow.role", "retriever"),
                _kv("gen_ai.conversation.id", conversation),
                _kv("code.function.name", "retrieval.embed"),
                _kv("code.file.path", "agent/retrieval.py"),
                _kv("code.line.number", 61),
            ]
        span.attributes.extend(attrs)
        spans.append(span)
        t += dur + rng.randint(1, 30) * 1_000_000
    root = Span(
        trace_id=trace_id,
        span_id=root_id,
        name=f"invoke_agent {workflow}",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=start_ns - 2_000_000,
        end_time_unix_nano=t + 1_000_000,
        flags=0x301,
    )
    root.status.code = Status.STATUS_CODE_OK
    root.attributes.extend(
        [
            _kv("gen_ai.operation.name", "invoke_agent"),
            _kv("gen_ai.agent.name", f"{workflow}-agent"),
            _kv("gen_ai.agent.id", f"agent-{run % 17}"),
            _kv("gen_ai.provider.name", "openai"),
            _kv("correlation.id", ids.uuid()),
            _kv("task.id", f"TASK-{run:07d}"),
            _kv("workflow.id", workflow),
            _kv("workflow.version", f"v{1 + run % 3}"),
            _kv("team.id", TEAMS[run % len(TEAMS)]),
            _kv("gen_ai.conversation.id", conversation),
            _kv("user.id", f"user-{rng.randint(1, 5000)}"),
            _kv("gen_ai.usage.input_tokens", roll_in),
            _kv("gen_ai.usage.output_tokens", roll_out),
            _kv("http.route", "/v1/agents/{agent_id}/runs"),
            _kv("deployment.environment.name", "production"),
        ]
    )
    return [root, *spans]


def _resource(rs: ResourceSpans, service: int) -> None:
    workflow = WORKFLOWS[service % len(WORKFLOWS)]
    rs.resource.attributes.extend(
        [
            _kv("service.name", f"{workflow}-svc"),
            _kv("service.version", f"2.{service}.1"),
            _kv("service.namespace", TEAMS[service % len(TEAMS)]),
            _kv("deployment.environment.name", "production"),
            _kv("telemetry.sdk.name", "opentelemetry"),
            _kv("telemetry.sdk.language", "python"),
            _kv("telemetry.sdk.version", "1.45.0"),
            _kv("host.name", f"worker-{service:02d}"),
        ]
    )
    rs.schema_url = "https://opentelemetry.io/schemas/1.37.0"


def make_request(
    workload: Workload = Workload(), index: int = 0, *, spans_per_trace: int = 8
) -> ExportTraceServiceRequest:
    """Request number ``index`` of a workload: ``spans_per_request`` spans of whole traces."""
    rng = random.Random(workload.seed * 1_000_003 + index)
    ids = _Ids(rng)
    request = ExportTraceServiceRequest()
    services = max(1, workload.services_per_request)
    per_service = -(-workload.spans_per_request // services)
    remaining = workload.spans_per_request
    run = index * 10_000
    start = workload.start_ns + index * 5_000_000_000
    for s in range(services):
        if remaining <= 0:
            break
        rs = request.resource_spans.add()
        _resource(rs, (index + s) % 8)
        ss = rs.scope_spans.add()
        ss.scope.name = "opentelemetry.instrumentation.openai_v2"
        ss.scope.version = "2.1b0"
        want = min(per_service, remaining)
        spans: list[Span] = []
        while len(spans) < want:
            n = min(spans_per_trace, want - len(spans))
            spans.extend(_agent_trace(rng, ids, max(n, 2), start + run * 1_000_000, run)[:n])
            run += 1
        ss.spans.extend(spans)
        remaining -= want
    return request


def requests(
    workload: Workload = Workload(), count: int = 10
) -> Iterator[ExportTraceServiceRequest]:
    for i in range(count):
        yield make_request(workload, i)


def request_bytes(workload: Workload = Workload(), count: int = 10) -> list[bytes]:
    """Serialized requests, as a receiver gets them on the wire."""
    return [r.SerializeToString() for r in requests(workload, count)]


def request_bodies(
    n_requests: int = 10,
    spans_per_request: int = 512,
    seed: int = 0,
    start_ns: int = DEFAULT_START_NS,
) -> list[bytes]:
    """``n_requests`` protobuf bodies of ``spans_per_request`` spans (unique ids throughout)."""
    workload = Workload(spans_per_request=spans_per_request, seed=seed, start_ns=start_ns)
    return request_bytes(workload, n_requests)


#: The trace id every span of ``large_request_body``'s template carries, replaced per copy.
_TEMPLATE_TRACE = b"\xab" * 16


def large_request_body(target_bytes: int, tag: int, *, as_json: bool = False) -> bytes:
    """An OTLP traces body (protobuf, or OTLP/JSON) of at most ``target_bytes``: copies of one
    1000-span request, each copy with its own trace id (``large_request_trace_id(tag, i)``), so
    every span is distinct; cheap to build at 64 MiB."""
    from ingest.receive.otlp_json import to_otlp_json

    template = make_request(Workload(spans_per_request=1000, services_per_request=1, seed=tag))
    for rs in template.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                span.trace_id = _TEMPLATE_TRACE
    if as_json:
        text = to_otlp_json(template)
        prefix, suffix = b'{"resourceSpans":[', b"]}"
        assert text.startswith(prefix) and text.endswith(suffix)
        one = text[len(prefix) : -len(suffix)]
        marker = _TEMPLATE_TRACE.hex().encode()
        copies = (target_bytes - len(prefix) - len(suffix)) // (len(one) + 1)
        parts = [
            one.replace(marker, large_request_trace_id(tag, i).encode()) for i in range(copies)
        ]
        return prefix + b",".join(parts) + suffix
    wire = template.SerializeToString()  # one resource_spans field: copies concatenate
    copies = target_bytes // len(wire)
    return b"".join(
        wire.replace(_TEMPLATE_TRACE, bytes.fromhex(large_request_trace_id(tag, i)))
        for i in range(copies)
    )


def large_request_trace_id(tag: int, copy: int) -> str:
    """The trace id (hex) of copy ``copy`` in ``large_request_body(..., tag)``."""
    return f"{tag:016x}{copy + 1:016x}"
