"""The read side's answer to the write side's question: which of these incoming signals count
for no task (yet)? ``POST /api/v1/signals`` turns the answer into warnings.

It asks the task store (``service.store``) as it stands — at the versions its follower last
brought it to — with the very definition behind the ``unmatched_signals`` view
(``schemas/templates/signals_for_no_task.sql``) over the incoming signals, so the warning and
the view agree. It never waits for the store: a warning is advice, and must not hold up the
write. So a signal sent right after its
task's spans may be told its task is "not known (yet)" — true of the lake the read side last
saw, and the signal counts as soon as the store catches up. Before the store is first built
it answers nothing (no warnings).
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.signals import Signal
from schemas.templates import render
from service.db import Database
from service.store import SCHEMA

#: The incoming signals as a relation with the columns signals_for_no_task.sql reads.
_INCOMING = (
    "(SELECT unnest(?::VARCHAR[]) AS signal_id, unnest(?::VARCHAR[]) AS task_id,"
    " unnest(?::VARCHAR[]) AS correlation_id, unnest(?::VARCHAR[]) AS workflow,"
    " unnest(?::VARCHAR[]) AS outcome, NULL::TIMESTAMPTZ AS occurred_at,"
    " NULL::DECIMAL(38, 12) AS rework_cost_usd)"
)
#: A lookup is advice for the sender: it never holds a query slot long.
LOOKUP_QUERY_TIMEOUT = 1.0


class StoreSignalLookup:
    """``ingest.receive.write_api.SignalLookup`` over the service's ``Database``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def unmatched(self, signals: Sequence[Signal]) -> dict[str, tuple[str, str | None]]:
        store = self.db.store
        if store is None or not store.built:
            return {}
        # only the rows the signals name: IN filters skip every other segment of the store
        attempts = (
            f"(SELECT attempt_id, task_key FROM {SCHEMA}.attempts"
            " WHERE attempt_id IN (SELECT unnest(?::VARCHAR[])))"
        )
        tasks = (
            f"(SELECT task_key, workflow FROM {SCHEMA}.tasks"
            " WHERE task_key IN (SELECT unnest(?::VARCHAR[]))"
            f" OR task_key IN (SELECT task_key FROM {SCHEMA}.attempts"
            " WHERE attempt_id IN (SELECT unnest(?::VARCHAR[]))))"
        )
        found = render(
            "signals_for_no_task", {"signals": _INCOMING, "attempts": attempts, "tasks": tasks}
        )
        sql = f"SELECT signal_id, reason, task_workflow FROM ({found})"
        task_ids = [s.task_id for s in signals if s.task_id is not None]
        attempt_ids = [s.correlation_id for s in signals if s.correlation_id is not None]
        params = [
            [s.signal_id for s in signals],
            [s.task_id for s in signals],
            [s.correlation_id for s in signals],
            [s.workflow for s in signals],
            [s.outcome for s in signals],
            attempt_ids,
            task_ids,
            attempt_ids,
        ]
        rows = self.db.rows(sql, params, timeout=LOOKUP_QUERY_TIMEOUT)
        return {r["signal_id"]: (r["reason"], r["task_workflow"]) for r in rows}
