"""``GET /api/v1/tasks/{id}``: one task or attempt, the drill-down behind every number.

The answer holds the task (with its outcome), its attempts, its signals and the span tree with
each span's cost and role. Everything is selected from the lookup macros of
``schemas/lookup.sql`` and the ``*_in`` macros behind the views, restricted to the traces the
id touches, so a drill-down never aggregates the whole lake.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import Response

from schemas.auth import ANONYMOUS, Principal
from schemas.delta import Snapshot
from schemas.templates import render
from service.access import ReadPrincipal
from service.api.openapi import CSV, errors
from service.api.params import FORMATS, AsOf, Format, check_known, moment, one_of
from service.api.render import csv_response, json_response
from service.audit import note
from service.db import Database, get_db
from service.errors import ApiError
from service.store import SCHEMA, span_read

router = APIRouter()


class _AnyId(Convertor[str]):
    """The rest of the path, whatever it holds: ``/``, and CR/LF too (Starlette's ``path``
    stops at a newline)."""

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("any_id", _AnyId())

SPAN_COLUMNS: tuple[str, ...] = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "attempt_id",
    "name",
    "kind_name",
    "start_time",
    "end_time",
    "duration_ms",
    "status",
    "status_message",
    "operation",
    "resolved_role",
    "role_source",
    "provider",
    "request_model",
    "response_model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost_usd",
    "billed",
    "cost_source",
    "price_ref",
    "tool_name",
    "error_type",
    "service_name",
    "all_attributes",
)


class _Views:
    """Finds a task through the views' lookup macros (exact, no store needed)."""

    snapshot: Snapshot | None = None

    def __init__(self, db: Database, as_of: datetime | None) -> None:
        self.db, self.as_of = db, as_of
        self._traces: dict[str, list[str]] = {}

    def traces(self, key: str) -> list[str]:
        if key not in self._traces:
            found: list[str] | None = self.db.value("SELECT lookup_traces(?)", [key])
            self._traces[key] = found or []
        return self._traces[key]

    def attempts(self, key: str) -> list[dict[str, Any]]:
        traces = self.traces(key)
        if not traces:
            return []
        return self.db.rows(
            "SELECT * FROM attempts_in(?::VARCHAR[]) WHERE task_key = ? OR attempt_id = ?"
            " ORDER BY started_at, attempt_id",
            [traces, key, key],
        )

    def task(self, key: str, attempt_ids: list[str]) -> list[dict[str, Any]]:
        return self.db.rows(
            "SELECT * FROM tasks_in(?::VARCHAR[], ?::VARCHAR[]) WHERE task_key = ?",
            [self.traces(key), [key, *attempt_ids], key],
            as_of=self.as_of,
        )

    def signals(self, key: str, attempt_ids: list[str]) -> list[dict[str, Any]]:
        return self.db.rows(
            "SELECT * EXCLUDE (attribute_types) FROM signals_in(?::VARCHAR[])"
            " WHERE task_id = ? OR (task_id IS NULL"
            " AND list_contains(?::VARCHAR[], correlation_id)) ORDER BY occurred_at, signal_id",
            [[key, *attempt_ids], key, attempt_ids],
        )

    def spans(self, key: str, attempt_ids: list[str]) -> list[dict[str, Any]]:
        return self.db.rows(
            f"SELECT {', '.join(SPAN_COLUMNS)} FROM span_tree(?::VARCHAR[])"
            " WHERE list_contains(?::VARCHAR[], attempt_id)",
            [self.traces(key), attempt_ids],
        )


