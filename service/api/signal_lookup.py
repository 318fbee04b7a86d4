"""The read side's answer to the write side's question: which of these incoming signals count
for no task (yet)? ``POST /api/v1/signals`` turns the answer into warnings.

It asks the task store (``service.store``) — brought up to date incrementally when it has
been built, never built from here — with the very definition behind the ``unmatched_signals``
view (``schemas/unmatched_signals.sql``) over the incoming signals, so the warning and the
view always agree. Before the store is first built it answers nothing (no warnings).
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.signals import Signal
from schemas.views import unmatched_signals
from service.db import Database
from service.store import SCHEMA

#: The incoming signals as a relation with the columns unmatched_signals.sql reads.
_INCOMING = (
    "(SELECT unnest(?::VARCHAR[]) AS signal_id, unnest(?::VARCHAR[]) AS task_id,"
    " unnest(?::VARCHAR[]) AS correlation_id, unnest(?::VARCHAR[]) AS workflow,"
    " unnest(?::VARCHAR[]) AS outcome, NULL::TIMESTAMPTZ AS occurred_at,"
    " NULL::DECIMAL(38, 12) AS rework_cost_usd)"
)
#: A lookup is advice for the sender: it never holds a query slot long.
LOOKUP_QUERY_TIMEOUT = 2.0


class StoreSignalLookup:
    """``ingest.write_api.SignalLookup`` over the service's ``Database``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def unmatched(self, signals: Sequence[Signal]) -> dict[str, tuple[str, str | None]]:
        store = self.db.store
        if store is None or not store.built:
            return {}
        store.refresh()  # incremental: a few ms when nothing changed
        sql = (
            "SELECT signal_id, reason, task_workflow FROM ("
            + unmatched_signals(_INCOMING, f"{SCHEMA}.attempts", f"{SCHEMA}.tasks")
            + ")"
        )
        params = [
            [s.signal_id for s in signals],
            [s.task_id for s in signals],
            [s.correlation_id for s in signals],
            [s.workflow for s in signals],
            [s.outcome for s in signals],
        ]
        rows = self.db.rows(sql, params, timeout=LOOKUP_QUERY_TIMEOUT)
        return {r["signal_id"]: (r["reason"], r["task_workflow"]) for r in rows}
