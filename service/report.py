"""``tasklake report``: the cost-per-completed-task table of a period, in the terminal.

The rows are those of ``GET /api/v1/cost-per-task`` for the same parameters, and the total
line is the same macro without grouping: the report never computes a figure of its own. With
``--cost full`` each row also shows the fully loaded components, and the cost entries that could
not be allocated are listed under the table.
"""

from __future__ import annotations

import sys
from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from schemas.settings import Settings
from service.api.cost_per_task import GROUP_KEYS, cost_per_task_rows, unallocated_rows
from service.db import Database, QueryError


def _money(value: Any, places: int = 2) -> str:
    if value is None:
        return "—"
    amount = Decimal(str(value)).quantize(Decimal(1).scaleb(-places))
    return f"${amount:,}"


def _pct(value: Any) -> str:
    return "—" if value is None else f"{float(value) * 100:.1f}%"


def _cell(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, date | datetime):
        return value.isoformat()[:10]
    return str(value)


def table(
    header: list[str],
    body: list[list[str]],
    labels: int,
    footer: list[list[str]] | None = None,
    *,
    left: Collection[int] = (),
) -> list[str]:
    """Lines of a table: the first ``labels`` columns (and those in ``left``) left-aligned,
    the rest (numbers) right; a rule under the header, and before ``footer``."""
    widths = [
        max(len(row[i]) for row in [header, *body, *(footer or [])]) for i in range(len(header))
    ]

    def fmt(row: list[str]) -> str:
        return "  ".join(
            cell.rjust(w) if i >= labels and i not in left else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [fmt(header), rule, *(fmt(r) for r in body)]
    if footer and body:
        out += [rule, *(fmt(r) for r in footer)]
    return out


def _day(text: str | None, default: date) -> datetime:
    day = date.fromisoformat(text) if text else default
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def render_report(
    db: Database,
    *,
    start: datetime,
    end: datetime,
    group_by: list[str],
    as_of: datetime | None = None,
    full: bool = False,
) -> str:
    """The table for task cohorts starting in ``[start, end)``, grouped by ``group_by``;
    ``full``: the fully loaded cost, with its components."""
    rows = cost_per_task_rows(db, group_by, start=start, end=end, as_of=as_of, full=full)
    total = cost_per_task_rows(db, [], start=start, end=end, as_of=as_of, full=full)
    components = (
        [
            ("inference", "inference_usd"),
            ("rework", "rework_usd"),
            ("labor", "labor_usd"),
            ("infrastructure", "infrastructure_usd"),
            ("licence", "licence_usd"),
            ("other", "other_usd"),
        ]
        if full
        else []
    )
    header = [
        *group_by,
        "tasks",
        "completed",
        "pending",
        "success",
        "attempts",
        "spend",
        "per attempt",
        "per completed task",
        "unpriced spans",
        *(label for label, _ in components),
    ]

    def line(r: dict[str, Any], keys: list[str]) -> list[str]:
        return [
            *keys,
            str(r["tasks"]),
            str(r["completed"]),
            str(r["pending"]),
            _pct(r["success_rate"]),
            str(r["attempts"]),
            _money(r["spend_usd"]),
            _money(r["cost_per_attempt_usd"], 4),
            _money(r["cost_per_completed_task_usd"]),
            str(r["unpriced_spans"]),
            *(_money(r[key]) for _, key in components),
        ]

    body = [line(r, [_cell(r[k]) for k in group_by]) for r in rows]
    footer = [line(t, ["total", *[""] * (len(group_by) - 1)]) for t in total] if group_by else []
    if not group_by:
        body = [line(t, []) for t in total]
    title = (
        f"Cost per completed task ({'fully loaded' if full else 'inference'}),"
        f" tasks started {start.date().isoformat()}"
        f" .. {(end - timedelta(days=1)).date().isoformat()}, USD"
    )
    out = [title, "", *table(header, body, len(group_by), footer)]
    if not body:
        out.append("(no tasks started in this period)")
    if full:
        left = unallocated_rows(db, start=start, end=end, as_of=as_of)
        if left:
            out += ["", "Not allocated, in no row above:"]
            for e in left:
                if e["kind"] == "signal":  # rework of a signal that counts for no task
                    out.append(
                        f"  {_money(e['amount_usd'])} rework of signal {e['signal_id']}"
                        f" for {e['task_id'] or e['correlation_id']}, {_cell(e['occurred_at'])}"
                        f" ({e['reason']})"
                    )
                    continue
                scope = (
                    ", ".join(f"{k} {e[k]}" for k in ("workflow", "team") if e[k] is not None)
                    or "all work"
                )
                out.append(
                    f"  {_money(e['amount_usd'])} {e['component']} for {scope},"
                    f" {_cell(e['period_start'])} .. {_cell(e['period_end'])}"
                    f" (entry {e['entry_id']}: {e['reason']})"
                )
    pending = sum(int(t["pending"]) for t in total)
    if pending:
        out += [
            "",
            f"{pending} task(s) still pending: their spend is counted, their outcome is"
            " not known yet.",
        ]
    return "\n".join(out) + "\n"


def report_command(
    settings: Settings,
    *,
    start: str | None = None,
    end: str | None = None,
    group_by: str = "workflow",
    cost: str = "inference",
) -> int:
    """``tasklake report``: print the table; 2 on bad arguments, 1 when the query fails."""
    today = datetime.now(UTC).date()
    keys = [k.strip() for k in group_by.split(",") if k.strip()]
    unknown = [k for k in keys if k not in GROUP_KEYS]
    if unknown or len(set(keys)) != len(keys):
        print(f"tasklake report: --group-by takes {', '.join(GROUP_KEYS)}", file=sys.stderr)
        return 2
    if cost not in ("inference", "full"):
        print("tasklake report: --cost takes inference or full", file=sys.stderr)
        return 2
    try:
        since = _day(start, today - timedelta(days=30))
        until = _day(end, today + timedelta(days=1))
    except ValueError as exc:
        print(f"tasklake report: {exc}", file=sys.stderr)
        return 2
    db = Database(settings, store=False)  # one query: the views answer it sooner
    try:
        sys.stdout.write(
            render_report(db, start=since, end=until, group_by=keys, full=cost == "full")
        )
    except QueryError as exc:
        print(f"tasklake report: {exc.message}", file=sys.stderr)
        return 1
    finally:
        db.close()
    return 0