class _Store(_Views):
    """Finds a task in the service's materialized store: point lookups, then the spans of its
    traces read from the files the store says hold them, at the store's versions."""

    def __init__(self, db: Database, as_of: datetime | None, snapshot: Snapshot) -> None:
        super().__init__(db, as_of)
        self.snapshot = snapshot

    def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        return self.db.rows(sql, params, as_of=self.as_of, snapshot=self.snapshot)

    def attempts(self, key: str) -> list[dict[str, Any]]:
        # Two equality lookups, not one OR: each prunes to the segments that hold the key.
        order = " ORDER BY started_at, attempt_id"
        rows = self._rows(f"SELECT * FROM {SCHEMA}.attempts WHERE task_key = ?" + order, [key])
        if rows:
            return rows
        return self._rows(f"SELECT * FROM {SCHEMA}.attempts WHERE attempt_id = ?" + order, [key])

    def task(self, key: str, attempt_ids: list[str]) -> list[dict[str, Any]]:
        facts = "(SELECT * FROM store_task_facts WHERE task_key = ?)"
        return self._rows(
            f"SELECT * FROM ({render('task_outcomes', {'task_facts': facts})})", [key]
        )

    def signals(self, key: str, attempt_ids: list[str]) -> list[dict[str, Any]]:
        # the task's own signals, then its attempts': two lookups a filter can prune
        return self._rows(
            f"SELECT * EXCLUDE (attribute_types) FROM (SELECT * FROM {SCHEMA}.signals"
            f" WHERE task_id = ? UNION ALL SELECT * FROM {SCHEMA}.signals WHERE task_id IS NULL"
            " AND correlation_id IN (SELECT unnest(?::VARCHAR[])))"
            " ORDER BY occurred_at, signal_id",
            [key, [key, *attempt_ids]],
        )

    def spans(self, key: str, attempt_ids: list[str]) -> list[dict[str, Any]]:
        where = self._rows(
            f"SELECT DISTINCT p.trace_id, f.uri FROM {SCHEMA}.attempt_parts p"
            f" JOIN {SCHEMA}.trace_files t USING (trace_id) JOIN {SCHEMA}.files f USING (file_no)"
            " WHERE p.attempt_id IN (SELECT unnest(?::VARCHAR[]))",
            [attempt_ids],
        )
        if not where:
            return []
        traces = sorted({w["trace_id"] for w in where})
        uris = sorted({w["uri"] for w in where})
        listed = ", ".join("'" + t.replace("'", "''") + "'" for t in traces)
        spans = span_read(uris, None, f"WHERE trace_id IN ({listed})")
        resolved = "(" + render("trace_spans", {"spans_table": spans}) + ")"
        body = render("span_details", {"span_rows": resolved})
        return self._rows(
            f"SELECT {', '.join(SPAN_COLUMNS)} FROM ({body})"
            " WHERE list_contains(?::VARCHAR[], attempt_id) ORDER BY start_time, span_id",
            [attempt_ids],
        )


def task_detail(
    db: Database,
    lookup_id: str,
    *,
    as_of: datetime | None = None,
    principal: Principal = ANONYMOUS,
) -> dict[str, Any]:
    """The drill-down document of a task or attempt id; ``ApiError(404)`` when unknown, or
    not ``principal``'s: a task is its team's (its first attempt's), an attempt and its spans
    its own team's. A team-scoped caller sees only its teams' attempts of a task, and a
    task's row and signals only when the task is its teams'."""
    store = db.store_for(as_of)
    find: _Views = (
        _Store(db, as_of, store.snapshot)
        if store is not None and store.snapshot is not None
        else _Views(db, as_of)
    )
    unknown = ApiError(404, f"no task or attempt with id '{lookup_id}'")
    found = find.attempts(lookup_id)
    if not found:
        raise unknown
    if any(a["task_key"] == lookup_id for a in found):
        kind, task_key = "task", lookup_id
        attempts = [a for a in found if a["task_key"] == lookup_id]
        shown = attempts
    else:
        kind = "attempt"
        shown = [a for a in found if a["attempt_id"] == lookup_id]
        task_key = shown[0]["task_key"]
        attempts = [a for a in find.attempts(task_key) if a["task_key"] == task_key]
    attempt_ids = [a["attempt_id"] for a in attempts]
    task = find.task(task_key, attempt_ids)
    task_team = task[0]["team"] if task else attempts[0]["team"]
    visible = principal.sees(task_team) if kind == "task" else principal.sees(shown[0]["team"])
    if not visible:
        raise unknown  # the same answer as an id nobody knows
    shown = [a for a in shown if principal.sees(a["team"])]
    own_task = principal.sees(task_team)
    signals = find.signals(task_key, attempt_ids) if own_task else []
    spans = find.spans(task_key, [a["attempt_id"] for a in shown])
    for s in spans:
        s["role"] = s.pop("resolved_role")
        s["attributes"] = dict(s.pop("all_attributes") or [])
    for sig in signals:
        sig["attributes"] = dict(sig.get("attributes") or [])
    return {
        "id": lookup_id,
        "kind": kind,
        "currency": "USD",
        "task": task[0] if task and own_task else None,
        "attempts": shown,
        "signals": signals,
        "spans": span_tree(spans),
        "span_rows": spans,
    }


