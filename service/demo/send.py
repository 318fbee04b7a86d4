"""Sending a scenario the way real emitters do: spans through the OpenTelemetry SDK and its
OTLP/HTTP exporter (batched, retried by the SDK), completion signals as NDJSON and cost
entries as JSON through the REST API, each with the bearer token when one is given."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from service.demo.scenario import AttemptPlan, CostPlan, SignalPlan, SpanPlan, TaskPlan

BATCH = 2048
QUEUE = 500_000


class SendError(Exception):
    """Something the server did not take: the demo stops and says what."""


def ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class CountingExporter(SpanExporter):
    """The SDK's OTLP exporter, counting what the server acknowledged (and what it did not)."""

    def __init__(self, inner: SpanExporter, on_batch: Callable[[int], None]) -> None:
        self.inner, self.on_batch = inner, on_batch
        self.exported = 0
        self.failed = 0
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        with self._lock:
            if result is SpanExportResult.SUCCESS:
                self.exported += len(spans)
            else:
                self.failed += len(spans)
        self.on_batch(len(spans))
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@contextmanager
def tracers(
    url: str, token: str | None, on_batch: Callable[[int], None]
) -> Iterator[tuple[Callable[[TaskPlan], Tracer], list[CountingExporter]]]:
    """A tracer per service (each agent service has its own resource), all exporting to
    ``url``; on exit every span is flushed and the providers shut down."""
    providers: dict[str, TracerProvider] = {}
    exporters: list[CountingExporter] = []

    def tracer(task: TaskPlan) -> Tracer:
        if task.service not in providers:
            provider = TracerProvider(
                resource=Resource.create(
                    {
                        "service.name": task.service,
                        "service.version": task.version,
                        "deployment.environment.name": "demo",
                    }
                )
            )
            exporter = CountingExporter(
                OTLPSpanExporter(
                    endpoint=url.rstrip("/") + "/v1/traces", headers=_headers(token), timeout=60
                ),
                on_batch,
            )
            exporters.append(exporter)
            provider.add_span_processor(
                BatchSpanProcessor(
                    exporter,
                    max_queue_size=QUEUE,
                    max_export_batch_size=BATCH,
                    schedule_delay_millis=250,
                )
            )
            providers[task.service] = provider
        return providers[task.service].get_tracer("tasklake.demo")

    try:
        yield tracer, exporters
    finally:
        for provider in providers.values():
            provider.force_flush(120_000)
            provider.shutdown()


def _attributes(node: SpanPlan, task: TaskPlan, attempt: AttemptPlan) -> dict[str, Any]:
    if node.span == "root":
        return {
            "gen_ai.operation.name": "invoke_workflow",
            "correlation.id": attempt.attempt_id,
            "task.id": task.task_id,
            "workflow.id": task.workflow,
            "workflow.version": task.version,
            "team.id": task.team,
        }
    if node.span == "agent":
        return {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": node.name}
    step = node.step
    assert step is not None
    if step.op == "execute_tool":
        return {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": step.name}
    if step.op == "retrieval":
        return {"gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": step.name}
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": step.op,
        "gen_ai.provider.name": step.provider,
        "gen_ai.request.model": step.name,
        "gen_ai.response.model": step.name,
        "gen_ai.usage.input_tokens": step.input_tokens,
    }
    if step.op == "chat":
        attrs["gen_ai.usage.output_tokens"] = step.output_tokens
    if step.cache_read_tokens:
        attrs["gen_ai.usage.cache_read.input_tokens"] = step.cache_read_tokens
    if step.reasoning_tokens:
        attrs["gen_ai.usage.reasoning.output_tokens"] = step.reasoning_tokens
    return attrs


KINDS = {"root": SpanKind.SERVER, "agent": SpanKind.INTERNAL}
OPERATIONS = {"root": "invoke_workflow", "agent": "invoke_agent"}


def emit_attempt(tracer: Tracer, task: TaskPlan, attempt: AttemptPlan) -> None:
    """One attempt's span tree, at its planned times."""
    base = ns(attempt.start)

    def at(seconds: float) -> int:
        return base + round(seconds * 1e9)

    def emit(node: SpanPlan, context: Any) -> None:
        name = f"{OPERATIONS.get(node.span, node.span)} {node.name}"
        span = tracer.start_span(
            name,
            context=context,
            kind=KINDS.get(node.span, SpanKind.CLIENT),
            start_time=at(node.start_s),
            attributes=_attributes(node, task, attempt),
        )
        inner = trace.set_span_in_context(span)
        for child in node.children:
            emit(child, inner)
        if node.error:
            span.set_attribute("error.type", node.error)
            span.set_status(Status(StatusCode.ERROR, node.error))
        span.end(end_time=at(node.end_s))

    emit(attempt.spans, None)


# ------------------------------------------------------------------ REST


def post(url: str, path: str, body: bytes, content_type: str, token: str | None) -> Any:
    """POST until answered (a 503 is waited out as its Retry-After says); the JSON answer."""
    deadline = time.monotonic() + 300
    while True:
        request = urllib.request.Request(
            url.rstrip("/") + path,
            data=body,
            method="POST",
            headers={"Content-Type": content_type, **_headers(token)},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            if exc.code == 503 and time.monotonic() < deadline:
                time.sleep(float(exc.headers.get("Retry-After") or 1))
                continue
            raise SendError(f"POST {path}: {exc.code} {text[:500]}") from exc
        except urllib.error.URLError as exc:
            raise SendError(f"POST {path}: {exc.reason}") from exc


def signal_item(task: TaskPlan, signal: SignalPlan) -> dict[str, Any]:
    item: dict[str, Any] = {
        "signal_id": signal.signal_id,
        "task_id": task.task_id,
        "workflow": task.workflow,
        "outcome": signal.outcome,
        "occurred_at": rfc3339(signal.occurred_at),
    }
    if signal.reason:
        item["reason"] = signal.reason
    if signal.rework_cost_usd is not None:
        item["rework_cost_usd"] = str(signal.rework_cost_usd)
    if signal.rework_minutes is not None:
        item["rework_minutes"] = signal.rework_minutes
    return item


def cost_item(cost: CostPlan) -> dict[str, Any]:
    item: dict[str, Any] = {
        "entry_id": cost.entry_id,
        "component": cost.component,
        "amount_usd": str(cost.amount_usd),
        "period_start": rfc3339(cost.period_start),
        "period_end": rfc3339(cost.period_end),
        "note": cost.note,
    }
    if cost.workflow:
        item["workflow"] = cost.workflow
    if cost.team:
        item["team"] = cost.team
    return item


def check(answer: Any, what: str) -> int:
    if answer.get("rejected"):
        raise SendError(f"{what} rejected: {answer['rejected'][:3]}")
    return int(answer["accepted"])
