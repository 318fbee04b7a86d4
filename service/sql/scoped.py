"""The public views as a team-scoped caller sees them: only its teams' rows, as Arrow tables.

Scoping happens below the SQL: the caller's query is never rewritten. It runs in a sandbox
(``service.sql.sandbox``) that holds nothing but these tables, so whatever it joins, nests
or recreates, there is no other team's row to reach. Each view is computed by the same
definitions as the view itself (the templates of ``schemas/``), from the service's task store
at the versions it reflects — so its rows equal the rows of the view over the whole lake that
belong to the teams — or, for the views that are a function of other views (``outcomes``,
``cost_per_task`` and its macro ``cost_per_task_by``, ``workflow_rules``), defined in the
sandbox over the scoped tables by the view files themselves.

Whose row is it:

- a span, a model call, an attempt and its ``span_breakdown`` rows: the attempt's team (every
  span has an attempt: its correlation id, else its trace id). Spans are read from the files
  holding the traces of the teams' attempts, resolved whole (``trace_spans.sql``) and kept
  when their attempt is the teams': a trace shared with another team's attempt shows only the
  caller's spans;
- a task (``tasks``, ``outcomes``, ``task_breakdown``, ``task_allocations``,
  ``cost_per_task``): the task's team (its first attempt's); allocations of shared cost
  entries are computed over every task, so a team sees its true share;
- a signal and an unmatched signal: the team of the task it counts for (one naming no known
  task is no team's);
- a cost entry (``costs``, ``cost_allocations``): the team it names (one for every team is no
  team's).

A row of no team is seen by unscoped tokens only. ``VIEWS`` must cover every public view
(a test holds them equal), so a view added to ``schemas/views`` without a rule here is absent
from scoped sandboxes, never unfiltered.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from schemas.lake import SPANS
from schemas.templates import render
from schemas.views import render_derived
from service.db import Database, QueryTimeout, StoreNotReady
from service.store import SCHEMA, Store, span_read

S = SCHEMA
#: The caller's teams, as every query below names them.
TEAMS = "(SELECT unnest($teams::VARCHAR[]))"
TEAM_ATTEMPTS = f"(SELECT attempt_id FROM {S}.attempts WHERE team IN {TEAMS})"
TEAM_TASKS = f"(SELECT task_key FROM {S}.tasks WHERE team IN {TEAMS})"
#: The task a signal (or unmatched signal) ``x`` counts for, and that task's team.
_SIGNAL_TASK = (
    f" LEFT JOIN {S}.attempts a ON x.task_id IS NULL AND a.attempt_id = x.correlation_id"
    f" JOIN {S}.tasks t ON t.task_key = coalesce(x.task_id, a.task_key)"
    f" WHERE t.team IN {TEAMS}"
)


@dataclass(frozen=True)
class ScopedView:
    """How one view is made: ``rows`` (SQL over the store, or a function building it from
    the store) fills a table; else the view file is run in the sandbox over ``needs``."""

    rows: str | Callable[[Database, Store, list[str]], tuple[str, dict[str, Any]]] | None = None
    needs: tuple[str, ...] = ()


def _task_rows() -> str:
    facts = f"(SELECT * FROM store_task_facts WHERE team IN {TEAMS})"
    return f"SELECT * FROM ({render('task_outcomes', {'task_facts': facts})})"


def _allocations() -> str:
    body = render(
        "allocation", {"tasks": "store_task_facts", "costs": "costs", "output": "task_allocations"}
    )
    return f"SELECT * FROM ({body}) WHERE task_key IN {TEAM_TASKS}"


def _team_spans(db: Database, store: Store, teams: list[str]) -> str:
    """The resolved spans (trace_spans.sql rows) of every trace of the teams' attempts, read
    from the files the store says hold them."""
    uris = [
        r["uri"]
        for r in db.rows(
            f"SELECT DISTINCT f.uri FROM {S}.attempt_parts p"
            f" JOIN {S}.trace_files t USING (trace_id) JOIN {S}.files f USING (file_no)"
            f" WHERE p.attempt_id IN {TEAM_ATTEMPTS}",
            {"teams": teams},
            snapshot=store.snapshot,
        )
    ]
    where = (
        f"WHERE trace_id IN (SELECT trace_id FROM {S}.attempt_parts"
        f" WHERE attempt_id IN {TEAM_ATTEMPTS})"
    )
    spans = span_read(uris, store.tables.seed(SPANS), where)
    return "(" + render("trace_spans", {"spans_table": spans}) + ")"


def _spans(db: Database, store: Store, teams: list[str]) -> tuple[str, dict[str, Any]]:
    columns = ", ".join(f'"{c}"' for c in db.columns("spans"))
    details = render("span_details", {"span_rows": _team_spans(db, store, teams)})
    sql = f"SELECT {columns} FROM ({details}) WHERE attempt_id IN {TEAM_ATTEMPTS}"
    return sql, {"teams": teams}


def _llm_calls(db: Database, store: Store, teams: list[str]) -> tuple[str, dict[str, Any]]:
    calls = render("llm_call_rows", {"trace_spans": _team_spans(db, store, teams)})
    return f"SELECT * FROM ({calls}) WHERE attempt_id IN {TEAM_ATTEMPTS}", {"teams": teams}


#: Every public view, for a team-scoped caller (see module doc).
VIEWS: Mapping[str, ScopedView] = {
    "spans": ScopedView(_spans),
    "llm_calls": ScopedView(_llm_calls),
    "workflow_rules": ScopedView(),
    "attempts": ScopedView(f"SELECT * FROM {S}.attempts WHERE team IN {TEAMS}"),
    "signals": ScopedView(f"SELECT x.* FROM {S}.signals x" + _SIGNAL_TASK),
    "tasks": ScopedView(_task_rows()),
    "outcomes": ScopedView(needs=("tasks",)),
    "span_breakdown": ScopedView(
        f"SELECT a.task_key, b.* FROM {S}.breakdown_parts b JOIN {S}.attempts a"
        f" USING (attempt_id) WHERE a.team IN {TEAMS}"
    ),
    "task_breakdown": ScopedView(f"SELECT * FROM {S}.breakdown WHERE task_key IN {TEAM_TASKS}"),
    "costs": ScopedView(f"SELECT * FROM costs WHERE team IN {TEAMS}"),
    "task_allocations": ScopedView(_allocations()),
    "cost_allocations": ScopedView(f"SELECT * FROM store_cost_allocations WHERE team IN {TEAMS}"),
    "unmatched_signals": ScopedView("SELECT x.* FROM store_unmatched_signals x" + _SIGNAL_TASK),
    "cost_per_task": ScopedView(needs=("tasks", "task_breakdown", "task_allocations")),
}


def closure(names: frozenset[str]) -> list[str]:
    """The views to put in a sandbox for a query naming ``names``: those it names and what
    they are computed from, each after its inputs."""
    out: list[str] = []

    def add(name: str) -> None:
        if name in out:
            return
        for need in VIEWS[name].needs:
            add(need)
        out.append(name)

    for name in sorted(n for n in names if n in VIEWS):
        add(name)
    if "cost_per_task_by" in names:  # the macro, a table function: cost_per_task's inputs
        add("cost_per_task")
    return out


class ViewCache:
    """Views made for some teams, kept ``ttl`` seconds per store version within ``max_bytes``
    (a dashboard asking every few seconds does not compute them again). Within the ttl an
    answer may lag the clock by as much (a task becoming completed as its window ends)."""

    def __init__(self, max_bytes: int, ttl: float = 5.0) -> None:
        self.max_bytes, self.ttl = max_bytes, ttl
        self._held: OrderedDict[Hashable, tuple[float, pa.Table]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> pa.Table | None:
        with self._lock:
            hit = self._held.get(key)
            if hit is None or time.monotonic() - hit[0] > self.ttl:
                self._held.pop(key, None)
                return None
            self._held.move_to_end(key)
            return hit[1]

    def put(self, key: Hashable, table: pa.Table) -> None:
        with self._lock:
            self._held[key] = (time.monotonic(), table)
            while sum(t.nbytes for _, t in self._held.values()) > self.max_bytes and self._held:
                self._held.popitem(last=False)


def materialize(
    db: Database,
    views: list[str],
    teams: list[str],
    deadline: float,
    cache: ViewCache | None = None,
) -> tuple[dict[str, pa.Table], list[str]]:
    """The Arrow tables of the stored ``views`` for ``teams``, and the view files to define in
    the sandbox over them (in order); every query done by ``deadline`` (``time.monotonic``)."""
    store = db.store_for()
    if store is None or store.snapshot is None:
        raise StoreNotReady("the task store is not built yet: retry later")
    version = tuple(sorted(store.snapshot.versions.items()))
    tables: dict[str, pa.Table] = {}
    derived: list[str] = []
    for name in views:
        rows = VIEWS[name].rows
        if rows is None:
            derived.append(render_derived(name, db.settings))
            continue
        key = (version, tuple(teams), name)
        held = cache.get(key) if cache is not None else None
        if held is not None:
            tables[name] = held
            continue
        sql, params = rows(db, store, teams) if callable(rows) else (rows, {"teams": teams})
        left = deadline - time.monotonic()
        if left <= 0:
            raise QueryTimeout(
                f"the query took longer than {db.settings.query_timeout:g} s (query_timeout)"
                " gathering its views: narrow it, or retry when the server is less busy"
            )
        tables[name] = db.arrow(sql, params, snapshot=store.snapshot, timeout=left)
        if cache is not None:
            cache.put(key, tables[name])
    return tables, derived
