"""The lake's Delta tables as readers and writers open them: create, follow, pin a version.

Every query tasklake runs reads one version of each table (``Snapshot``): the data files a
table version lists, handed to DuckDB as a file list (``pin``). A compaction or a new commit
after that never changes the query's answer; files a vacuum removes are older than any query
(``vacuum_retention`` > ``query_timeout``). Delta logs are followed incrementally: delta-rs
reads only the commits since the version it holds, so taking a snapshot costs milliseconds.

``Tables`` caches one ``DeltaTable`` per table and is safe to share between threads.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from schemas.lake import PARTITION, TABLES, Table, table_config
from schemas.location import LakeLocation, SqlConnection

log = logging.getLogger(__name__)

#: The DuckDB variable a pinned query reads the files of ``table`` from.
VARIABLE_PREFIX = "tasklake_"


@dataclass(frozen=True)
class DataFile:
    """One data file of a table version (an add action of the Delta log)."""

    path: str  # relative to the table, as in the log (``date=2026-12-01/<name>.parquet``)
    uri: str  # absolute: what an engine opens
    size: int
    rows: int
    modified_ms: int
    day: str  # the partition value, ``2026-12-01``
    first_time: int = 0  # the smallest value of the table's time column (0: unknown)


@dataclass(frozen=True)
class TableVersion:
    table: str
    version: int
    files: tuple[DataFile, ...]

    def uris(self) -> list[str]:
        return [f.uri for f in self.files]


@dataclass(frozen=True)
class Commit:
    """The file actions of one table version (one JSON file of the Delta log)."""

    version: int
    op: str | None  # tasklake.op of the commit (ingest, compact), None when not ours
    added: tuple[DataFile, ...]
    removed: tuple[str, ...]  # relative paths


@dataclass(frozen=True)
class Snapshot:
    """One version of every table: what a pinned query reads."""

    tables: Mapping[str, TableVersion]

    @property
    def versions(self) -> dict[str, int]:
        return {name: tv.version for name, tv in self.tables.items()}

    def __getitem__(self, table: str) -> TableVersion:
        return self.tables[table]


def variable(table: str) -> str:
    return f"{VARIABLE_PREFIX}{table}"


class Tables:
    """The Delta tables of one lake, opened once and followed incrementally."""

    def __init__(
        self, location: LakeLocation | str | os.PathLike[str], *, seed_dir: Path | None = None
    ) -> None:
        self.location = (
            location if isinstance(location, LakeLocation) else LakeLocation.parse(location)
        )
        self.seed_dir = seed_dir
        self._open: dict[str, DeltaTable] = {}
        self._lock = threading.Lock()

    def uri(self, table: str) -> str:
        return self.location.uri(table)

    # ------------------------------------------------------------------ create / open

    def ensure(self, tables: Iterable[str] | None = None) -> None:
        """Create every missing table (several processes may race: one wins, all see it)."""
        for name in tables or list(TABLES):
            self.open(name)

    def open(self, table: str) -> DeltaTable:
        """The table, created when missing; the same object on every call (not refreshed)."""
        with self._lock:
            found = self._open.get(table)
            if found is not None:
                return found
            found = self._open_or_create(TABLES[table])
            self._open[table] = found
            return found

    def _open_or_create(self, spec: Table) -> DeltaTable:
        uri = self.uri(spec.name)
        for attempt in range(5):
            try:
                return DeltaTable(uri)
            except TableNotFoundError:
                pass
            try:
                return DeltaTable.create(
                    uri,
                    schema=spec.delta_schema,
                    partition_by=[PARTITION],
                    name=spec.name,
                    configuration=dict(table_config()),
                )
            except Exception as exc:  # another process created it first: open theirs
                log.debug("creating %s raced (%s); opening", uri, exc)
                time.sleep(0.05 * (attempt + 1))
        return DeltaTable(uri)

    def current(self, table: str) -> DeltaTable:
        """The table at its newest version (reads only the commits since the last call)."""
        dt = self.open(table)
        with self._lock:
            dt.update_incremental()
        return dt

    # ------------------------------------------------------------------ versions

    def version_of(self, table: str, version: int | None = None) -> TableVersion:
        """The data files of ``table`` at ``version`` (None: the newest)."""
        if version is None:
            dt = self.current(table)
            with self._lock:
                return self.files_at(table, dt)
        dt = DeltaTable(self.uri(table), version=version)
        return self.files_at(table, dt)

    def files_at(self, table: str, dt: DeltaTable) -> TableVersion:
        """The data files of ``table`` at the version ``dt`` holds."""
        actions = pa.table(dt.get_add_actions(flatten=True))
        base = self.uri(table).rstrip("/")
        paths = actions.column("path").to_pylist()
        sizes = actions.column("size_bytes").to_pylist()
        modified = actions.column("modification_time").to_pylist()
        rows = (
            actions.column("num_records").to_pylist()
            if "num_records" in actions.column_names
            else [0] * len(paths)
        )
        days = actions.column(f"partition.{PARTITION}").to_pylist()
        first_column = f"min.{TABLES[table].time_lake_column}"
        firsts = (
            actions.column(first_column).to_pylist()
            if first_column in actions.column_names
            else [0] * len(paths)
        )
        files = tuple(
            DataFile(
                path=p,
                uri=f"{base}/{p}",
                size=int(s),
                rows=int(r or 0),
                modified_ms=_millis(m),
                day=str(d),
                first_time=int(t or 0),
            )
            for p, s, m, r, d, t in zip(paths, sizes, modified, rows, days, firsts, strict=True)
        )
        return TableVersion(table, dt.version(), tuple(sorted(files, key=lambda f: f.path)))

    def commits(self, table: str, since: int, until: int) -> list[Commit] | None:
        """The commits after version ``since`` up to ``until``, from the log's JSON files;
        None when one of them is no longer in the log (cleaned up: diff whole versions)."""
        fs, _ = self.location.filesystem()
        base = self.location.fs_path(self.uri(table)).rstrip("/")
        spec = TABLES[table]
        uri = self.uri(table).rstrip("/")
        out = []
        for version in range(since + 1, until + 1):
            try:
                with fs.open_input_stream(f"{base}/_delta_log/{version:020d}.json") as fh:
                    text = fh.read().decode("utf-8")
            except (FileNotFoundError, OSError):
                return None
            op: str | None = None
            added: list[DataFile] = []
            removed: list[str] = []
            for line in text.splitlines():
                if not line.strip():
                    continue
                action = json.loads(line)
                if "add" in action:
                    added.append(_data_file(action["add"], uri, spec))
                elif "remove" in action:
                    removed.append(unquote(action["remove"]["path"]))
                elif "commitInfo" in action:
                    found = action["commitInfo"].get("tasklake.op")
                    op = str(found) if found else None
            out.append(Commit(version, op, tuple(added), tuple(removed)))
        return out

    def snapshot(self, tables: Sequence[str] | None = None) -> Snapshot:
        """The newest version of every table."""
        return Snapshot({name: self.version_of(name) for name in tables or list(TABLES)})

    # ------------------------------------------------------------------ readers

    def seed(self, table: str) -> str | None:
        """A zero-row file with the table's current columns, listed in every pin: views bind
        on an empty table, and files written before a column existed line up with it."""
        if self.seed_dir is None:
            return None
        spec = TABLES[table]
        path = (
            self.seed_dir / table / f"{PARTITION}=1970-01-01" / f"_schema-v{spec.version}.parquet"
        )
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f".{threading.get_ident()}.tmp")
            pq.write_table(spec.file_schema.empty_table(), tmp)
            tmp.replace(path)
        return str(path)

    def pin_statements(self, snapshot: Snapshot) -> list[str]:
        out = []
        for name, tv in snapshot.tables.items():
            files = tv.uris()
            seed = self.seed(name)
            if seed is not None:
                files.append(seed)
            listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            out.append(f"SET VARIABLE {variable(name)} = [{listed}]::VARCHAR[]")
        return out

    def pin(self, con: SqlConnection, snapshot: Snapshot | None = None) -> Snapshot:
        """Make ``con``'s views read ``snapshot`` (default: the newest versions)."""
        snap = snapshot or self.snapshot()
        for statement in self.pin_statements(snap):
            con.execute(statement)
        return snap


def is_vanished_file_error(exc: BaseException) -> bool:
    """True when a query failed because a file of the version it pinned is gone: a vacuum
    removed it (the query outlived ``vacuum_retention``). Pinning anew and running it again
    answers; it never answers short."""
    text = str(exc)
    vanished = (
        "No such file or directory" in text
        or "No files found that match" in text
        or "HTTP 404" in text  # an object store: "HTTP GET error reading … (HTTP 404 Not Found)"
        or "NoSuchKey" in text
    )
    return vanished and ".parquet" in text


def _data_file(add: Mapping[str, Any], base: str, spec: Table) -> DataFile:
    path = unquote(add["path"])
    stats = json.loads(add.get("stats") or "{}")
    first = (stats.get("minValues") or {}).get(spec.time_lake_column)
    return DataFile(
        path=path,
        uri=f"{base}/{path}",
        size=int(add.get("size") or 0),
        rows=int(stats.get("numRecords") or 0),
        modified_ms=int(add.get("modificationTime") or 0),
        day=str((add.get("partitionValues") or {}).get(PARTITION)),
        first_time=int(first or 0),
    )


def _millis(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    return int(value.timestamp() * 1000)
