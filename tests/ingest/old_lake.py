"""A lake in the old layout, built by hand as tasklake wrote it before Delta tables: partition
symlinks into generation directories of Arrow-schema Parquet files (nanosecond times, uint32
counts), a superseded generation, roll-up companions, a seed partition, an older-schema file,
the WAL with its locks and checkpoints, ``_tmp``, ``_store`` and ``views.sql``.

``OldLake.expected`` holds what the old data implies, for comparing with the migrated views.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ingest.wal.log import KIND_SIGNALS, KIND_TRACES, WalWriter
from ingest.wal.records import encode_rows
from schemas.costs import COST_SCHEMA, costs_table, parse_costs
from schemas.signals import SIGNAL_SCHEMA, parse_signals, signals_table
from schemas.spans import SPAN_SCHEMA
from tests.ingest.crash_driver import SPAN_ID_BASE, numbered_request
from tests.lakes import at, ns, span, span_table

WRITER = "w1"
LANE = f"{WRITER}-0"
#: Columns an older span schema lacked (a file written before they existed).
NEWER_COLUMNS = ("scope_schema_url", "reasoning_tokens", "ingested_at")


@dataclass
class Expected:
    """Figures the old data implies."""

    span_starts: dict[str, int] = field(default_factory=dict)  # span id -> start ns
    spend_by_attempt: dict[str, Decimal] = field(default_factory=dict)
    signal_ids: set[str] = field(default_factory=set)
    cost_total: Decimal = Decimal(0)

    @property
    def span_ids(self) -> Counter[str]:
        """Each span once."""
        return Counter(self.span_starts.keys())

    @property
    def spend(self) -> Decimal:
        return sum(self.spend_by_attempt.values(), Decimal(0))


class OldLake:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.expected = Expected()
        self._ulid = 0

    # ------------------------------------------------------------------ files

    def name(self) -> str:
        self._ulid += 1
        return f"{WRITER}-01jold{self._ulid:020d}.parquet"

    def generation(self, table: str, day: str, number: int) -> Path:
        """``_gen/<table>/date=D/g00000N``, made current (the partition symlink points at it)."""
        gen = self.root / "_gen" / table / f"date={day}" / f"g{number:06d}"
        gen.mkdir(parents=True, exist_ok=True)
        link = self.root / table / f"date={day}"
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()
        link.symlink_to(os.path.relpath(gen, link.parent))
        return gen

    def write(self, gen: Path, rows: pa.Table, name: str | None = None) -> Path:
        path = gen / (name or self.name())
        pq.write_table(rows, path)
        return path

    def spans(self, gen: Path, rows: list[dict[str, Any]], *, drop: tuple[str, ...] = ()) -> Path:
        """Span rows as an old flush file; ``drop``: columns its (older) schema lacked."""
        table = span_table(rows)
        if drop:
            table = table.drop_columns(list(drop))
        path = self.write(gen, table)
        for row in rows:
            self.expected.span_starts[row["span_id"]] = row["start_time"]
            if row.get("cost_usd") is not None:
                key = row["correlation_id"]
                self.expected.spend_by_attempt[key] = (
                    self.expected.spend_by_attempt.get(key, Decimal(0)) + row["cost_usd"]
                )
        return path

    def signals(self, gen: Path, items: list[dict[str, Any]]) -> Path:
        parsed = parse_signals(json.dumps(items).encode())
        assert not parsed.rejected
        self.expected.signal_ids |= {s.signal_id for s in parsed.items}
        return self.write(gen, signals_table(parsed.items, received_at_ms=1_767_600_000_000))

    def costs(self, gen: Path, items: list[dict[str, Any]]) -> Path:
        parsed = parse_costs(json.dumps(items).encode())
        assert not parsed.rejected
        self.expected.cost_total += sum((c.amount_usd for c in parsed.items), Decimal(0))
        return self.write(gen, costs_table(parsed.items, received_at_ms=1_767_600_000_000))

    # ------------------------------------------------------------------ the whole lake

    def build(self) -> OldLake:
        """Two days of spans (one with a superseded generation and roll-up companions, one
        file of an older schema), signals, a cost entry, seeds, a drained WAL, leftovers."""
        day1, day2 = "2026-01-05", "2026-01-06"
        stale = self.generation("spans", day1, 1)  # superseded: compaction replaced it
        pq.write_table(span_table([span("t1", "stale", op="chat", cost="9")]), stale / "x.parquet")
        gen = self.generation("spans", day1, 2)
        first = self.spans(
            gen,
            [
                span("t1", "agent", correlation_id="c1", task_id="T1", flags=257),
                span(
                    "t1",
                    "llm-1",
                    parent="agent",
                    op="chat",
                    model="gpt-4o",
                    tokens=(100, 10),
                    cost="0.25",
                    correlation_id="c1",
                    start_time=ns(at(0, minutes=1)) + 123,  # below a microsecond
                    dropped_attributes_count=7,
                ),
            ],
        )
        companion = gen / "_rollup_attempts"
        companion.mkdir()
        pq.write_table(pa.table({"attempt": ["c1"], "spend": [1.0]}), companion / first.name)
        older = model_call("t2", "llm-2", "1.5", "c2", "T2", start=at(2))
        self.spans(gen, [older], drop=NEWER_COLUMNS)
        gen2 = self.generation("spans", day2, 1)
        self.spans(gen2, [model_call("t3", "llm-3", "0.125", "c3", "T1", start=at(days=1))])
        self.signals(
            self.generation("signals", day2, 1),
            [
                {"task_id": "T1", "outcome": "completed", "occurred_at": "2026-01-06T12:00:00Z"},
                {"task_id": "T2", "outcome": "failed", "occurred_at": "2026-01-06T13:00:00Z"},
            ],
        )
        self.costs(
            self.generation("costs", "2026-01-01", 1),
            [
                {
                    "component": "labor",
                    "amount_usd": "12.5",
                    "period_start": "2026-01-01T00:00:00Z",
                    "period_end": "2026-02-01T00:00:00Z",
                }
            ],
        )
        self.seeds()
        self.drained_wal()
        (self.root / "_tmp").mkdir()
        (self.root / "_tmp" / "spans-seed-1.parquet").write_bytes(b"partial")
        (self.root / "_store").mkdir()
        (self.root / "_store" / f"{WRITER}.duckdb").write_bytes(b"old store")
        (self.root / "views.sql").write_text("-- old views\n")
        return self

    def seeds(self) -> None:
        for table, schema in (("spans", SPAN_SCHEMA), ("signals", SIGNAL_SCHEMA)):
            seed = self.root / table / "date=1970-01-01"
            seed.mkdir(parents=True, exist_ok=True)
            pq.write_table(schema.empty_table(), seed / "_schema-v1.parquet")
        companion = self.root / "spans" / "date=1970-01-01" / "_rollup_attempts"
        companion.mkdir()
        pq.write_table(
            pa.table({"attempt": pa.array([], pa.string())}), companion / "_schema.parquet"
        )
        seed = self.root / "costs" / "date=1970-01-01"
        seed.mkdir(parents=True)
        pq.write_table(COST_SCHEMA.empty_table(), seed / "_schema-v1.parquet")

    # ------------------------------------------------------------------ the WAL

    def wal_dir(self, lane: str = LANE) -> Path:
        return self.root / "_wal" / lane

    def drained_wal(self) -> None:
        """A lane whose every record is converted (checkpoint at the end), with its locks."""
        end = self.append_spans(0, 3)
        self.checkpoint(end)
        for lock in ("writer.lock", "convert.lock"):
            (self.wal_dir() / lock).touch()

    def append_spans(self, first: int, count: int) -> int:
        """A trace record of spans ``first``.. (``numbered_request``); the new WAL end."""
        writer = WalWriter(self.wal_dir(), segment_bytes=1 << 20)
        try:
            payload = numbered_request(first, count).SerializeToString()
            return writer.append(KIND_TRACES, payload, 1_767_600_000_000).result(timeout=10)
        finally:
            writer.close()

    def append_signals(self, items: list[dict[str, Any]]) -> int:
        parsed = parse_signals(json.dumps(items).encode())
        writer = WalWriter(self.wal_dir(), segment_bytes=1 << 20)
        try:
            payload = encode_rows(signals_table(parsed.items, received_at_ms=1_767_600_000_000))
            return writer.append(KIND_SIGNALS, payload, 1_767_600_000_000).result(timeout=10)
        finally:
            writer.close()

    def checkpoint(self, position: int) -> None:
        (self.wal_dir() / "checkpoint.json").write_text(json.dumps({"position": position}))

    def pending(self, wal_end: int, files: list[tuple[str, str, str]]) -> None:
        """An unfinished flush: ``files`` ((table, partition, name)) up to ``wal_end``."""
        doc = {
            "wal_start": 0,
            "wal_end": wal_end,
            "files": [{"table": t, "partition": p, "name": n} for t, p, n in files],
        }
        (self.wal_dir() / "pending.json").write_text(json.dumps(doc))


def model_call(
    trace: str, name: str, cost: str, attempt: str, task: str, *, start: datetime
) -> dict[str, Any]:
    """A priced chat span of ``attempt`` (its correlation id) of ``task``."""
    return span(
        trace,
        name,
        op="chat",
        model="gpt-4o",
        tokens=(5, 5),
        cost=cost,
        correlation_id=attempt,
        task_id=task,
        start=start,
    )


def wal_span_id(n: int) -> str:
    """The span id of ``numbered_request``'s span ``n``, as the lake stores it."""
    return (SPAN_ID_BASE + n).to_bytes(8, "big").hex()
