"""Compaction: merge a partition's small files into large, sorted, well-compressed ones.

Per partition: list the current generation's files, *then* read every lane's pending.json (a
file is renamed in only after its pending.json is durable, so this order never misses one),
and merge the files that are neither pending nor already ``compaction_target_rows`` large.
Inputs are streamed in start-time order through a window of ``row_group_rows`` rows; each
window is sorted by (first start of its trace, trace_id, start_time) and becomes one row group,
so a trace sits together (ids and attributes compress, a trace lookup reads one group) and
timestamps delta-encode. Memory stays near one window whatever the partition size.

The swap (``Storage.replace``) is atomic for readers and refuses if another compactor merged
an input meanwhile; a per-partition compaction lock keeps two compactors from trying.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from ulid import ULID

from ingest.convert import CompanionHook, pending_names
from ingest.parquet import COMPACT_LEVEL, conform, writer_options
from ingest.storage import DataFile, Storage
from schemas.lake import SPANS, TABLES
from schemas.settings import Settings

log = logging.getLogger(__name__)

#: Columns ordering rows within a window, per table: (trace key, time) or just time.
TRACE_COLUMN = {SPANS: "trace_id"}
TIME_COLUMN = {SPANS: "start_time"}


@dataclass
class CompactionStats:
    partitions: int = 0
    input_files: int = 0
    output_files: int = 0
    rows: int = 0
    input_bytes: int = 0
    output_bytes: int = 0
    conflicts: int = 0
    busy: int = 0
    removed: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class _Input:
    name: str
    path: Path
    rows: int
    size: int
    first_time: int


def _inspect(path: Path, time_column: str | None) -> _Input:
    md = pq.ParquetFile(path).metadata
    first = 0
    if time_column is not None and md.num_row_groups:
        idx = md.schema.to_arrow_schema().get_field_index(time_column)
        if idx >= 0:
            mins = []
            for rg in range(md.num_row_groups):
                stats = md.row_group(rg).column(idx).statistics
                if stats is not None and stats.has_min_max:
                    mins.append(int(stats.min_raw))  # physical int64: no ns -> us rounding
            if mins:
                first = min(mins)
    return _Input(path.name, path, md.num_rows, path.stat().st_size, first)


def sort_window(table: pa.Table, trace_column: str | None, time_column: str | None) -> pa.Table:
    """Rows ordered by (first start of their trace, trace, start)."""
    if table.num_rows <= 1 or time_column is None:
        return table
    if trace_column is None:
        return table.sort_by([(time_column, "ascending")])
    keys = pa.table(
        {
            "t": table.column(trace_column),
            "s": table.column(time_column),
            "i": pa.array(range(table.num_rows), pa.int64()),
        }
    )
    first = keys.group_by("t").aggregate([("s", "min")])
    keyed = keys.join(first, "t").sort_by(
        [("s_min", "ascending"), ("t", "ascending"), ("s", "ascending"), ("i", "ascending")]
    )
    return table.take(keyed.column("i"))


def _batches(inputs: Sequence[_Input], schema: pa.Schema, rows: int) -> Iterator[pa.Table]:
    for item in inputs:
        pf = pq.ParquetFile(item.path)
        for batch in pf.iter_batches(batch_size=rows):
            yield conform(pa.Table.from_batches([batch]), schema)


class _OutputFiles:
    """Writes windows to output files of at most ``target_rows`` rows each."""

    def __init__(
        self, storage: Storage, writer_id: str, schema: pa.Schema, target_rows: int
    ) -> None:
        self.storage = storage
        self.writer_id = writer_id
        self.schema = schema
        self.target_rows = target_rows
        self.files: list[tuple[Path, str, int]] = []
        self._writer: pq.ParquetWriter | None = None
        self._path: Path | None = None
        self._rows = 0

    def write(self, window: pa.Table) -> None:
        if self._writer is not None and self._rows + window.num_rows > self.target_rows:
            self.close()
        if self._writer is None:
            self._path = self.storage.tmp_path(f"compact-{self.writer_id}")
            self._writer = pq.ParquetWriter(
                self._path.with_name(self._path.name + ".part"),
                self.schema,
                **writer_options(self.schema, level=COMPACT_LEVEL),
            )
            self._rows = 0
        self._writer.write_table(window, row_group_size=window.num_rows)
        self._rows += window.num_rows

    def close(self) -> None:
        if self._writer is None or self._path is None:
            return
        self._writer.close()
        part = self._path.with_name(self._path.name + ".part")
        with open(part, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(part, self._path)
        name = f"{self.writer_id}-{ULID()}.parquet".lower()
        self.files.append((self._path, name, self._rows))
        self._writer = None
        self._path = None

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            if self._path is not None:
                self._path.with_name(self._path.name + ".part").unlink(missing_ok=True)
        for path, _, _ in self.files:
            path.unlink(missing_ok=True)


def compact_partition(
    storage: Storage,
    settings: Settings,
    table: str,
    partition: str,
    stats: CompactionStats,
    *,
    hook: CompanionHook | None = None,
) -> None:
    if not storage.is_generational(table, partition):
        return  # the seed and hand-made directories stay as they are
    with storage.compaction_lock(table, partition) as mine:
        if not mine:
            stats.busy += 1
            return
        directory = storage.partition_path(table, partition)
        names = storage.list_files(table, partition)  # first the listing ...
        pending = pending_names(storage.root)  # ... then the pendings (see module doc)
        time_column = TIME_COLUMN.get(table)
        inputs: list[_Input] = []
        for name in names:
            if (table, partition, name) in pending:
                continue
            try:
                item = _inspect(directory / name, time_column)
            except FileNotFoundError:
                continue  # withdrawn by a recovery or merged by another compactor
            if item.rows < settings.compaction_target_rows:
                inputs.append(item)
        if len(inputs) < 2:
            return
        inputs.sort(key=lambda i: (i.first_time, i.name))
        schema, version = TABLES[table]
        schema = schema.with_metadata(
            {
                b"tasklake.writer": settings.effective_writer_id.encode(),
                b"tasklake.schema_version": str(version).encode(),
                b"tasklake.compacted_from": str(len(inputs)).encode(),
            }
        )
        out = _OutputFiles(storage, settings.effective_writer_id, schema, _target(settings))
        window_rows = settings.row_group_rows
        try:
            buffered: list[pa.Table] = []
            count = 0
            for part in _batches(inputs, schema, window_rows):
                buffered.append(part)
                count += part.num_rows
                while count >= window_rows:  # exactly row_group_rows per row group
                    rows = pa.concat_tables(buffered)
                    out.write(_window([rows.slice(0, window_rows)], table, schema))
                    rest = rows.slice(window_rows)
                    buffered, count = [rest], rest.num_rows
            if count:
                out.write(_window(buffered, table, schema))
            out.close()
            files = [
                DataFile(path, name, hook(path) if hook else {}) for path, name, _ in out.files
            ]
        except BaseException:
            out.abort()
            raise
        if storage.replace(table, partition, [i.name for i in inputs], files):
            stats.partitions += 1
            stats.input_files += len(inputs)
            stats.output_files += len(files)
            stats.rows += sum(i.rows for i in inputs)
            stats.input_bytes += sum(i.size for i in inputs)
            current = storage.current_generation(table, partition)
            if current is not None:
                stats.output_bytes += sum((current / f.name).stat().st_size for f in files)
        else:
            stats.conflicts += 1
            log.warning("%s/%s: inputs changed during compaction; will retry", table, partition)
            for f in files:
                f.tmp.unlink(missing_ok=True)
                for companion in f.companions.values():
                    companion.unlink(missing_ok=True)


def _target(settings: Settings) -> int:
    return max(settings.compaction_target_rows, settings.row_group_rows)


def _window(parts: list[pa.Table], table: str, schema: pa.Schema) -> pa.Table:
    merged = pa.concat_tables(parts)
    merged = merged.replace_schema_metadata(schema.metadata)
    return sort_window(merged, TRACE_COLUMN.get(table), TIME_COLUMN.get(table))


def compact_once(
    settings: Settings,
    *,
    hook: CompanionHook | None = None,
    tables: Sequence[str] | None = None,
    stop: threading.Event | None = None,
) -> CompactionStats:
    """One pass over every partition of every table, then garbage collection.

    Usable from ``tasklake compact``: safe beside running servers (other writer ids or the
    same one) and other compactors.
    """
    started = time.monotonic()
    storage = Storage(settings.lake)
    stats = CompactionStats()
    for table in tables or list(TABLES):
        for partition in storage.partitions(table):
            if stop is not None and stop.is_set():
                break
            try:
                compact_partition(storage, settings, table, partition, stats, hook=hook)
            except Exception:
                log.exception("compaction of %s/%s failed", table, partition)
    stats.removed = storage.collect_garbage(settings.compaction_grace)
    stats.seconds = time.monotonic() - started
    return stats
