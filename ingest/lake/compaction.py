"""Compaction: a partition's small files merged into large, sorted, deduplicated ones.

Per table and partition, at one table version: choose the inputs among its files
(``choose_inputs``), stream them through windows of ``row_group_rows`` rows, each window
sorted by (first start of its trace, trace, start) into one row group, write the outputs with
the compacted files' per-column encodings and zstd levels, and commit **one** Delta
transaction that removes the inputs and adds the outputs. The transaction is checked against
every commit since the version the inputs were read at: if another compactor removed an input
meanwhile it fails (nothing changes; the outputs are deleted and the partition retried next
round), while appends of receivers in between never conflict. Readers pinned to an older
version keep reading the inputs until a vacuum removes them (``vacuum_retention``).

Spans received more than once (same trace and span id: an exporter retried after a lost
answer) are dropped here: among the copies in the inputs, the one the views count survives
(``schemas/templates/span_copies.sql``: the first received). Copies in files outside this
merge stay; the views count one copy whatever the files hold.

Compacted files are named ``c-<writer>-<ulid>.parquet``, so choosing inputs needs no footer.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable
from deltalake.exceptions import CommitFailedError

from ingest.lake.files import FileWriter, NewFile, OpenFile, remove_action
from ingest.lake.parquet import conform, dictionary_leaves, merge_read_schema
from schemas.delta import DataFile, Tables
from schemas.lake import COMPACTED_PREFIX, PARTITION, SPANS, TABLES, Table
from schemas.location import configure_duckdb
from schemas.settings import Settings
from schemas.templates import render

log = logging.getLogger(__name__)

#: A partition with no file younger than this is quiet: its partial files are merged.
QUIET_SECONDS = 600.0


@dataclass
class CompactionStats:
    partitions: int = 0
    input_files: int = 0
    output_files: int = 0
    rows: int = 0
    copies_dropped: int = 0
    input_bytes: int = 0
    output_bytes: int = 0
    conflicts: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    tables: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items() if not isinstance(v, dict)}


def is_compacted(f: DataFile) -> bool:
    return PurePosixPath(f.path).name.startswith(COMPACTED_PREFIX)


def choose_inputs(
    files: Sequence[DataFile],
    *,
    target_rows: int,
    window_rows: int,
    now: float,
    quiet: float = QUIET_SECONDS,
) -> list[DataFile]:
    """The files of one partition worth merging now; empty when none are.

    Every flush file is merged; a compacted file that is not full yet is rewritten only when
    the rows merged with it are at least as many as its own (smallest first), so a row is
    rewritten about log2(target / rows per round) times however slowly a partition fills;
    once a partition is quiet (no file younger than ``quiet``) its partial files are merged.
    """
    full_at = max(1, target_rows - window_rows + 1)
    fresh = [f for f in files if not is_compacted(f)]
    partial = sorted(
        (f for f in files if is_compacted(f) and f.rows < full_at), key=lambda f: (f.rows, f.path)
    )
    is_quiet = all(now - f.modified_ms / 1000 >= quiet for f in files)
    chosen = list(fresh)
    merged = sum(f.rows for f in fresh)
    for f in partial:
        if not is_quiet and f.rows > merged:
            break
        chosen.append(f)
        merged += f.rows
    if not fresh and len(chosen) < 2:
        return []  # nothing new, and one compacted file alone is as good as it gets
    return chosen


# ---------------------------------------------------------------------- ordering


def sort_indices(table: pa.Table, trace_column: str | None, time_column: str) -> pa.Array:
    """Row order (first start of the row's trace, trace, start); single-threaded."""
    n = table.num_rows
    times = table.column(time_column)
    if pa.types.is_timestamp(times.type):
        times = times.cast(pa.int64())
    if trace_column is None:
        return pc.sort_indices(pa.table({"s": times}), sort_keys=[("s", "ascending")])
    codes = pc.dictionary_encode(table.column(trace_column)).combine_chunks()
    keys = pa.table({"t": codes.indices, "s": times, "i": pa.array(range(n), pa.int64())})
    first = keys.group_by("t", use_threads=False).aggregate([("s", "min")])
    keyed = keys.join(first, "t", use_threads=False)  # left outer: a null trace stays
    order = pc.sort_indices(
        keyed,
        sort_keys=[
            ("s_min", "ascending"),
            ("t", "ascending"),
            ("s", "ascending"),
            ("i", "ascending"),
        ],
    )
    return keyed.column("i").take(order)


def sort_window(parts: list[pa.Table], trace_column: str | None, time_column: str) -> pa.Table:
    """The rows of ``parts`` in ``sort_indices`` order, one chunk per column.

    Consumes ``parts`` (the list is emptied): each input column is released as soon as its
    sorted copy exists, so the window is held about once, not twice."""
    table = pa.concat_tables(parts)
    parts.clear()
    if table.num_rows <= 1:
        return table.combine_chunks()
    order = sort_indices(table, trace_column, time_column)
    schema, columns = table.schema, table.columns
    del table
    for i, column in enumerate(columns):
        columns[i] = column.take(order)
        del column
    return pa.Table.from_arrays(columns, schema=schema)


#: Dictionaries longer than this are rebuilt (``tidy_dictionaries``); shorter ones cost nothing.
_TIDY_DICTIONARY_OVER = 256


def tidy_dictionaries(table: pa.Table) -> pa.Table:
    """``table`` with long top-level dictionaries cut to the values its rows use, sorted: a
    window's dictionaries come whole from its input files, and sorted values compress."""
    columns = [
        pa.chunked_array([_tidy(c.chunk(0))])
        if pa.types.is_dictionary(c.type) and c.num_chunks == 1
        else c
        for c in table.columns
    ]
    return pa.Table.from_arrays(columns, schema=table.schema)


def _tidy(array: pa.DictionaryArray) -> pa.DictionaryArray:
    if len(array.dictionary) <= _TIDY_DICTIONARY_OVER:
        return array
    used = pc.unique(array.indices).drop_null()
    used = used.take(pc.sort_indices(array.dictionary.take(used)))  # by value
    indices = pc.index_in(array.indices, value_set=used).cast(array.indices.type)
    return pa.DictionaryArray.from_arrays(indices, array.dictionary.take(used))


# ---------------------------------------------------------------------- copies


def span_copies(tables: Tables, inputs: Sequence[DataFile]) -> dict[str, pa.Array]:
    """Row numbers, per input file URI, of span copies that are not the counted one."""
    con = duckdb.connect(config={"threads": 1})
    try:
        configure_duckdb(con, tables.location)
        listed = "[" + ", ".join("'" + f.uri.replace("'", "''") + "'" for f in inputs) + "]"
        source = (
            f"read_parquet({listed}, filename = true, file_row_number = true,"
            " union_by_name = true, hive_partitioning = false)"
        )
        rows = con.execute(render("span_copies", {"spans_table": source})).to_arrow_table()
    finally:
        con.close()
    out: dict[str, pa.Array] = {}
    grouped = rows.group_by("filename").aggregate([("file_row_number", "list")])
    for name, numbers in zip(
        grouped.column("filename").to_pylist(),
        grouped.column("file_row_number_list").to_pylist(),
        strict=True,
    ):
        out[name] = pa.array(numbers, pa.int64())
    return out


# ---------------------------------------------------------------------- merging


_READ_BATCH_ROWS = 8192


def _batches(
    tables: Tables,
    inputs: Sequence[DataFile],
    schema: pa.Schema,
    rows: int,
    drop: dict[str, pa.Array],
) -> Iterator[pa.Table]:
    fs, _ = tables.location.filesystem()
    leaves = dictionary_leaves(schema)
    for item in inputs:
        path = tables.location.fs_path(item.uri)
        dropped = drop.get(item.uri)
        offset = 0
        with fs.open_input_file(path) as fh:
            pf = pq.ParquetFile(fh, read_dictionary=leaves)
            for batch in pf.iter_batches(batch_size=min(rows, _READ_BATCH_ROWS), use_threads=False):
                part = conform(pa.Table.from_batches([batch]), schema)
                if dropped is not None:
                    n = part.num_rows
                    numbers = pa.array(range(offset, offset + n), pa.int64())
                    part = part.filter(pc.invert(pc.is_in(numbers, value_set=dropped)))
                    offset += n
                yield part


def compact_partition(  # noqa: PLR0917 (the merge's whole context, named at the call)
    tables: Tables,
    writer: FileWriter,
    settings: Settings,
    spec: Table,
    table: DeltaTable,
    files: Sequence[DataFile],
    stats: CompactionStats,
    *,
    now: float,
    quiet: float,
) -> None:
    window_rows = settings.row_group_rows
    target = max(settings.compaction_target_rows, window_rows)
    inputs = choose_inputs(files, target_rows=target, window_rows=window_rows, now=now, quiet=quiet)
    if not inputs:
        return
    inputs = sorted(inputs, key=lambda f: (f.first_time, f.path))
    drop = span_copies(tables, inputs) if spec.name == SPANS else {}
    read_schema = merge_read_schema(spec.file_schema)
    trace_column = spec.sort_keys[0] if spec.sort_keys else None
    time_column = spec.time_lake_column
    day = inputs[0].day
    outputs: list[NewFile] = []
    meta = {
        "tasklake.writer": settings.effective_writer_id,
        "tasklake.compacted_from": str(len(inputs)),
    }

    day_date = dt.date.fromisoformat(day)
    current: OpenFile | None = None

    def emit(window: pa.Table) -> None:
        """One sorted window: a row group of the current output, a new output when full."""
        nonlocal current
        if current is not None and current.rows + window.num_rows > target:
            outputs.append(current.close())
            current = None
        if current is None:
            current = writer.open(
                spec,
                day_date,
                spec.file_schema,
                prefix=COMPACTED_PREFIX + settings.effective_writer_id,
                level=None,  # the per-column levels of files that stay
                metadata=meta,
                write_schema=read_schema,
            )
        current.write(window, window.num_rows)

    try:
        buffered: list[pa.Table] = []
        count = 0
        for part in _batches(tables, inputs, read_schema, window_rows, drop):
            buffered.append(part)
            count += part.num_rows
            del part  # ``buffered`` holds it: a window consumes its rows as it sorts them
            while count >= window_rows:  # exactly row_group_rows per row group
                rows = pa.concat_tables(buffered)
                window = [rows.slice(0, window_rows)]
                buffered = [rows.slice(window_rows)]
                count = buffered[0].num_rows
                del rows
                emit(tidy_dictionaries(sort_window(window, trace_column, time_column)))
        if count:
            emit(tidy_dictionaries(sort_window(buffered, trace_column, time_column)))
        if current is not None:
            outputs.append(current.close())
            current = None
    except BaseException:
        if current is not None:
            current.abort()
        for f in outputs:
            writer.delete(spec.name, f.path)
        raise
    try:
        # ``table`` is still at the version the inputs were listed at: the commit is checked
        # against everything committed since (see module doc)
        table.create_write_transaction(
            [*(remove_action(f) for f in inputs), *(f.add_action() for f in outputs)],
            mode="append",
            schema=spec.delta_schema,
            partition_by=[PARTITION],
            commit_properties=_commit_properties(settings, "compact"),
        )
    except CommitFailedError as exc:
        stats.conflicts += 1
        log.warning("%s/%s: inputs changed during compaction (%s); will retry", spec.name, day, exc)
        for f in outputs:
            writer.delete(spec.name, f.path)
        return
    stats.partitions += 1
    stats.input_files += len(inputs)
    stats.output_files += len(outputs)
    stats.rows += sum(f.rows for f in inputs)
    stats.copies_dropped += sum(len(v) for v in drop.values())
    stats.input_bytes += sum(f.size for f in inputs)
    stats.output_bytes += sum(f.size for f in outputs)
    stats.tables[spec.name] = stats.tables.get(spec.name, 0) + 1


def _commit_properties(settings: Settings, op: str) -> CommitProperties:
    return CommitProperties(
        custom_metadata={"tasklake.writer": settings.effective_writer_id, "tasklake.op": op}
    )


def compact_table(
    tables: Tables,
    writer: FileWriter,
    settings: Settings,
    name: str,
    stats: CompactionStats,
    *,
    now: float | None = None,
    quiet: float = QUIET_SECONDS,
    stop: Any = None,
) -> None:
    """Compact every partition of one table, each against the version it was listed at."""
    spec = TABLES[name]
    days = sorted({f.day for f in tables.version_of(name).files})
    for day in days:
        if stop is not None and stop.is_set():
            return
        table = tables.current(name)
        files = [f for f in tables.files_at(name, table).files if f.day == day]
        try:
            compact_partition(
                tables,
                writer,
                settings,
                spec,
                table,
                files,
                stats,
                now=time.time() if now is None else now,
                quiet=quiet,
            )
        except Exception:
            log.exception("compaction of %s/%s=%s failed", name, PARTITION, day)


def compact_once(
    settings: Settings,
    *,
    tables: Sequence[str] | None = None,
    stop: Any = None,
    quiet: float = QUIET_SECONDS,
) -> CompactionStats:
    """One pass over every partition of every table.

    Safe beside running receivers and other compactors (a conflicting merge is dropped and
    retried). ``stop`` (anything with ``is_set()``) ends the pass between partitions;
    ``quiet=0`` merges every partition's partial files now.
    """
    started = time.monotonic()
    cpu = time.process_time()
    lake = Tables(settings.location)
    writer = FileWriter(lake.location)
    stats = CompactionStats()
    for name in tables or list(TABLES):
        compact_table(lake, writer, settings, name, stats, stop=stop, quiet=quiet)
    stats.seconds = time.monotonic() - started
    stats.cpu_seconds = time.process_time() - cpu
    return stats


def vacuum(
    settings: Settings,
    tables: Sequence[str] | None = None,
    *,
    retention_seconds: float | None = None,
) -> int:
    """Delete files no version younger than ``vacuum_retention`` reads (the files compaction
    replaced, and data files no commit ever named); return how many."""
    lake = Tables(settings.location)
    seconds = settings.vacuum_retention if retention_seconds is None else retention_seconds
    hours = -(-int(seconds) // 3600)  # delta-rs counts whole hours
    removed = 0
    for name in tables or list(TABLES):
        table = lake.current(name)
        removed += len(
            table.vacuum(retention_hours=hours, enforce_retention_duration=False, dry_run=False)
        )
    return removed
