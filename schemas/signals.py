"""Completion signals: the stored row and the JSON shape of ``POST /api/v1/signals``.

A signal says what became of a task (``task_id``) or of one attempt (``correlation_id``):
``completed``, ``failed``, ``escalated``, ``reopened``, ``rework`` or ``abandoned``, at
``occurred_at`` (RFC 3339; default: when it was received). Signals are append-only; the
``signals`` view keeps one row per ``signal_id``, so sending one twice counts once.

**signal_id when absent.** Webhook senders retry, and a retry must not count twice. So a
signal sent without an id gets one derived from its content (every field, including
``occurred_at``): the same signal sent again is the same signal. A sender that omits
``occurred_at`` as well gets the receipt time, so its retries cannot be recognised — send
``signal_id`` (or at least ``occurred_at``) to be idempotent. Two genuinely distinct signals
with identical content and time need their own ids.

**What is refused, per item.** ``occurred_at`` before 1970 or later than the receiver's clock
plus ``max_clock_skew`` (a signal from the future would decide a task before its time, and
the read side could no longer answer from its task store); a ``rework_cost_usd`` outside the
one money range (``schemas.money``). Schema version 2 stores ``rework_cost_usd`` as
``DECIMAL(38, 12)`` like every amount (version 1 files, ``DECIMAL(18, 12)``, still read: the
views read with ``union_by_name``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa

from schemas.jsonitems import (
    ItemError,
    Parsed,
    check_fields,
    choice,
    content_id,
    now_ns,
    ns_to_iso,
    opt_attributes,
    opt_id,
    opt_number,
    opt_text,
    opt_time,
    opt_usd,
    parse_items,
)
from schemas.lake import SIGNALS, Table, register_table
from schemas.money import USD_TOTAL
from schemas.settings import Settings
from schemas.spans import ATTR_MAP, TIME

#: 2: rework_cost_usd is DECIMAL(38, 12), the one money type (1: DECIMAL(18, 12)).
SIGNAL_SCHEMA_VERSION = 2
#: How far ahead of the receiver's clock a signal may be dated (the setting's default).
DEFAULT_CLOCK_SKEW_S = Settings.max_clock_skew

#: What a signal may say, in the words of DESIGN §2.
OUTCOMES: tuple[str, ...] = (
    "completed",
    "failed",
    "escalated",
    "reopened",
    "rework",
    "abandoned",
)
FIELDS: tuple[str, ...] = (
    "task_id",
    "correlation_id",
    "outcome",
    "occurred_at",
    "workflow",
    "reason",
    "rework_cost_usd",
    "rework_minutes",
    "signal_id",
    "attributes",
)

SIGNAL_SCHEMA = pa.schema(
    [
        pa.field("schema_version", pa.int8()),
        pa.field("signal_id", pa.string()),
        pa.field("task_id", pa.string()),
        pa.field("correlation_id", pa.string()),
        pa.field("outcome", pa.string()),
        pa.field("occurred_at", TIME),
        pa.field("workflow", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("rework_cost_usd", USD_TOTAL),
        pa.field("rework_minutes", pa.float64()),
        pa.field("attributes", ATTR_MAP),
        pa.field("attribute_types", pa.string()),
        pa.field("source", pa.string()),  # api | otlp-logs | ...
        pa.field("received_at", pa.timestamp("ms", tz="UTC")),
    ]
)

register_table(Table(SIGNALS, SIGNAL_SCHEMA, SIGNAL_SCHEMA_VERSION, "occurred_at"))


@dataclass(frozen=True)
class Signal:
    signal_id: str
    outcome: str
    occurred_at_ns: int
    task_id: str | None = None
    correlation_id: str | None = None
    workflow: str | None = None
    reason: str | None = None
    rework_cost_usd: Decimal | None = None
    rework_minutes: float | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    attribute_types: str | None = None

    @property
    def day(self) -> str:
        """The lake partition (UTC day of ``occurred_at``)."""
        return ns_to_iso(self.occurred_at_ns)[:10]


def signal_from_json(
    item: Mapping[str, Any],
    *,
    now: int | None = None,
    max_clock_skew: float = DEFAULT_CLOCK_SKEW_S,
) -> Signal:
    """Validate one JSON object; raise ``ItemError`` naming the first bad field. ``now`` (ns)
    is the default ``occurred_at``; an ``occurred_at`` more than ``max_clock_skew`` seconds
    after it is refused."""
    check_fields(item, FIELDS)
    moment = now if now is not None else now_ns()
    task_id = opt_id(item, "task_id")
    correlation_id = opt_id(item, "correlation_id")
    if task_id is None and correlation_id is None:
        raise ItemError("task_id or correlation_id: one is required")
    outcome = choice(item, "outcome", OUTCOMES)
    occurred = opt_time(item, "occurred_at", moment, not_after=moment + round(max_clock_skew * 1e9))
    workflow = opt_id(item, "workflow")
    reason = opt_text(item, "reason")
    rework_cost = opt_usd(item, "rework_cost_usd")
    rework_minutes = opt_number(item, "rework_minutes")
    entries, codes = opt_attributes(item)
    signal_id = opt_id(item, "signal_id")
    if signal_id is None:
        signal_id = content_id(
            "auto-",
            {
                "task_id": task_id,
                "correlation_id": correlation_id,
                "outcome": outcome,
                "occurred_at": occurred,
                "workflow": workflow,
                "reason": reason,
                "rework_cost_usd": None if rework_cost is None else str(rework_cost),
                "rework_minutes": rework_minutes,
                "attributes": sorted(entries),
            },
        )
    return Signal(
        signal_id=signal_id,
        outcome=outcome,
        occurred_at_ns=occurred,
        task_id=task_id,
        correlation_id=correlation_id,
        workflow=workflow,
        reason=reason,
        rework_cost_usd=rework_cost,
        rework_minutes=rework_minutes,
        attributes=tuple(entries),
        attribute_types=codes,
    )


def parse_signals(
    body: bytes,
    content_type: str | None = None,
    *,
    now: int | None = None,
    max_clock_skew: float = DEFAULT_CLOCK_SKEW_S,
) -> Parsed[Signal]:
    """Every signal of a request body (object, array or NDJSON) and the errors of the rest.

    Raises ``schemas.jsonitems.BodyError`` when the body is not signals at all. ``now``
    (nanoseconds) is the default ``occurred_at``: one value for the whole request.
    """
    moment = now if now is not None else now_ns()
    return parse_items(
        body,
        content_type,
        lambda item: signal_from_json(item, now=moment, max_clock_skew=max_clock_skew),
    )


def signals_table(
    signals: Sequence[Signal], *, received_at_ms: int, source: str = "api"
) -> pa.Table:
    """The rows to store, in ``SIGNAL_SCHEMA``."""
    n = len(signals)
    return pa.table(
        {
            "schema_version": pa.array([SIGNAL_SCHEMA_VERSION] * n, pa.int8()),
            "signal_id": [s.signal_id for s in signals],
            "task_id": [s.task_id for s in signals],
            "correlation_id": [s.correlation_id for s in signals],
            "outcome": [s.outcome for s in signals],
            "occurred_at": pa.array([s.occurred_at_ns for s in signals], pa.int64()).cast(TIME),
            "workflow": [s.workflow for s in signals],
            "reason": [s.reason for s in signals],
            "rework_cost_usd": pa.array([s.rework_cost_usd for s in signals], USD_TOTAL),
            "rework_minutes": pa.array([s.rework_minutes for s in signals], pa.float64()),
            "attributes": pa.array([list(s.attributes) for s in signals], ATTR_MAP),
            "attribute_types": pa.array([s.attribute_types for s in signals], pa.string()),
            "source": [source] * n,
            "received_at": pa.array([received_at_ms] * n, pa.int64()).cast(
                pa.timestamp("ms", tz="UTC")
            ),
        },
        schema=SIGNAL_SCHEMA,
    )
