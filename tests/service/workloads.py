"""Workflows whose every figure is known by hand, week by week: each task one attempt (or
more) of one model call at a fixed cost and token count, completed or failed an hour after it
starts, or left without a signal (pending). For the trends and autonomy tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.lakes import T0, signal, span, write_costs, write_signals, write_spans


@dataclass(frozen=True)
class Week:
    """``tasks`` tasks started in one week: each ``attempts`` attempts of one model call that
    costs ``cost`` USD and uses ``tokens`` tokens; ``completed`` of the tasks complete (default:
    all), ``pending`` more get no signal, the rest fail."""

    tasks: int
    cost: str
    tokens: int
    completed: int | None = None
    pending: int = 0
    attempts: int = 1


@dataclass
class Lake:
    """Span rows, signals and cost entries of several workflows, written in one commit each."""

    spans: list[dict[str, Any]] = field(default_factory=list)
    signals: list[dict[str, Any]] = field(default_factory=list)
    costs: list[dict[str, Any]] = field(default_factory=list)

    def workflow(self, name: str, weeks: Sequence[Week], *, first: datetime = T0) -> None:
        for w, week in enumerate(weeks):
            monday = first + timedelta(weeks=w)
            done = week.tasks - week.pending if week.completed is None else week.completed
            for i in range(week.tasks):
                key = f"{name}-w{w}-t{i}"
                start = monday + timedelta(hours=i % 100, minutes=i // 100)
                for n in range(week.attempts):
                    self._attempt(name, key, f"{key}-a{n}", start + timedelta(seconds=10 * n), week)
                if i < done:
                    self.signals.append(signal(key, "completed", start + timedelta(hours=1)))
                elif i < week.tasks - week.pending:
                    self.signals.append(signal(key, "failed", start + timedelta(hours=1)))

    def _attempt(self, workflow: str, task: str, attempt: str, start: datetime, w: Week) -> None:
        self.spans.append(
            span(
                attempt,
                f"{attempt}-root",
                start=start,
                op="invoke_workflow",
                correlation_id=attempt,
                task_id=task,
                workflow=workflow,
                team="t",
            )
        )
        self.spans.append(
            span(
                attempt,
                f"{attempt}-chat",
                parent=f"{attempt}-root",
                start=start + timedelta(seconds=1),
                op="chat",
                role="drafter",
                model="m",
                provider="p",
                cost=w.cost,
                tokens=(w.tokens - w.tokens // 4, w.tokens // 4),
            )
        )

    def cost(self, workflow: str, component: str, amount: str, week: int) -> None:
        """A cost entry of ``workflow`` over week ``week`` (0: the first)."""
        start = (T0 + timedelta(weeks=week)).date()
        self.costs.append(
            {
                "component": component,
                "amount_usd": amount,
                "workflow": workflow,
                "period_start": start.isoformat(),
                "period_end": (start + timedelta(weeks=1)).isoformat(),
            }
        )

    def write(self, lake: Path) -> None:
        write_spans(lake, self.spans, "spans")
        if self.signals:
            write_signals(lake, self.signals, "signals")
        if self.costs:
            write_costs(lake, self.costs, "costs")


def usd(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))
