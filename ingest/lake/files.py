"""Data files in a table's location: written whole, described for the Delta log.

A file becomes part of a table only when a commit names it (``committer``); until then no
reader lists it, so a file is written straight into its partition directory: locally under a
``.part`` name, fsynced and renamed (a file under its final name is always whole); on S3 as
one upload that appears complete or not at all. ``NewFile`` carries what the commit needs: the
relative path, size, partition and the statistics (row count, min/max/null counts of the
top-level columns) that engines use to skip files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
from deltalake.transaction import AddAction, RemoveAction
from ulid import ULID

from ingest.lake.parquet import ParquetFileWriter, logical_schema
from schemas.delta import DataFile
from schemas.lake import PARTITION, Table, partition_dir
from schemas.location import LakeLocation

#: Delta truncates string statistics; ours are only kept when whole (ids are 32 chars).
MAX_STAT_CHARS = 32


@dataclass(frozen=True)
class NewFile:
    """A complete data file waiting to be committed to ``table``."""

    table: str
    path: str  # relative to the table: ``date=2026-12-01/<name>.parquet``
    size: int
    rows: int
    day: str
    modified_ms: int
    stats: str  # Delta statistics JSON

    def add_action(self) -> AddAction:
        return AddAction(
            self.path, self.size, {PARTITION: self.day}, self.modified_ms, True, self.stats
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> NewFile:
        return cls(**{k: doc[k] for k in cls.__dataclass_fields__})


def remove_action(f: DataFile, *, data_change: bool = True) -> RemoveAction:
    return RemoveAction(f.path, data_change, int(time.time() * 1000), f.size, {PARTITION: f.day})


def file_name(prefix: str) -> str:
    """A unique, time-ordered data file name."""
    return f"{prefix}-{ULID()}.parquet".lower()


class Statistics:
    """Delta statistics of the rows written to one file, window by window: the count, and the
    min/max/null count of the top-level scalar columns."""

    def __init__(self) -> None:
        self.rows = 0
        self.mins: dict[str, Any] = {}
        self.maxs: dict[str, Any] = {}
        self.nulls: dict[str, int] = {}
        self.skipped: set[str] = set()

    def add(self, rows: pa.Table) -> None:
        self.rows += rows.num_rows
        for f in rows.schema:
            col, typ = rows.column(f.name), f.type
            if pa.types.is_dictionary(typ):
                col, typ = col.cast(typ.value_type), typ.value_type
            if not (
                pa.types.is_integer(typ) or pa.types.is_string(typ) or pa.types.is_timestamp(typ)
            ):
                continue
            self.nulls[f.name] = self.nulls.get(f.name, 0) + col.null_count
            if col.null_count == len(col) or f.name in self.skipped:
                continue
            lo, hi = (v.as_py() for v in pc.min_max(col).values())
            if pa.types.is_string(typ) and max(len(lo), len(hi)) > MAX_STAT_CHARS:
                self.skipped.add(f.name)  # Delta keeps whole values only: none is better
                self.mins.pop(f.name, None)
                self.maxs.pop(f.name, None)
                continue
            self.mins[f.name] = lo if f.name not in self.mins else min(self.mins[f.name], lo)
            self.maxs[f.name] = hi if f.name not in self.maxs else max(self.maxs[f.name], hi)

    def json(self) -> str:
        def plain(v: Any) -> Any:
            return _iso(v) if isinstance(v, dt.datetime) else v

        return json.dumps(
            {
                "numRecords": self.rows,
                "minValues": {k: plain(v) for k, v in self.mins.items()},
                "maxValues": {k: plain(v) for k, v in self.maxs.items()},
                "nullCount": self.nulls,
            },
            separators=(",", ":"),
        )


def statistics(rows: pa.Table) -> str:
    """Delta statistics of ``rows``."""
    stats = Statistics()
    stats.add(rows)
    return stats.json()


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class OpenFile:
    """A data file being written window by window; ``close`` makes it whole and describes it."""

    def __init__(
        self,
        location: LakeLocation,
        spec: Table,
        day: dt.date,
        schema: pa.Schema,
        write_schema: pa.Schema,
        *,
        prefix: str,
        level: int | None,
    ) -> None:
        self.spec, self.day = spec, day
        self.rel = f"{partition_dir(day)}/{file_name(prefix)}"
        self.local = location.local
        self.stats = Statistics()
        self._sink: pa.NativeFile | None = None
        if self.local:
            self._dest = location.path / spec.name / self.rel
            self._dest.parent.mkdir(parents=True, exist_ok=True)
            self._writer = ParquetFileWriter(
                self._dest, schema, write_schema=write_schema, level=level
            )
        else:
            fs, base = location.filesystem()
            self._fs, self._path = fs, f"{base}/{spec.name}/{self.rel}"
            self._sink = fs.open_output_stream(self._path)
            self._writer = ParquetFileWriter(
                self._sink, schema, write_schema=write_schema, level=level
            )

    @property
    def rows(self) -> int:
        return self.stats.rows

    def write(self, rows: pa.Table, row_group_rows: int) -> None:
        self._writer.write(rows, row_group_rows)
        self.stats.add(rows)

    def close(self) -> NewFile:
        if self.local:
            size = self._writer.commit(fsync=True)
            _fsync_dir(self._dest.parent)
        else:
            assert self._sink is not None
            self._writer.finish()
            self._sink.close()
            size = int(self._fs.get_file_info(self._path).size)
        return NewFile(
            table=self.spec.name,
            path=self.rel,
            size=size,
            rows=self.stats.rows,
            day=self.day.isoformat(),
            modified_ms=int(time.time() * 1000),
            stats=self.stats.json(),
        )

    def abort(self) -> None:
        if self.local:
            self._writer.abort()
        elif self._sink is not None:
            with contextlib.suppress(Exception):
                self._sink.close()
            with contextlib.suppress(Exception):
                self._fs.delete_file(self._path)


class FileWriter:
    """Writes data files of the tables of one lake (local or S3)."""

    def __init__(self, location: LakeLocation) -> None:
        self.location = location
        self._fs, self._base = location.filesystem()

    def open(
        self,
        spec: Table,
        day: dt.date,
        schema: pa.Schema,
        *,
        prefix: str,
        level: int | None,
        metadata: Mapping[str, str] | None = None,
        write_schema: pa.Schema | None = None,
    ) -> OpenFile:
        """A new data file of ``day``, declared as ``schema`` (lake form); its windows may
        carry dictionary columns (``write_schema``)."""
        declared = logical_schema(schema)
        meta = dict(declared.metadata or {})
        meta[b"tasklake.schema_version"] = str(spec.version).encode()
        meta.update({k.encode(): v.encode() for k, v in (metadata or {}).items()})
        return OpenFile(
            self.location,
            spec,
            day,
            declared.with_metadata(meta),
            (write_schema or schema).remove_metadata(),
            prefix=prefix,
            level=level,
        )

    def write(
        self,
        spec: Table,
        day: dt.date,
        rows: pa.Table,
        *,
        prefix: str,
        row_group_rows: int,
        level: int | None,
        metadata: Mapping[str, str] | None = None,
        write_schema: pa.Schema | None = None,
    ) -> NewFile:
        """Write ``rows`` (lake form; dictionary columns allowed) as one file of ``day``."""
        out = self.open(
            spec,
            day,
            rows.schema,
            prefix=prefix,
            level=level,
            metadata=metadata,
            write_schema=write_schema,
        )
        try:
            out.write(rows, row_group_rows)
            return out.close()
        except BaseException:
            out.abort()
            raise

    def exists(self, table: str, rel: str) -> bool:
        info = self._fs.get_file_info(f"{self._base}/{table}/{rel}")
        return bool(info.type != pafs.FileType.NotFound)

    def delete(self, table: str, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._fs.delete_file(f"{self._base}/{table}/{rel}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
