"""Atomic publishing and replacement of lake files, with partition generations.

Readers glob ``lake/<table>/*/*.parquet``. Each partition ``lake/<table>/date=D`` is a relative
symlink to a *generation* directory ``lake/_gen/<table>/date=D/g000007/``:

- **publish** (a converter's flush) renames complete files into the current generation under
  the partition lock and fsyncs it: a reader lists a file only once it is whole;
- **replace** (compaction) builds generation g+1 from hard links of every file of g except the
  merged inputs, plus the merged outputs, and swaps the symlink with one ``rename``: a reader
  lists either the inputs or the outputs, never both and never neither.

A superseded generation stays whole for ``compaction_grace`` before it is collected. Readers
that resolve the partition once and read inside the generation (``schemas.snapshot``: every
query tasklake runs) therefore see one whole generation, and fail with "No such file" rather
than answer wrongly if they outlive the grace. Readers that glob through the partition path
do not: DuckDB's glob reads the directory, then stats each name through the partition path
and silently skips names that no longer resolve, so a swap between the two makes that query
miss the merged inputs (an unpinned DuckDB shell, other engines).

A data file may carry *companions* (issue 3: per-file attempt roll-ups) in subdirectories of
its generation, ``g000007/_rollup/<same name>``. Companions appear and disappear with their
data file: a file published with companions goes in through a generation swap too.

Several processes (writers with different ids, ``tasklake compact``) share a lake: every
change of a partition happens under ``fcntl.flock`` on ``_gen/<table>/date=D/.lock``. The seed
partition ``date=1970-01-01`` and any other plain directory are written into directly and
never compacted. All of this stays behind this module so an object store with a manifest can
replace it (ROADMAP: s3://).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from schemas.lake import GEN_DIR, TMP_DIR

log = logging.getLogger(__name__)

_GEN_RE = re.compile(r"^g(\d{6,})$")
LOCK_NAME = ".lock"
COMPACT_LOCK_NAME = ".compact.lock"
#: ``_tmp`` leftovers younger than this are never removed, whatever the grace: an in-flight
#: file of another process may be that old.
TMP_MIN_AGE = 3600.0


@dataclass(frozen=True)
class DataFile:
    """A complete file waiting in ``_tmp`` and the name it gets in the partition."""

    tmp: Path
    name: str
    companions: Mapping[str, Path] = field(default_factory=dict)  # subdir -> tmp file


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _gen_number(name: str) -> int | None:
    m = _GEN_RE.match(name)
    return int(m.group(1)) if m else None


def gen_name(number: int) -> str:
    return f"g{number:06d}"


class Storage:
    """The file operations of one lake; cheap to create, safe to share between threads."""

    def __init__(self, lake: str | os.PathLike[str]) -> None:
        self.root = Path(lake)
        self.tmp_dir = self.root / TMP_DIR

    # ------------------------------------------------------------------ paths

    def partition_path(self, table: str, partition: str) -> Path:
        return self.root / table / partition

    def generations_path(self, table: str, partition: str) -> Path:
        return self.root / GEN_DIR / table / partition

    def tmp_path(self, prefix: str, suffix: str = ".parquet") -> Path:
        """A fresh name in ``_tmp`` (same filesystem as the lake: renames are atomic)."""
        return self.tmp_dir / f"{prefix}-{uuid.uuid4().hex[:12]}{suffix}"

    def partitions(self, table: str) -> list[str]:
        """Partition names (``date=...``) of ``table``, symlinked or plain, sorted."""
        try:
            return sorted(e.name for e in os.scandir(self.root / table) if "=" in e.name)
        except FileNotFoundError:
            return []

    def current_generation(self, table: str, partition: str) -> Path | None:
        """The generation directory the partition points at; ``None`` for a plain directory
        or a partition that does not exist yet."""
        link = self.partition_path(table, partition)
        try:
            target = os.readlink(link)
        except (FileNotFoundError, OSError):
            return None
        return (link.parent / target).resolve()

    def is_generational(self, table: str, partition: str) -> bool:
        return self.partition_path(table, partition).is_symlink()

    def list_files(self, table: str, partition: str) -> list[str]:
        """Names of the data files a reader would see in the partition now."""
        try:
            entries = os.scandir(self.partition_path(table, partition))
        except FileNotFoundError:
            return []
        with entries:
            return sorted(e.name for e in entries if e.name.endswith(".parquet") and e.is_file())

    # ------------------------------------------------------------------ locking

    @contextlib.contextmanager
    def lock(self, table: str, partition: str) -> Iterator[None]:
        """The partition lock: every change of a partition's file set happens under it."""
        gens = self.generations_path(table, partition)
        gens.mkdir(parents=True, exist_ok=True)
        fd = os.open(gens / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    @contextlib.contextmanager
    def compaction_lock(self, table: str, partition: str) -> Iterator[bool]:
        """Non-blocking: yields False when another compactor is merging this partition."""
        gens = self.generations_path(table, partition)
        gens.mkdir(parents=True, exist_ok=True)
        fd = os.open(gens / COMPACT_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ generations

    def _ensure_partition(self, table: str, partition: str) -> Path:
        """The directory to write into (under the lock): current generation or plain dir."""
        link = self.partition_path(table, partition)
        current = self.current_generation(table, partition)
        if current is not None:
            return current
        if link.is_dir():
            return link  # plain directory: the seed partition or a hand-made one
        gens = self.generations_path(table, partition)
        first = gens / gen_name(self._next_number(gens))
        first.mkdir(parents=True)
        fsync_dir(gens)
        self._point(table, partition, first)
        return first

    @staticmethod
    def _next_number(gens: Path) -> int:
        numbers = [_gen_number(e.name) for e in os.scandir(gens)] if gens.exists() else []
        return max((n for n in numbers if n is not None), default=0) + 1

    def _point(self, table: str, partition: str, gen: Path) -> None:
        """Swap the partition symlink to ``gen`` atomically, durably."""
        link = self.partition_path(table, partition)
        link.parent.mkdir(parents=True, exist_ok=True)
        target = os.path.relpath(gen, link.parent)
        # build the new link outside the table dir (a reader must never list a temp name);
        # _tmp sits at the same depth as the table dir, so the relative target reads the same
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp_dir / f".link-{table}-{partition}-{uuid.uuid4().hex[:8]}"
        os.symlink(target, tmp)
        os.replace(tmp, link)
        fsync_dir(link.parent)

    def _swap(self, table: str, partition: str, remove: set[str], add: Sequence[DataFile]) -> bool:
        """Under the lock: the next generation = current - ``remove`` + ``add``."""
        current = self.current_generation(table, partition)
        if current is None:
            raise ValueError(f"{table}/{partition} is not a generational partition")
        present = {e.name for e in os.scandir(current) if e.is_file()}
        if not remove <= present:
            return False
        gens = current.parent
        new = gens / gen_name(self._next_number(gens))
        new.mkdir()
        subdirs = [e.name for e in os.scandir(current) if e.is_dir()]
        for name in present - remove:
            if not name.startswith("."):
                os.link(current / name, new / name)
        for sub in subdirs:
            (new / sub).mkdir()
            for entry in os.scandir(current / sub):
                if entry.name not in remove:
                    os.link(entry.path, new / sub / entry.name)
        self._move_in(new, add)
        for sub in {s for s in subdirs} | {s for f in add for s in f.companions}:
            if (new / sub).is_dir():
                fsync_dir(new / sub)
        fsync_dir(new)
        fsync_dir(gens)
        self._point(table, partition, new)
        os.utime(current)  # superseded now: the grace period counts from here
        return True

    @staticmethod
    def _move_in(directory: Path, files: Sequence[DataFile]) -> None:
        for f in files:
            for sub, tmp in f.companions.items():
                (directory / sub).mkdir(exist_ok=True)
                os.replace(tmp, directory / sub / f.name)
            os.replace(f.tmp, directory / f.name)

    # ------------------------------------------------------------------ operations

    def publish(self, table: str, partition: str, files: Sequence[DataFile]) -> list[Path]:
        """Make complete files visible in a partition; return their final paths.

        Plain files are renamed into the current generation; files with companions go in
        through a generation swap, so a reader sees a file and its companions together.
        """
        if not files:
            return []
        with self.lock(table, partition):
            target = self._ensure_partition(table, partition)
            generational = self.is_generational(table, partition)
            if generational and any(f.companions for f in files):
                self._swap(table, partition, set(), files)
                target = self.current_generation(table, partition) or target
            else:
                self._move_in(target, files)
                for sub in {s for f in files for s in f.companions}:
                    fsync_dir(target / sub)
                fsync_dir(target)
            return [target / f.name for f in files]

    def unpublish(self, table: str, partition: str, names: Sequence[str]) -> int:
        """Remove data files (and their companions) from the partition; return how many
        existed. Used by recovery to undo a flush that crashed half-published."""
        removed = 0
        if not self.partition_path(table, partition).exists():
            return 0
        with self.lock(table, partition):
            directory = self.current_generation(table, partition) or self.partition_path(
                table, partition
            )
            subdirs = [e.path for e in os.scandir(directory) if e.is_dir()]
            for name in names:
                for sub in subdirs:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(sub, name))
                try:
                    os.unlink(directory / name)
                    removed += 1
                except FileNotFoundError:
                    pass
            fsync_dir(directory)
        return removed

    def replace(
        self, table: str, partition: str, remove: Sequence[str], add: Sequence[DataFile]
    ) -> bool:
        """Atomically swap ``remove`` (with companions) for ``add`` in the partition.

        False, with nothing changed, when one of ``remove`` is no longer there (another
        compactor merged it first): merging it again would duplicate its rows.
        """
        with self.lock(table, partition):
            return self._swap(table, partition, set(remove), add)

    # ------------------------------------------------------------------ housekeeping

    def collect_garbage(self, grace: float, now: float | None = None) -> int:
        """Delete superseded generations older than ``grace`` seconds and stale ``_tmp``
        leftovers; return how many entries were removed."""
        now = time.time() if now is None else now
        removed = 0
        gen_root = self.root / GEN_DIR
        for table_dir in _subdirs(gen_root):
            for part_dir in _subdirs(table_dir):
                table, partition = table_dir.name, part_dir.name
                with self.lock(table, partition):
                    current = self.current_generation(table, partition)
                    for gen in _subdirs(part_dir):
                        if _gen_number(gen.name) is None or gen == current:
                            continue
                        try:
                            age = now - gen.stat().st_mtime
                        except FileNotFoundError:
                            continue
                        if age >= grace:
                            shutil.rmtree(gen, ignore_errors=True)
                            removed += 1
        for entry in _entries(self.tmp_dir):
            try:
                age = now - entry.lstat().st_mtime
            except FileNotFoundError:
                continue
            if age >= max(grace, TMP_MIN_AGE):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed += 1
        return removed


def _subdirs(path: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []


def _entries(path: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(path)]
    except FileNotFoundError:
        return []
