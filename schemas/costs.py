"""Non-inference cost entries: the stored row and the JSON shape of ``POST /api/v1/costs``.

An entry is money spent over a period that the traces cannot see: human ``rework``, debugging
``labor``, ``infrastructure``, a ``licence``, or ``other``. ``period_start`` and
``period_end`` (RFC 3339 or a plain date, UTC midnight) bound a half-open period
``[start, end)``: January is ``2026-01-01`` .. ``2026-02-01``. An entry naming a workflow
and/or team is charged to it; one naming neither is shared by inference spend in its period
(``cost=full``).

**entry_id when absent** is derived from the content, like a signal's id: posting the same
entry twice (a retried request, a re-run import) counts once. Two real entries with identical
content need their own ``entry_id``.

``amount_usd`` is checked against the one money range (``schemas.money``: up to 10^15 USD,
12 decimal places) and the period against the one time range (``schemas.jsonitems.check_time``:
within [1970-01-01, 2262-01-01)); an entry outside them is refused on its own, with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa

from schemas.jsonitems import (
    TIME_END_NS,
    ItemError,
    Parsed,
    check_fields,
    choice,
    content_id,
    ns_to_iso,
    opt_id,
    opt_text,
    opt_time,
    opt_usd,
    parse_items,
)
from schemas.lake import COSTS, Table, register_table
from schemas.money import USD_TOTAL
from schemas.spans import TIME

COST_SCHEMA_VERSION = 1

COMPONENTS: tuple[str, ...] = ("rework", "labor", "infrastructure", "licence", "other")
FIELDS: tuple[str, ...] = (
    "component",
    "amount_usd",
    "period_start",
    "period_end",
    "workflow",
    "team",
    "entry_id",
    "note",
)

COST_SCHEMA = pa.schema(
    [
        pa.field("schema_version", pa.int8()),
        pa.field("entry_id", pa.string()),
        pa.field("component", pa.string()),
        pa.field("amount_usd", USD_TOTAL),
        pa.field("period_start", TIME),
        pa.field("period_end", TIME),
        pa.field("workflow", pa.string()),
        pa.field("team", pa.string()),
        pa.field("note", pa.string()),
        pa.field("source", pa.string()),
        pa.field("received_at", pa.timestamp("ms", tz="UTC")),
    ]
)

register_table(Table(COSTS, COST_SCHEMA, COST_SCHEMA_VERSION, "period_start"))


@dataclass(frozen=True)
class CostEntry:
    entry_id: str
    component: str
    amount_usd: Decimal
    period_start_ns: int
    period_end_ns: int
    workflow: str | None = None
    team: str | None = None
    note: str | None = None

    @property
    def day(self) -> str:
        """The lake partition (UTC day of ``period_start``)."""
        return ns_to_iso(self.period_start_ns)[:10]


def cost_from_json(item: Mapping[str, Any]) -> CostEntry:
    """Validate one JSON object; raise ``ItemError`` naming the first bad field."""
    check_fields(item, FIELDS)
    component = choice(item, "component", COMPONENTS)
    amount = opt_usd(item, "amount_usd", required=True)
    assert amount is not None
    start = opt_time(item, "period_start", None, allow_date=True)
    end = opt_time(item, "period_end", None, allow_date=True, not_after=TIME_END_NS)
    if end <= start:
        raise ItemError("period_end: must be after period_start (the period is [start, end))")
    workflow = opt_id(item, "workflow")
    team = opt_id(item, "team")
    note = opt_text(item, "note")
    entry_id = opt_id(item, "entry_id")
    if entry_id is None:
        entry_id = content_id(
            "auto-",
            {
                "component": component,
                "amount_usd": str(amount),
                "period_start": start,
                "period_end": end,
                "workflow": workflow,
                "team": team,
                "note": note,
            },
        )
    return CostEntry(
        entry_id=entry_id,
        component=component,
        amount_usd=amount,
        period_start_ns=start,
        period_end_ns=end,
        workflow=workflow,
        team=team,
        note=note,
    )


def parse_costs(body: bytes, content_type: str | None = None) -> Parsed[CostEntry]:
    """Every entry of a request body (object, array or NDJSON) and the errors of the rest."""
    return parse_items(body, content_type, cost_from_json)


def costs_table(
    entries: Sequence[CostEntry], *, received_at_ms: int, source: str = "api"
) -> pa.Table:
    """The rows to store, in ``COST_SCHEMA``."""
    n = len(entries)
    return pa.table(
        {
            "schema_version": pa.array([COST_SCHEMA_VERSION] * n, pa.int8()),
            "entry_id": [e.entry_id for e in entries],
            "component": [e.component for e in entries],
            "amount_usd": pa.array([e.amount_usd for e in entries], USD_TOTAL),
            "period_start": pa.array([e.period_start_ns for e in entries], pa.int64()).cast(TIME),
            "period_end": pa.array([e.period_end_ns for e in entries], pa.int64()).cast(TIME),
            "workflow": [e.workflow for e in entries],
            "team": [e.team for e in entries],
            "note": [e.note for e in entries],
            "source": [source] * n,
            "received_at": pa.array([received_at_ms] * n, pa.int64()).cast(
                pa.timestamp("ms", tz="UTC")
            ),
        },
        schema=COST_SCHEMA,
    )
