"""Rows of one table streamed into data files, a file per day, in bounded memory.

For writers that see rows of any day in any order and more of them than fit in memory
(``tasklake migrate``): rows wait per day until they make whole row groups of
``row_group_rows``; when all days together hold that many, the largest wait is written early
(a smaller row group). A file that
reaches ``file_rows`` is closed and the day starts another. Nothing is committed here: the
caller commits ``close()``'s files (``append.commit_files``), or ``abort()``s.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from ingest.lake.files import FileWriter, NewFile, OpenFile
from ingest.lake.parquet import FLUSH_LEVEL
from schemas.lake import Table


class DayFiles:
    def __init__(
        self,
        writer: FileWriter,
        spec: Table,
        *,
        prefix: str,
        row_group_rows: int,
        file_rows: int,
        level: int | None = FLUSH_LEVEL,
    ) -> None:
        self.writer, self.spec, self.prefix, self.level = writer, spec, prefix, level
        self.row_group_rows = row_group_rows
        self.file_rows = max(file_rows, row_group_rows)
        self.rows = 0  # rows taken so far
        self._open: dict[dt.date, OpenFile] = {}
        self._waiting: dict[dt.date, list[pa.Table]] = {}
        self._closed: list[NewFile] = []

    def add(self, rows: pa.Table) -> None:
        """Take ``rows`` in the table's row schema (or an older version of it)."""
        for day, part in self.spec.split_by_day(self.spec.to_lake(rows)):
            self._waiting.setdefault(day, []).append(part)
            self.rows += part.num_rows
            if self._waiting_rows(day) >= self.row_group_rows:
                self._write(day, whole_groups=True)
        while sum(self._waiting_rows(d) for d in self._waiting) >= self.row_group_rows:
            self._write(max(self._waiting, key=self._waiting_rows))

    def close(self) -> list[NewFile]:
        """Write what waits; the complete files, each whole under its final name."""
        for day in list(self._waiting):
            self._write(day)
        for day in list(self._open):
            self._closed.append(self._open.pop(day).close())
        return self._closed

    def abort(self) -> None:
        """Forget every file (a caller that will not commit them)."""
        for f in self._open.values():
            f.abort()
        for done in self._closed:
            self.writer.delete(self.spec.name, done.path)
        self._open.clear()
        self._waiting.clear()
        self._closed.clear()

    def _waiting_rows(self, day: dt.date) -> int:
        return sum(t.num_rows for t in self._waiting.get(day, ()))

    def _write(self, day: dt.date, *, whole_groups: bool = False) -> None:
        """Write the day's waiting rows (``whole_groups``: whole row groups only, the rest
        waits on)."""
        rows = pa.concat_tables(self._waiting.pop(day))
        if whole_groups:
            rest = rows.num_rows % self.row_group_rows
            if rest:
                self._waiting[day] = [rows.slice(rows.num_rows - rest)]
                rows = rows.slice(0, rows.num_rows - rest)
        while rows.num_rows:
            out = self._open.get(day)
            if out is None:
                out = self._open[day] = self.writer.open(
                    self.spec, day, self.spec.file_schema, prefix=self.prefix, level=self.level
                )
            take = min(rows.num_rows, self.file_rows - out.rows)
            for start in range(0, take, self.row_group_rows):
                window = rows.slice(start, min(self.row_group_rows, take - start))
                out.write(window, window.num_rows)
            rows = rows.slice(take)
            if out.rows >= self.file_rows:
                self._closed.append(self._open.pop(day).close())
