"""Data files in a table's location: written whole, described for the Delta log.

A file becomes part of a table only when a commit names it (``committer``); until then no
reader lists it, so a file is written straight into its partition directory: locally under a
``.part`` name, fsynced and renamed (a file under its final name is always whole); on S3 as
one upload that appears complete or not at all. ``NewFile`` carries what the commit needs: the
relative path, size, partition and the statistics (row count, min/max/null counts of the
top-level columns) that engines use to skip files.
"""

from __future__ import annotations

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
from deltalake.transaction import AddAction, RemoveAction
from ulid import ULID

from ingest.parquet import ParquetFileWriter, logical_schema
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


def statistics(rows: pa.Table) -> str:
    """Delta statistics of ``rows``: count, and min/max/nulls of top-level scalar columns."""
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for f in rows.schema:
        col = rows.column(f.name)
        typ = f.type
        if pa.types.is_dictionary(typ):
            col, typ = col.cast(typ.value_type), typ.value_type
        if not (pa.types.is_integer(typ) or pa.types.is_string(typ) or pa.types.is_timestamp(typ)):
            continue
        nulls[f.name] = col.null_count
        if col.null_count == len(col):
            continue
        lo, hi = (v.as_py() for v in pc.min_max(col).values())
        if pa.types.is_string(typ):
            if len(lo) > MAX_STAT_CHARS or len(hi) > MAX_STAT_CHARS:
                continue
        elif pa.types.is_timestamp(typ):
            lo, hi = _iso(lo), _iso(hi)
        mins[f.name], maxs[f.name] = lo, hi
    return json.dumps(
        {"numRecords": rows.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls},
        separators=(",", ":"),
    )


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FileWriter:
    """Writes data files of the tables of one lake (local or S3)."""

    def __init__(self, location: LakeLocation) -> None:
        self.location = location
        self._fs, self._base = location.filesystem()

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
        rel = f"{partition_dir(day)}/{file_name(prefix)}"
        schema = logical_schema(rows.schema)
        meta = {b"tasklake.schema_version": str(spec.version).encode()}
        meta.update({k.encode(): v.encode() for k, v in (metadata or {}).items()})
        schema = schema.with_metadata(meta)
        if self.location.local:
            size = self._write_local(rel, spec, rows, schema, row_group_rows, level, write_schema)
        else:
            size = self._write_remote(rel, spec, rows, schema, row_group_rows, level, write_schema)
        return NewFile(
            table=spec.name,
            path=rel,
            size=size,
            rows=rows.num_rows,
            day=day.isoformat(),
            modified_ms=int(time.time() * 1000),
            stats=statistics(rows),
        )

    def _write_local(
        self,
        rel: str,
        spec: Table,
        rows: pa.Table,
        schema: pa.Schema,
        row_group_rows: int,
        level: int | None,
        write_schema: pa.Schema | None,
    ) -> int:
        dest = self.location.path / spec.name / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        writer = ParquetFileWriter(
            dest, schema, write_schema=write_schema or rows.schema, level=level
        )
        try:
            writer.write(rows, row_group_rows)
            size = writer.commit(fsync=True)
        except BaseException:
            writer.abort()
            raise
        _fsync_dir(dest.parent)
        return size

    def _write_remote(
        self,
        rel: str,
        spec: Table,
        rows: pa.Table,
        schema: pa.Schema,
        row_group_rows: int,
        level: int | None,
        write_schema: pa.Schema | None,
    ) -> int:
        path = f"{self._base}/{spec.name}/{rel}"
        with self._fs.open_output_stream(path) as sink:
            writer = ParquetFileWriter(
                sink, schema, write_schema=write_schema or rows.schema, level=level
            )
            writer.write(rows, row_group_rows)
            writer.finish()
        return int(self._fs.get_file_info(path).size)

    def exists(self, table: str, rel: str) -> bool:
        info = self._fs.get_file_info(f"{self._base}/{table}/{rel}")
        return info.type != 0  # FileType.NotFound

    def delete(self, table: str, rel: str) -> None:
        try:
            self._fs.delete_file(f"{self._base}/{table}/{rel}")
        except FileNotFoundError:
            pass


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
