"""Small lakes written directly, for the economics tests: span rows from a few keywords, real
Delta commits of real Parquet files (``ingest.lake.append``), signals and cost entries in
their tables, and a DuckDB connection over the lake's views pinned to its newest versions."""

from __future__ import annotations

import hashlib
import itertools
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ingest.lake.append import append_rows
from schemas.costs import costs_table, parse_costs
from schemas.delta import Tables
from schemas.jsonitems import loads
from schemas.lake import COSTS, SIGNALS, SPANS
from schemas.settings import Settings
from schemas.signals import parse_signals, signals_table
from schemas.spans import SCHEMA_VERSION, SPAN_SCHEMA
from schemas.views import load_views

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
_counter = itertools.count()
_MODEL_CALLS = {"chat", "text_completion", "embeddings", "generate_content"}


def hex_id(text: str, nbytes: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[: nbytes * 2]


def trace(name: str) -> str:
    return hex_id("trace:" + name, 16)


def sid(name: str) -> str:
    return hex_id("span:" + name, 8)


def at(hours: float = 0.0, *, minutes: float = 0.0, days: float = 0.0) -> datetime:
    return T0 + timedelta(hours=hours, minutes=minutes, days=days)


def ns(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1)) * 1000


def span(
    trace_name: str,
    name: str,
    *,
    parent: str | None = None,
    start: datetime = T0,
    ms: float = 1000.0,
    op: str | None = None,
    cost: str | Decimal | None = None,
    model: str | None = None,
    provider: str | None = None,
    tokens: tuple[int, int] | None = None,
    error: bool = False,
    **columns: Any,
) -> dict[str, Any]:
    """One span row: ``trace_name``/``name``/``parent`` become hex ids; ``op`` the operation
    (model calls when chat/embeddings...); ``cost`` a USD string; other span columns as is
    (correlation_id, task_id, workflow, team, workflow_version, role, resource_*)."""
    is_model_call = op in _MODEL_CALLS
    row: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "trace_id": trace(trace_name),
        "span_id": sid(name),
        "parent_span_id": sid(parent) if parent else None,
        "name": name,
        "kind": 1,
        "start_time": ns(start),
        "duration_ns": int(ms * 1_000_000),
        "status_code": 2 if error else 0,
        "operation": op,
        "is_model_call": is_model_call,
        "provider": provider if is_model_call else None,
        "request_model": model,
        "response_model": model,
        "input_tokens": tokens[0] if tokens and is_model_call else None,
        "output_tokens": tokens[1] if tokens and is_model_call else None,
        "total_tokens": sum(tokens) if tokens and is_model_call else None,
        "cost_usd": Decimal(cost) if cost is not None else None,
        "cost_source": ("override" if cost is not None else "unpriced") if is_model_call else None,
        "source_keys": [],
        "attributes": [("test.seq", str(next(_counter)))],
        "ingested_at": ns(start) // 1_000_000,
    }
    row.update(columns)
    return row


def span_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    cols = {name: [r.get(name) for r in rows] for name in SPAN_SCHEMA.names}
    return pa.Table.from_pydict(cols, schema=SPAN_SCHEMA)


def tables(lake: Path | str) -> Tables:
    """The lake's tables, with the seed files under the default store directory (for an
    object-store lake: a local directory of this machine)."""
    if str(lake).startswith("s3://"):
        seeds = Path(tempfile.gettempdir()) / "tasklake-test-seeds"
        return Tables(str(lake), seed_dir=seeds)
    return Tables(lake, seed_dir=Path(lake) / "_store" / "seeds")


def load(
    con: duckdb.DuckDBPyConnection, lake: Path | str, settings: Settings | None = None
) -> None:
    """Load the views on ``con`` and pin them to the lake's newest versions."""
    t = tables(lake)
    t.ensure()
    con.execute("SET TimeZone = 'UTC'")
    # tiny lakes: one thread plans and runs these queries 2-3x sooner than two
    con.execute("SET threads = 1")
    load_views(con, t, settings)
    t.pin(con)


def connect(lake: Path | str, settings: Settings | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the views loaded, pinned to the tables' newest versions."""
    con = duckdb.connect()
    load(con, lake, settings)
    return con


def write_spans(lake: Path, rows: Sequence[Mapping[str, Any]], file: str) -> list[str]:
    """Span rows committed to the lake in one commit (a file per day); returns their URIs."""
    files = append_rows(tables(lake), SPANS, span_table(rows), prefix=file)
    return [f"{Path(lake)}/{SPANS}/{f.path}" for f in files]


def write_signals(
    lake: Path, items: Sequence[Mapping[str, Any]], file: str, *, now: datetime | None = None
) -> None:
    """Signals as the API would store them (JSON items through ``parse_signals``), received
    ``now`` (default: the clock; a later one lets a lake hold signals from the future, as a
    lake written before max_clock_skew existed may)."""
    import json

    body = json.dumps([_jsonable(i) for i in items]).encode()
    parsed = parse_signals(body, now=None if now is None else ns(now))
    assert not parsed.rejected, parsed.rejected
    received = ns(T0 + timedelta(days=30)) // 1_000_000 + next(_counter)
    append_rows(
        tables(lake), SIGNALS, signals_table(parsed.items, received_at_ms=received), prefix=file
    )


def write_costs(lake: Path, items: Sequence[Mapping[str, Any]], file: str) -> None:
    import json

    parsed = parse_costs(json.dumps([_jsonable(i) for i in items]).encode())
    assert not parsed.rejected, parsed.rejected
    append_rows(tables(lake), COSTS, costs_table(parsed.items, received_at_ms=0), prefix=file)


def _jsonable(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in item.items()}


def signal(target: str, outcome: str, when: datetime, **extra: Any) -> dict[str, Any]:
    """A signal about task ``target`` (or attempt, with ``by='correlation_id'``)."""
    key = extra.pop("by", "task_id")
    return {key: target, "outcome": outcome, "occurred_at": when, **extra}


def as_json(text: str) -> Any:
    return loads(text)