def span_tree(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nest spans (in start order) under their parents; a span whose parent is not shown is a
    root, and so is the first span of a malformed parent cycle."""
    by_id = {s["span_id"]: {**s, "children": []} for s in spans}
    parent_of = {
        sid: s["parent_span_id"] for sid, s in by_id.items() if s["parent_span_id"] in by_id
    }
    kids: dict[str, list[str]] = {}
    for child, parent in parent_of.items():
        kids.setdefault(parent, []).append(child)
    roots = [by_id[s["span_id"]] for s in spans if s["span_id"] not in parent_of]
    placed: set[str] = set()

    def reach(node: dict[str, Any]) -> None:
        stack = [node["span_id"]]
        while stack:
            n = stack.pop()
            if n not in placed:
                placed.add(n)
                stack.extend(kids.get(n, ()))

    for r in roots:
        reach(r)
    for s in spans:  # cycles: nothing above them is a root
        if s["span_id"] not in placed:
            parent_of.pop(s["span_id"], None)
            roots.append(by_id[s["span_id"]])
            reach(by_id[s["span_id"]])
    for s in spans:
        parent = parent_of.get(s["span_id"])
        if parent is not None:
            by_id[parent]["children"].append(by_id[s["span_id"]])
    roots.sort(key=lambda n: (n["start_time"] or 0, n["span_id"]))
    return roots


class TaskAnswer(BaseModel):
    """The drill-down document (JSON); with ``format=csv``, its span rows."""

    model_config = ConfigDict(extra="allow")

    id: str
    kind: str
    currency: str
    task: dict[str, Any] | None
    attempts: list[dict[str, Any]]
    signals: list[dict[str, Any]]
    spans: list[dict[str, Any]]


@router.get(
    "/api/v1/tasks/{task_id:any_id}",
    response_model=None,
    responses={
        200: {"model": TaskAnswer, "content": CSV, "description": "JSON, or CSV span rows"},
        **errors(400, 401, 403, 404, 503),
    },
)
def get_task(
    task_id: Annotated[str, Path(description="A task id or attempt (correlation) id; may hold /")],
    request: Request,
    db: Annotated[Database, Depends(get_db)],
    principal: ReadPrincipal,
    *,
    format: Format = None,
    as_of: AsOf = None,
) -> Response:
    """A task (``task.id``) or attempt (correlation id): attempts, span tree, signals, outcome.
    The id is the rest of the path, so ids holding ``/`` work sent as is or percent-encoded."""
    check_known(request.query_params, ("format", "as_of"))
    fmt = one_of("format", format, FORMATS, "json")
    doc = task_detail(db, task_id, as_of=moment("as_of", as_of), principal=principal)
    rows = doc.pop("span_rows")
    note(request, rows=len(rows))
    if fmt == "csv":
        return csv_response(
            rows,
            [c if c != "resolved_role" else "role" for c in SPAN_COLUMNS if c != "all_attributes"],
            f"task-{task_id}-spans",
        )
    return json_response(doc)
