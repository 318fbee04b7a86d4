"""Signals and cost entries through the write-ahead log, like spans.

The receiving side validates the items (``schemas.signals``, ``schemas.costs``) and appends the
finished rows — ids derived, ``received_at`` stamped — as one WAL record whose payload is an
Arrow IPC stream in the table's schema. The converter's handler only reads them back: replaying
a record after a crash yields exactly the rows that were acknowledged, byte for byte, and the
same flush / publish / compaction path as spans stores them under ``lake/signals/`` and
``lake/costs/``.

Arrow IPC rather than JSON lines: decimals, nanosecond times and the attribute map travel
exactly and need no second parse. A record written by an older schema is widened by the
converter (``ingest.lake.parquet.conform``).
"""

from __future__ import annotations

import pyarrow as pa

from ingest.wal.log import KIND_COSTS, KIND_SIGNALS
from schemas.costs import COST_SCHEMA
from schemas.lake import COSTS, SIGNALS
from schemas.settings import Settings
from schemas.signals import SIGNAL_SCHEMA

#: WAL kind -> (table, its Arrow schema, the time column that picks the partition).
ROW_KINDS: dict[int, tuple[str, pa.Schema, str]] = {
    KIND_SIGNALS: (SIGNALS, SIGNAL_SCHEMA, "occurred_at"),
    KIND_COSTS: (COSTS, COST_SCHEMA, "period_start"),
}


def encode_rows(rows: pa.Table) -> bytes:
    """``rows`` as one Arrow IPC stream (the WAL payload)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, rows.schema) as writer:
        writer.write_table(rows)
    return bytes(sink.getvalue().to_pybytes())


def decode_rows(payload: bytes | memoryview) -> pa.Table:
    with pa.ipc.open_stream(pa.py_buffer(payload)) as reader:
        table: pa.Table = reader.read_all()
    return table


class RowsHandler:
    """A converter handler for a kind whose records already hold the rows to store."""

    def __init__(self, kind: int) -> None:
        self.table, self.schema, self.time_column = ROW_KINDS[kind]

    def rows(self, payload: memoryview, time_ms: int) -> pa.Table:
        # the payload is only read during this call: copy it out of the WAL buffer
        return decode_rows(bytes(payload))


def signal_handler(settings: Settings) -> RowsHandler:
    return RowsHandler(KIND_SIGNALS)


def cost_handler(settings: Settings) -> RowsHandler:
    return RowsHandler(KIND_COSTS)
