"""The old lake's rows into the staged Delta tables, batch by batch, and counted.

A batch (``plan``) is read file by file, row group by row group, converted by
``Table.to_lake`` (nanosecond times to ``*_unix_nano``, unsigned to signed, columns an older
file lacks as nulls) and written a file per day (``DayFiles``); one commit adds the batch's
files and records its number. Batches a table already holds are skipped: an interrupted run
resumes where it stopped. Memory: a row group per table at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import Transaction

from ingest.convert.lane import RecordHandler
from ingest.lake.append import commit_files
from ingest.lake.day_files import DayFiles
from ingest.lake.files import FileWriter, NewFile
from ingest.lake.migrate import old_wal
from ingest.lake.migrate.errors import LakeChanged, MigrationError
from ingest.lake.migrate.old_layout import OldFile, OldPartition
from ingest.lake.migrate.plan import APP_ID, Plan
from ingest.lake.migrate.state import Count
from schemas.delta import Tables
from schemas.lake import PARTITION, TABLES
from schemas.settings import Settings

OP = "migrate"
#: Data files a migration writes: ``m-<ulid>.parquet`` (compaction merges them like flushes).
PREFIX = "m"
_READ_ROWS = 16_384

#: Told each batch as it is committed: (table, batch number, rows).
Progress = Callable[[str, int, int], None]


class Copier:
    """Writes a plan into the tables of a staging lake."""

    def __init__(
        self, plan: Plan, tables: Tables, settings: Settings, progress: Progress | None = None
    ) -> None:
        self.plan = plan
        self.tables = tables
        self.settings = settings
        self.progress = progress or (lambda table, number, rows: None)
        self.writer = FileWriter(tables.location)

    def run(self, handlers: Mapping[int, RecordHandler]) -> dict[str, Count]:
        """Copy every batch the tables lack; the counts, ``after`` not yet filled in."""
        self.tables.ensure(list(TABLES))
        counts = {
            t: Count(files=self.plan.files(t), file_rows=self.plan.file_rows(t)) for t in TABLES
        }
        for table in TABLES:
            done = self.done(table)
            for number, parts in self.plan.batches(table):
                if number > done:
                    self._files_batch(table, number, parts)
        for index, lane in enumerate(self.plan.backlog):
            for table, rows in self._wal_batch(index, lane, handlers).items():
                counts[table].wal_rows += rows
        return counts

    def done(self, table: str) -> int:
        """How many of the table's batches it holds."""
        return int(self.tables.current(table).transaction_version(APP_ID) or 0)

    def _day_files(self, table: str) -> DayFiles:
        return DayFiles(
            self.writer,
            TABLES[table],
            prefix=PREFIX,
            row_group_rows=self.settings.row_group_rows,
            file_rows=self.settings.compaction_target_rows,
        )

    def _commit(self, table: str, number: int, files: Sequence[NewFile]) -> None:
        commit_files(self.tables, table, files, op=OP, transaction=Transaction(APP_ID, number))
        self.progress(table, number, sum(f.rows for f in files))

    # ------------------------------------------------------------------ data files

    def _files_batch(self, table: str, number: int, parts: Sequence[OldPartition]) -> None:
        written: list[NewFile] = []
        try:
            for part in parts:
                written.extend(self._partition(table, part))
        except BaseException:
            for f in written:  # never committed: nobody would read them
                self.writer.delete(table, f.path)
            raise
        # a commit that raised may have landed all the same: its files stay (vacuum removes
        # them if it did not)
        self._commit(table, number, written)

    def _partition(self, table: str, part: OldPartition) -> list[NewFile]:
        out = self._day_files(table)
        try:
            for old in part.files:
                for rows in _read(old, table):
                    out.add(rows)
            return out.close()
        except BaseException:
            out.abort()
            raise

    # ------------------------------------------------------------------ the WAL

    def _wal_batch(
        self, index: int, lane: old_wal.OldLane, handlers: Mapping[int, RecordHandler]
    ) -> dict[str, int]:
        """Convert the lane's backlog; commit it to each table lacking it; rows per table
        (of every table: a resumed run counts what an earlier one committed)."""
        numbers = {t: self.plan.wal_number(t, index) for t in TABLES}
        outs = {t: self._day_files(t) for t in TABLES if numbers[t] > self.done(t)}
        rows = dict.fromkeys(TABLES, 0)
        try:
            for table, part in old_wal.convert(lane, handlers):
                if table not in TABLES:
                    raise MigrationError(f"lane {lane.name}: rows for unknown table {table!r}")
                rows[table] += part.num_rows
                if table in outs:
                    outs[table].add(part)
            closed = {t: out.close() for t, out in outs.items()}
        except BaseException:
            for out in outs.values():
                out.abort()
            raise
        for table, files in closed.items():
            self._commit(table, numbers[table], files)
        return rows


def _read(f: OldFile, table: str) -> Iterator[pa.Table]:
    """The file's rows in its own schema (an older one may lack columns), a window at a time."""
    spec = TABLES[table]
    try:
        pf = pq.ParquetFile(f.path)
    except FileNotFoundError as exc:
        raise LakeChanged(
            f"{f.path} vanished before it was copied: is the old tasklake (or its compaction)"
            " running? Stop it and run tasklake migrate again"
        ) from exc
    unknown = set(pf.schema_arrow.names) - set(spec.schema.names) - {PARTITION}
    if unknown:
        raise MigrationError(
            f"{f.path}: columns this version of tasklake does not know"
            f" ({', '.join(sorted(unknown))}); was it written by a newer one? Nothing was changed."
        )
    for batch in pf.iter_batches(batch_size=_READ_ROWS, use_threads=False):
        yield pa.Table.from_batches([batch])


def rows_in(tables: Tables, table: str) -> int:
    """Rows of the table's newest version, counted from its data files' footers (not from
    the statistics the commits carry: an independent count)."""
    fs, _ = tables.location.filesystem()
    total = 0
    for f in tables.version_of(table).files:
        with fs.open_input_file(tables.location.fs_path(f.uri)) as fh:
            total += pq.ParquetFile(fh).metadata.num_rows
    return total
