"""One consistent listing of the lake's files, pinned for a query.

Why not a glob: DuckDB's local glob reads a partition directory, then stats each name through
the partition path. Partitions are symlinks to generations (``ingest.storage``); a compaction
swap between the two makes the glob skip the merged inputs without an error, and that query
misses their rows. No ordering of the swap avoids it: the listing and the stat resolve the
same mutable path at two moments.

So the views read their files through DuckDB variables when they are set: ``spans`` reads
``getvariable('tasklake_spans')`` if set, else the glob (``scan_files``). ``pin`` lists each
partition from its generation resolved *once* and names files by their path inside that
generation, which never loses a file until garbage collection removes the whole generation
(``compaction_grace`` after it was superseded). A pinned query therefore reads one whole
generation of every partition; if it outlives the grace, opening a collected file fails
("No such file", ``schemas.lake.is_vanished_file_error``) and a retry pins again. Every query
tasklake runs is pinned (``service.db``); a DuckDB client that does not pin gets the glob.

Variables belong to one DuckDB connection (each cursor is one): pin the cursor that queries.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from schemas.lake import COMPANIONS, TABLES, companion_glob, table_glob

PREFIX = "tasklake_"


class SqlConnection(Protocol):
    def execute(self, query: str, /) -> object: ...


@dataclass(frozen=True)
class Partition:
    """A partition as one generation: ``files`` are names of entries in ``generation``."""

    name: str  # date=YYYY-MM-DD
    path: str  # <lake>/<table>/<name>: the symlink (or plain directory) readers see
    generation: str  # the directory it pointed at when listed
    files: tuple[os.DirEntry[str], ...]


def partitions(root: Path | str) -> Iterator[Partition]:
    """Each ``date=`` partition of a table directory, resolved to its generation once.

    Listing and stat-ing inside the resolved generation cannot mix two generations; listing
    through the symlink can (see the module docstring). Sorted by partition name.
    """
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except FileNotFoundError:
        return
    for part in entries:
        if not part.name.startswith("date="):
            continue
        for _ in range(3):
            try:
                generation = _resolve(part)
                files = tuple(e for e in os.scandir(generation) if e.name.endswith(".parquet"))
                break
            except FileNotFoundError:
                # superseded and collected between resolving and listing (a grace shorter
                # than that moment): resolve again, the partition points elsewhere now
                continue
        else:
            continue  # the partition itself is gone
        yield Partition(part.name, part.path, generation, files)


def _resolve(part: os.DirEntry[str]) -> str:
    """The directory a partition entry names now: one ``readlink`` (partitions are relative
    symlinks into ``_gen``, or plain directories)."""
    if not part.is_symlink():
        return part.path
    target = os.readlink(part.path)
    return os.path.normpath(os.path.join(os.path.dirname(part.path), target))


def variable(table: str, subdir: str | None = None) -> str:
    """The DuckDB variable holding the pinned files of a table or of a companion subdir."""
    return PREFIX + table + (f"__{subdir.strip('_')}" if subdir else "")


def _glob(lake: str | os.PathLike[str], table: str, subdir: str | None) -> str:
    glob = companion_glob(lake, table, subdir) if subdir else table_glob(lake, table)
    return "'" + glob.replace("'", "''") + "'"


def scan_files(lake: str | os.PathLike[str], table: str, subdir: str | None = None) -> str:
    """The argument of a view's ``read_parquet``: the pinned list, else the glob (a client
    that does not pin). DuckDB fails on a listed file that is gone."""
    return f"coalesce(getvariable('{variable(table, subdir)}'), [{_glob(lake, table, subdir)}])"


def listed_files(lake: str | os.PathLike[str], table: str, subdir: str | None = None) -> str:
    """The same files as a list value, for SQL that reasons about file names. Not
    ``glob(<pinned list>)``: that silently drops a listed file that is gone."""
    glob = _glob(lake, table, subdir)
    return (
        f"coalesce(getvariable('{variable(table, subdir)}'), (SELECT list(file) FROM glob({glob})))"
    )


def snapshot(lake: Path | str) -> dict[str, list[str]]:
    """Every table's and companion's files (schema seeds included), by variable name.

    Each table is listed partition by partition; a data file and its companions come from the
    same generation. Files are absolute paths inside their generation.
    """
    root = Path(lake).resolve()
    out: dict[str, list[str]] = {}
    for table in TABLES:
        subdirs = [s for (t, s) in COMPANIONS if t == table]
        data: list[str] = []
        companions: dict[str, list[str]] = {s: [] for s in subdirs}
        for part in partitions(root / table):
            data.extend(
                os.path.join(part.generation, e.name)
                for e in part.files
                if not e.name.startswith(".")
            )
            for subdir in subdirs:
                directory = os.path.join(part.generation, subdir)
                try:
                    names = [e.name for e in os.scandir(directory) if e.name.endswith(".parquet")]
                except FileNotFoundError:
                    continue
                companions[subdir].extend(
                    os.path.join(directory, n) for n in names if not n.startswith(".")
                )
        out[variable(table)] = sorted(data)
        for subdir, files in companions.items():
            out[variable(table, subdir)] = sorted(files)
    return out


def pin_statements(lake: Path | str) -> list[str]:
    """``SET VARIABLE`` statements that pin a snapshot of ``lake`` (an empty list, a lake
    without its schema seeds, is left to the glob)."""
    out = []
    for name, files in snapshot(lake).items():
        if files:
            # one literal split in SQL: a Python list parameter of N strings costs ~40x more,
            # and any parameter adds a prepare (0.3 ms) per variable
            joined = "\n".join(files).replace("'", "''")
            out.append(f"SET VARIABLE {name} = string_split('{joined}', chr(10));")
        else:
            out.append(f"RESET VARIABLE {name};")
    return out


def pin(con: SqlConnection, lake: Path | str) -> None:
    """Pin a snapshot of ``lake`` on ``con``: from now on its queries read these files
    (pin again before each query to see newer ones)."""
    for statement in pin_statements(lake):
        con.execute(statement)


def unpin(con: SqlConnection) -> None:
    """Back to the globs on ``con``."""
    for table in TABLES:
        con.execute(f"RESET VARIABLE {variable(table)}")
    for table, subdir in COMPANIONS:
        con.execute(f"RESET VARIABLE {variable(table, subdir)}")
