"""Agent runs and completion signals as real emitters send them: spans through the OTel SDK's
batching OTLP exporters, signals through ``POST /api/v1/signals`` (NDJSON) or OTel log records
through the SDK's OTLP log exporters (HTTP or gRPC), answers read over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import requests
from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Tracer

from tests.e2e.harness import Server

#: Exporter batches far above the SDK defaults: tens of thousands of spans in a few requests.
BATCH = 4096
QUEUE = 200_000


def ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


@dataclass(frozen=True)
class Call:
    """One model call of an attempt."""

    role: str
    model: str
    input_tokens: int
    output_tokens: int
    provider: str = "acme"


@dataclass(frozen=True)
class Attempt:
    correlation_id: str
    start: datetime
    calls: Sequence[Call]
    task_id: str | None = None
    workflow: str | None = None
    version: str | None = None
    team: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@contextmanager
def tracing(
    server: Server, service: str = "support-bot"
) -> Iterator[tuple[Tracer, TracerProvider]]:
    """A tracer whose spans reach ``server`` through the SDK's batching HTTP exporter."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=server.url + "/v1/traces", timeout=60),
            max_queue_size=QUEUE,
            max_export_batch_size=BATCH,
            schedule_delay_millis=200,
        )
    )
    try:
        yield provider.get_tracer("tests.e2e.agents"), provider
    finally:
        provider.shutdown()


def emit(tracer: Tracer, attempt: Attempt) -> None:
    """A root span naming the attempt, task, workflow, version and team, with one chat span
    per model call under it, a second apart."""
    start = ns(attempt.start)
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "invoke_workflow",
        "correlation.id": attempt.correlation_id,
        **{
            key: value
            for key, value in (
                ("task.id", attempt.task_id),
                ("workflow.id", attempt.workflow),
                ("workflow.version", attempt.version),
                ("team.id", attempt.team),
            )
            if value is not None
        },
        **attempt.extra,
    }
    end = start + (len(attempt.calls) + 1) * 10**9
    root = tracer.start_span(
        "invoke_workflow", kind=SpanKind.SERVER, start_time=start, attributes=attributes
    )
    context = trace.set_span_in_context(root)
    for i, call in enumerate(attempt.calls):
        chat(tracer, call, start + (i + 1) * 10**9 - 5 * 10**8, context=context)
    root.end(end_time=end)


def chat(
    tracer: Tracer,
    call: Call,
    start: int,
    *,
    context: Any = None,
    attributes: Mapping[str, Any] | None = None,
) -> None:
    span = tracer.start_span(
        f"chat {call.model}",
        context=context,
        kind=SpanKind.CLIENT,
        start_time=start,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": call.provider,
            "gen_ai.request.model": call.model,
            "gen_ai.usage.input_tokens": call.input_tokens,
            "gen_ai.usage.output_tokens": call.output_tokens,
            "workflow.role": call.role,
            **(attributes or {}),
        },
    )
    span.end(end_time=start + 4 * 10**8)


def post_signals(server: Server, signals: Iterable[Mapping[str, Any]], batch: int = 2000) -> int:
    """Send signals as NDJSON in batches; return how many were accepted."""
    items = list(signals)
    accepted = 0
    with requests.Session() as http:
        for i in range(0, len(items), batch):
            body = "\n".join(json.dumps(_jsonable(s)) for s in items[i : i + batch])
            resp = http.post(
                server.url + "/api/v1/signals",
                data=body.encode(),
                headers={"Content-Type": "application/x-ndjson"},
                timeout=60,
            )
            assert resp.status_code == 200, resp.text
            doc = resp.json()
            assert doc["rejected"] == [], doc["rejected"][:3]
            accepted += doc["accepted"]
    return accepted


def _jsonable(item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: (v.isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v)
        for k, v in item.items()
    }


def log_signals(
    server: Server, signals: Iterable[Mapping[str, Any]], *, protocol: str = "http"
) -> None:
    """Send signals as OTel log records (``task.outcome`` + ``task.id``) through the SDK's
    batching OTLP log exporter; returns once every batch was exported."""
    if protocol == "http":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        exporter: Any = OTLPLogExporter(endpoint=server.url + "/v1/logs", timeout=60)
    else:
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
            OTLPLogExporter as GrpcLogExporter,
        )

        exporter = GrpcLogExporter(
            endpoint=f"http://{server.grpc_target}", insecure=True, timeout=60
        )
    provider = LoggerProvider(resource=Resource.create({"service.name": "ticketing"}))
    provider.add_log_record_processor(
        BatchLogRecordProcessor(
            exporter,
            max_queue_size=QUEUE,
            max_export_batch_size=BATCH,
            schedule_delay_millis=200,
        )
    )
    logger = provider.get_logger("tickets")
    try:
        for s in signals:
            attributes = {"task.outcome": s["outcome"]}
            for key, attribute in (
                ("task_id", "task.id"),
                ("correlation_id", "correlation.id"),
                ("signal_id", "signal.id"),
                ("rework_cost_usd", "task.rework_cost_usd"),
            ):
                if key in s:
                    attributes[attribute] = s[key]
            logger.emit(
                timestamp=ns(s["occurred_at"]),
                body=f"ticket {s['outcome']}",
                attributes=attributes,
            )
        assert provider.force_flush(60_000)
    finally:
        provider.shutdown()


def api(server: Server, path: str, **params: Any) -> Any:
    """GET a JSON answer, numbers as Decimal (money stays exact)."""
    resp = requests.get(server.url + path, params=params, timeout=120)
    assert resp.status_code == 200, resp.text
    return json.loads(resp.text, parse_float=Decimal)


def rows_by(doc: Mapping[str, Any], *keys: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(r[k] for k in keys): r for r in doc["rows"]}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
