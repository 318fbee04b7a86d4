"""The lake as tasklake wrote it before Delta tables, read-only: what ``tasklake migrate`` reads.

```
lake/<table>/date=D -> ../_gen/<table>/date=D/g000007/   a relative symlink to a generation
lake/_gen/<table>/date=D/g000007/<writer>-<ulid>.parquet the partition's files, in Arrow form
lake/_gen/.../g000007/_rollup_*/                         roll-up companions (derived: skipped)
lake/<table>/date=1970-01-01/_schema-v<N>.parquet        the seed: zero rows (skipped)
lake/_wal/ _tmp/ _store/ views.sql                       WAL (``old_wal``), staging, cache, views
```

A partition is resolved once (one ``readlink``) and listed inside that generation, as the old
readers did: listing through the symlink could mix two generations of a compaction. Besides
symlinks, any plain ``date=`` directory holds data files directly (the seed, hand-made ones).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ingest.lake.migrate.errors import LakeChanged, MigrationError
from schemas.lake import PARTITION, TABLES

GEN_DIR = "_gen"
WAL_DIR = "_wal"
#: What the old layout kept beside its tables; ``migrate`` moves it aside with them.
LEFTOVERS = (GEN_DIR, "_tmp", WAL_DIR, "_store", "views.sql")
DELTA_LOG = "_delta_log"


class TableLayout(Enum):
    ABSENT = "absent"
    OLD = "old"  # partition directories, no Delta log
    DELTA = "delta"
    MIXED = "mixed"  # a Delta log beside partition symlinks: written by both versions


@dataclass(frozen=True)
class OldFile:
    path: str  # absolute, inside the generation
    rows: int  # from the footer


@dataclass(frozen=True)
class OldPartition:
    table: str
    name: str  # date=YYYY-MM-DD
    generation: str  # the directory it named when listed, relative to the lake
    files: tuple[OldFile, ...]

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


def table_layout(root: Path, table: str) -> TableLayout:
    """How ``root/table`` is laid out (a few stats; no listing of files)."""
    directory = root / table
    if not directory.is_dir():
        return TableLayout.ABSENT
    partitions = [e for e in os.scandir(directory) if e.name.startswith(f"{PARTITION}=")]
    if not (directory / DELTA_LOG).is_dir():
        return TableLayout.OLD
    if any(e.is_symlink() for e in partitions):
        return TableLayout.MIXED
    return TableLayout.DELTA


def old_tables(root: Path) -> list[str]:
    """The tables of ``root`` still in the old layout (or mixed), in ``TABLES`` order."""
    return [t for t in TABLES if table_layout(root, t) in {TableLayout.OLD, TableLayout.MIXED}]


def is_old_layout(root: Path) -> bool:
    """True when a table of the lake has partitions but no Delta log (or both)."""
    for table in TABLES:
        layout = table_layout(root, table)
        if layout is TableLayout.MIXED:
            return True
        if layout is TableLayout.OLD and any(
            e.name.startswith(f"{PARTITION}=") for e in os.scandir(root / table)
        ):
            return True
    return False


def partitions(
    root: Path, table: str, withdrawn: Collection[tuple[str, str, str]] = ()
) -> list[OldPartition]:
    """Every partition of an old-layout table with its current data files, sorted by name.

    Skipped: seed files (``_schema*``, zero rows), hidden and temporary names, roll-up
    companion directories, and ``withdrawn`` files (``(table, partition, name)``: an unfinished
    flush the old converter would have taken back, see ``old_wal``).
    """
    out = []
    for entry in sorted_entries(root / table):
        if not entry.name.startswith(f"{PARTITION}="):
            continue
        generation = _resolve(entry)
        try:
            files = tuple(
                OldFile(e.path, _rows(e.path))
                for e in sorted(os.scandir(generation), key=lambda e: e.name)
                if e.name.endswith(".parquet")
                and not e.name.startswith(("_", "."))
                and e.is_file()
                and (table, entry.name, e.name) not in withdrawn
            )
        except FileNotFoundError as exc:
            raise LakeChanged(
                f"{exc.filename or generation} vanished while the lake was listed: is the old"
                " tasklake (or its compaction) running? Stop it and run tasklake migrate again"
            ) from exc
        out.append(OldPartition(table, entry.name, os.path.relpath(generation, root), files))
    return out


def _rows(path: str) -> int:
    try:
        return int(pq.read_metadata(path).num_rows)
    except pa.ArrowException as exc:
        raise MigrationError(
            f"{path}: not a readable Parquet file ({exc}); nothing was changed"
        ) from exc


def sorted_entries(directory: Path) -> list[os.DirEntry[str]]:
    """The entries of ``directory`` by name (none when it does not exist)."""
    try:
        return sorted(os.scandir(directory), key=lambda e: e.name)
    except FileNotFoundError:
        return []


def _resolve(entry: os.DirEntry[str]) -> str:
    """The directory a partition entry names now: one ``readlink`` (partitions are relative
    symlinks into ``_gen``, or plain directories)."""
    if not entry.is_symlink():
        return entry.path
    target = os.readlink(entry.path)
    return os.path.normpath(os.path.join(os.path.dirname(entry.path), target))


def fingerprint(parts: Sequence[OldPartition]) -> str:
    """Names the exact files a listing found: equal fingerprints, equal rows to migrate."""
    digest = hashlib.sha256()
    for p in parts:
        digest.update(f"{p.name}\0{p.generation}\0".encode())
        for f in p.files:
            digest.update(f"{os.path.basename(f.path)}\0{f.rows}\0".encode())
    return digest.hexdigest()
