"""Completion signals carried by OTLP log records (``POST /v1/logs``, ``LogsService/Export``).

A ticketing system or agent that already exports OTel logs says what became of a task with a
record carrying ``task.outcome``. Each field is looked up on the record's attributes first,
then on its resource's attributes:

=====================  =====================================================================
signal field           log record
=====================  =====================================================================
``outcome``            ``task.outcome`` (completed, failed, escalated, reopened, rework,
                       abandoned)
``task_id``            the first of the configured ``task_keys`` (default ``task.id``)
``correlation_id``     the first of the configured ``correlation_keys``
``workflow``           the first of the configured ``workflow_keys`` (only explicit keys: a
                       resource's ``service.name`` is the sender, not the task's workflow)
``occurred_at``        ``time_unix_nano``, else ``observed_time_unix_nano``, else receipt
``reason``             ``task.outcome.reason``, else the body when it is a string
``rework_cost_usd``    ``task.rework_cost_usd``
``rework_minutes``     ``task.rework_minutes``
``signal_id``          ``signal.id``; else derived from the content (as for the REST API), so
                       a batch the exporter retries counts once
``attributes``         the record's other attributes, plus ``log.trace_id`` / ``log.span_id``
                       / ``log.event_name`` when set
=====================  =====================================================================

Validation is the REST API's (``schemas.signals.signal_from_json``), so both doors accept and
refuse the same signals: the same money range for ``task.rework_cost_usd`` (``schemas.money``)
and the same time bounds (a record dated past the receiver's clock plus ``max_clock_skew``, e.g.
``time_unix_nano = 2^63 - 1``, is rejected as "in the future").

**Partial success.** A record with ``task.outcome`` that is not a valid signal (unknown outcome,
no task or correlation id, a negative cost) is *rejected*: counted in
``rejected_log_records`` with the first reason in ``error_message``. Records without
``task.outcome`` are ordinary logs: accepted and ignored, and *not* counted as rejected — a
Collector that forwards a whole log stream here would otherwise log a partial-success warning
for every batch, and nothing about those records is wrong.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from schemas.jsonitems import ItemError, ns_to_iso
from schemas.settings import Settings
from schemas.signals import Signal, signal_from_json

OUTCOME_KEY = "task.outcome"
REASON_KEY = "task.outcome.reason"
REWORK_COST_KEY = "task.rework_cost_usd"
REWORK_MINUTES_KEY = "task.rework_minutes"
SIGNAL_ID_KEY = "signal.id"
#: How many distinct reasons a partial-success message lists.
MAX_REASONS = 3


@dataclass
class LogSignals:
    """The signals found in one request, and what was wrong with the records refused."""

    signals: list[Signal] = field(default_factory=list)
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    @property
    def error_message(self) -> str:
        if not self.rejected:
            return ""
        more = "" if len(self.reasons) < MAX_REASONS else "; ..."
        return (
            f"{self.rejected} log record(s) with {OUTCOME_KEY} are not valid signals: "
            + "; ".join(self.reasons)
            + more
        )


def json_value(value: AnyValue) -> Any:
    """An AnyValue as the JSON value the REST API would have received (doubles as Decimal,
    exactly as ``repr`` prints them; bytes as base64 text)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return Decimal(repr(value.double_value))
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind == "array_value":
        return [json_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: json_value(kv.value) for kv in value.kvlist_value.values}
    return None


def _as_id(value: Any) -> Any:
    """Ids may arrive as numbers (ticket 1042): their text is the id."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


class _Lookup:
    """Attributes of a record, then of its resource: the first key present wins."""

    def __init__(self, record: Sequence[KeyValue], resource: Mapping[str, AnyValue]) -> None:
        self.record = {kv.key: kv.value for kv in record}
        self.resource = resource
        self.used: set[str] = set()

    def first(self, keys: Sequence[str]) -> Any:
        for source in (self.record, self.resource):
            for key in keys:
                if key in source:
                    self.used.add(key)
                    return json_value(source[key])
        return None


def _item(
    record: LogRecord, resource: Mapping[str, AnyValue], settings: Settings
) -> dict[str, Any] | None:
    """The REST API item a record stands for; None when it carries no ``task.outcome``."""
    if OUTCOME_KEY not in resource and not any(kv.key == OUTCOME_KEY for kv in record.attributes):
        return None
    find = _Lookup(record.attributes, resource)
    item: dict[str, Any] = {"outcome": find.first([OUTCOME_KEY])}
    for name, keys in (
        ("task_id", settings.task_keys),
        ("correlation_id", settings.correlation_keys),
        ("workflow", settings.workflow_keys),
        ("signal_id", (SIGNAL_ID_KEY,)),
    ):
        value = _as_id(find.first(keys))
        if value is not None:
            item[name] = value
    for name, key in (
        ("reason", REASON_KEY),
        ("rework_cost_usd", REWORK_COST_KEY),
        ("rework_minutes", REWORK_MINUTES_KEY),
    ):
        value = find.first([key])
        if value is not None:
            item[name] = value
    body = record.body
    if "reason" not in item and body.WhichOneof("value") == "string_value" and body.string_value:
        item["reason"] = body.string_value
    moment = record.time_unix_nano or record.observed_time_unix_nano
    if moment:
        item["occurred_at"] = ns_to_iso(moment)
    attributes = {
        kv.key: json_value(kv.value) for kv in record.attributes if kv.key not in find.used
    }
    if record.trace_id:
        attributes["log.trace_id"] = record.trace_id.hex()
    if record.span_id:
        attributes["log.span_id"] = record.span_id.hex()
    if record.event_name:
        attributes["log.event_name"] = record.event_name
    if attributes:
        item["attributes"] = attributes
    return item


def signals_from_logs(
    request: ExportLogsServiceRequest, settings: Settings, *, now: int
) -> LogSignals:
    """Every signal in ``request``; ``now`` (ns) stands in for records without a time."""
    out = LogSignals()
    for resource_logs in request.resource_logs:
        resource = {kv.key: kv.value for kv in resource_logs.resource.attributes}
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                item = _item(record, resource, settings)
                if item is None:
                    continue
                try:
                    out.signals.append(
                        signal_from_json(item, now=now, max_clock_skew=settings.max_clock_skew)
                    )
                except ItemError as exc:
                    out.rejected += 1
                    if len(out.reasons) < MAX_REASONS and str(exc) not in out.reasons:
                        out.reasons.append(str(exc))
    return out
