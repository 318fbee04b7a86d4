"""A small hand-computed scenario: seven tasks of two workflows, every figure known.

support (team cx)                                   spend   attempts  outcome
  S1 v1 Mon Jan 5   two failed attempts, then one   1.05    3         completed
                    spread over two traces and files
  S2 v1 Tue Jan 6   completed, reopened 30 h later  0.20    1         reopened -> failed
                    (plus one unpriced model call)
  S3 v2 Tue Jan 13  completed, reopened 49 h later  0.30    1         completed (48 h window)
  S4 v2 Mon Feb 2   no signal yet                   0.15    1         pending
billing (team fin)
  B1 v1 Mon Jan 5   escalated                       0.60    1         escalated
  B2 v1 Tue Jan 6   no signal for 7 days            0.07    1         abandoned
  B3 v2 Tue Jan 13  completed (signal sent 3 times) 0.25    1         completed

support: 6 attempts, $1.70, 2 completed -> $0.85 per completed task, 1 pending, 1 unpriced.
billing: 3 attempts, $0.92, 1 completed -> $0.92.  Everything at as_of = 2026-02-05T00:00Z.

Fully loaded (cost=full): S2's reopening cost $12.50 of rework, and five cost entries:
  labor $31 for support in January -> by inference spend: S1 21, S2 4, S3 6 ($20 per $1);
  infrastructure $9.20 for team fin, Jan-Feb -> B1 6.0, B2 0.7, B3 2.5 ($10 per $1);
  licence $24.70 for everyone in January -> every January task, $10 per $1 of spend;
  rework $3 for support in February -> S4 alone;
  other $5 for workflow "nobody" in January -> no spend in its scope: unallocated.
Within a task, each component goes to its roles / models in proportion to their spend.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.lakes import (
    at,
    signal,
    span,
    write_costs,
    write_signals,
    write_spans,
)

AS_OF = datetime(2026, 2, 5, tzinfo=UTC)


@dataclass(frozen=True)
class Task:
    key: str
    workflow: str
    team: str
    version: str
    start: datetime
    attempts: int
    counted_as: str


@dataclass(frozen=True)
class Span:
    task: str
    role: str
    model: str | None
    provider: str | None
    cost: Decimal | None
    tokens: int
    model_call: bool


TASKS = {
    t.key: t
    for t in (
        Task("S1", "support", "cx", "v1", at(0), 3, "completed"),
        Task("S2", "support", "cx", "v1", at(24), 1, "failed"),
        Task("S3", "support", "cx", "v2", at(24 * 8), 1, "completed"),
        Task("S4", "support", "cx", "v2", at(24 * 28), 1, "pending"),
        Task("B1", "billing", "fin", "v1", at(1), 1, "escalated"),
        Task("B2", "billing", "fin", "v1", at(25), 1, "abandoned"),
        Task("B3", "billing", "fin", "v2", at(24 * 8 + 1), 1, "completed"),
    )
}

LARGE, SMALL = ("m-large", "p-b"), ("m-small", "p-a")


def _chat(task: str, role: str, model: tuple[str, str], cost: str | None, tokens: int) -> Span:
    return Span(task, role, model[0], model[1], Decimal(cost) if cost else None, tokens, True)


def _root(task: str) -> Span:
    return Span(task, "orchestrator", None, None, None, 0, False)


# Every span of the scenario (as the oracle sees it), in the order _spans() writes them.
SPANS: list[Span] = [
    *(_root("S1"), _chat("S1", "planner", LARGE, "0.50", 1000)),
    *(_root("S1"), _chat("S1", "drafter", SMALL, "0.10", 300)),
    *(_root("S1"), _chat("S1", "planner", LARGE, "0.40", 800)),
    _chat("S1", "drafter", SMALL, "0.05", 100),
    *(_root("S2"), _chat("S2", "drafter", SMALL, "0.20", 400)),
    _chat("S2", "planner", LARGE, None, 500),
    *(_root("S3"), _chat("S3", "planner", LARGE, "0.30", 600)),
    *(_root("S4"), _chat("S4", "drafter", SMALL, "0.15", 200)),
    *(_root("B1"), _chat("B1", "planner", LARGE, "0.60", 1200)),
    Span("B1", "tool", None, None, None, 0, False),
    *(_root("B2"), _chat("B2", "drafter", SMALL, "0.07", 90)),
    *(_root("B3"), _chat("B3", "planner", LARGE, "0.25", 500)),
]


def build(lake: Path | str) -> None:
    """Write the scenario: spans in three files (companions for two of them), signals."""
    first: list[dict[str, Any]] = []
    second: list[dict[str, Any]] = []

    def attempt(
        task: Task,
        n: int,
        chats: Sequence[tuple[str, tuple[str, str], str | None, int]],
        into: list[dict[str, Any]],
        *,
        tool: bool = False,
    ) -> None:
        name = f"{task.key}-{n}"
        start = task.start + timedelta(minutes=10 * n)
        into.append(
            span(
                name,
                f"{name}-root",
                start=start,
                op="invoke_workflow",
                correlation_id=name,
                task_id=task.key,
                workflow=task.workflow,
                team=task.team,
                workflow_version=task.version,
            )
        )
        for i, (role, model, cost, tokens) in enumerate(chats):
            into.append(
                span(
                    name,
                    f"{name}-chat{i}",
                    parent=f"{name}-root",
                    start=start + timedelta(seconds=i + 1),
                    op="chat",
                    role=role,
                    model=model[0],
                    provider=model[1],
                    cost=cost,
                    tokens=(tokens - tokens // 10, tokens // 10),
                    correlation_id=name,
                )
            )
        if tool:
            into.append(
                span(
                    name,
                    f"{name}-tool",
                    parent=f"{name}-root",
                    start=start + timedelta(seconds=9),
                    op="execute_tool",
                    error=True,
                    correlation_id=name,
                )
            )

    t = TASKS
    attempt(t["S1"], 0, [("planner", LARGE, "0.50", 1000)], first)
    attempt(t["S1"], 1, [("drafter", SMALL, "0.10", 300)], first)
    # S1's third attempt: its second model call comes in another trace and file
    attempt(t["S1"], 2, [("planner", LARGE, "0.40", 800)], first)
    second.append(
        span(
            "S1-2-elsewhere",
            "S1-2-late",
            start=t["S1"].start + timedelta(minutes=21),
            op="chat",
            role="drafter",
            model=SMALL[0],
            provider=SMALL[1],
            cost="0.05",
            tokens=(90, 10),
            correlation_id="S1-2",
        )
    )
    attempt(t["S2"], 0, [("drafter", SMALL, "0.20", 400), ("planner", LARGE, None, 500)], first)
    attempt(t["S3"], 0, [("planner", LARGE, "0.30", 600)], second)
    attempt(t["B1"], 0, [("planner", LARGE, "0.60", 1200)], first, tool=True)
    attempt(t["B2"], 0, [("drafter", SMALL, "0.07", 90)], first)
    attempt(t["B3"], 0, [("planner", LARGE, "0.25", 500)], second)
    fresh: list[dict[str, Any]] = []
    attempt(t["S4"], 0, [("drafter", SMALL, "0.15", 200)], fresh)
    write_spans(lake, first, "first")
    write_spans(lake, second, "second")
    write_spans(lake, fresh, "fresh")

    done = timedelta(minutes=30)
    write_signals(
        lake,
        [
            signal("S1", "completed", t["S1"].start + 2 * done, signal_id="s1"),
            signal("S2", "completed", t["S2"].start + done, signal_id="s2"),
            signal(
                "S2",
                "reopened",
                t["S2"].start + done + timedelta(hours=30),
                signal_id="s2r",
                reason="customer wrote back",
                rework_cost_usd="12.5",
            ),
            signal("S3", "completed", t["S3"].start + done, signal_id="s3"),
            signal("S3", "reopened", t["S3"].start + done + timedelta(hours=49), signal_id="s3r"),
            signal("B1-0", "escalated", t["B1"].start + done, signal_id="b1", by="correlation_id"),
            signal("B3", "completed", t["B3"].start + done, signal_id="b3"),
        ],
        "signals-1",
    )
    # the same signal again (a retried webhook), and once more with different content:
    # the first one received counts, once
    write_signals(lake, [signal("B3", "completed", t["B3"].start + done, signal_id="b3")], "s-2")
    write_signals(lake, [signal("B3", "failed", t["B3"].start + done, signal_id="b3")], "s-3")
    write_costs(lake, COST_ENTRIES, "costs-1")


COST_ENTRIES: list[dict[str, Any]] = [
    {
        "component": "labor",
        "amount_usd": "31",
        "workflow": "support",
        "period_start": "2026-01-01",
        "period_end": "2026-02-01",
        "entry_id": "labor-support",
    },
    {
        "component": "infrastructure",
        "amount_usd": "9.2",
        "team": "fin",
        "period_start": "2026-01-01",
        "period_end": "2026-03-01",
        "entry_id": "infra-fin",
    },
    {
        "component": "licence",
        "amount_usd": "24.70",
        "period_start": "2026-01-01",
        "period_end": "2026-02-01",
        "entry_id": "licence-all",
    },
    {
        "component": "rework",
        "amount_usd": "3",
        "workflow": "support",
        "period_start": "2026-02-01",
        "period_end": "2026-03-01",
        "entry_id": "rework-support",
    },
    {
        "component": "other",
        "amount_usd": "5",
        "workflow": "nobody",
        "period_start": "2026-01-01",
        "period_end": "2026-02-01",
        "entry_id": "other-nobody",
    },
]
COMPONENTS = ("rework", "labor", "infrastructure", "licence", "other")
#: Each task's non-inference costs, computed by hand from the entries above.
TASK_COSTS: dict[str, dict[str, Decimal]] = {
    "S1": {"labor": Decimal(21), "licence": Decimal("10.5")},
    "S2": {"rework": Decimal("12.5"), "labor": Decimal(4), "licence": Decimal(2)},
    "S3": {"labor": Decimal(6), "licence": Decimal(3)},
    "S4": {"rework": Decimal(3)},
    "B1": {"infrastructure": Decimal(6), "licence": Decimal(6)},
    "B2": {"infrastructure": Decimal("0.7"), "licence": Decimal("0.7")},
    "B3": {"infrastructure": Decimal("2.5"), "licence": Decimal("2.5")},
}


# ----------------------------------------------------------------------------- the oracle

TASK_DIMS = ("workflow", "team", "version", "day", "week", "month")
SPAN_DIMS = ("role", "model", "provider")


def _task_key(task: Task, dim: str) -> Any:
    d = task.start.date()
    if dim == "day":
        return d.isoformat()
    if dim == "week":
        return (d - timedelta(days=d.weekday())).isoformat()
    if dim == "month":
        return date(d.year, d.month, 1).isoformat()
    return getattr(task, dim)


def expected_rows(
    group_by: Sequence[str], *, full: bool = False
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Every row of cost-per-task for ``group_by``, computed from the facts above (``full``:
    the fully loaded cost, with its components)."""
    task_dims = [g for g in group_by if g in TASK_DIMS]
    span_dims = [g for g in group_by if g in SPAN_DIMS]
    base: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(
        lambda: {
            "attempts": 0,
            "tasks": 0,
            "completed": 0,
            "failed": 0,
            "escalated": 0,
            "abandoned": 0,
            "pending": 0,
        }
    )
    for task in TASKS.values():
        b = base[tuple(_task_key(task, g) for g in task_dims)]
        b["attempts"] += task.attempts
        b["tasks"] += 1
        b[task.counted_as] += 1
    money: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(
        lambda: {
            "spend": Decimal(0),
            "tokens": 0,
            "calls": 0,
            "unpriced": 0,
            **dict.fromkeys(COMPONENTS, 0),
        }
    )
    # each task's rows of the span-level dimensions: spend decides their share of the rest
    per_task: dict[str, dict[tuple[Any, ...], Decimal]] = defaultdict(dict)
    for s in SPANS:
        if span_dims and ("model" in span_dims or "provider" in span_dims) and not s.model_call:
            continue
        task = TASKS[s.task]
        tkey = tuple(_task_key(task, g) for g in task_dims)
        skey = {"role": s.role, "model": s.model, "provider": s.provider}
        dims = tuple(skey[g] for g in span_dims)
        m = money[(tkey, dims)]
        m["spend"] += s.cost or 0
        m["tokens"] += s.tokens
        m["calls"] += int(s.model_call)
        m["unpriced"] += int(s.model_call and s.cost is None)
        per_task[s.task][dims] = per_task[s.task].get(dims, Decimal(0)) + (s.cost or 0)
    if full:
        for key, rows in per_task.items():
            tkey = tuple(_task_key(TASKS[key], g) for g in task_dims)
            spend = sum(rows.values(), Decimal(0))
            for dims, row_spend in rows.items():
                for component, amount in TASK_COSTS[key].items():
                    share = amount * row_spend / spend
                    assert share == share.quantize(Decimal("1e-12")), "pick exact amounts"
                    money[(tkey, dims)][component] += share
    out = {}
    for (tkey, skey), m in money.items():
        b = base[tkey]
        keys = dict(zip(task_dims, tkey, strict=True)) | dict(zip(span_dims, skey, strict=True))
        decided = b["tasks"] - b["pending"]
        total = m["spend"] + sum(m[c] for c in COMPONENTS) if full else m["spend"]
        # every model call unpriced: the cost is unknown, not zero
        known = not (m["calls"] and m["unpriced"] == m["calls"])
        out[tuple(keys[g] for g in group_by)] = {
            **b,
            "success_rate": b["completed"] / decided if decided else None,
            "spend_usd": total,
            "cost_per_attempt_usd": total / b["attempts"] if known else None,
            "cost_per_completed_task_usd": (
                total / b["completed"] if b["completed"] and known else None
            ),
            "tokens_per_attempt": m["tokens"] / b["attempts"],
            "unpriced_spans": m["unpriced"],
        }
        if full:
            out[tuple(keys[g] for g in group_by)].update(
                inference_usd=m["spend"], **{f"{c}_usd": Decimal(m[c]) for c in COMPONENTS}
            )
    return out


def cents(value: Any) -> Any:
    """A money figure rounded to the cent, for comparing answers to the oracle."""
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))


Check = Callable[[Sequence[str]], None]
