"""The old lake's write-ahead log: whether a server holds it, and what it still holds.

The old layout kept each lane's log in ``lake/_wal/<writer>-<lane>/`` in today's format, with
``checkpoint.json`` (the WAL position whose rows were all published) and, during a flush,
``pending.json`` (the files being published and the WAL end they hold). Records past the
checkpoint were acknowledged but are in no data file yet: ``migrate`` converts them with
today's handlers (``ingest.convert.lane.HANDLERS``, the same normalizing and pricing the old
converter ran). A ``pending.json`` beyond the checkpoint is a flush a crash interrupted: the
old converter would have withdrawn its files and converted the records again, so ``migrate``
skips those files (``OldLane.withdrawn``) and converts the records.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ingest.convert.lane import CONVERT_LOCK, RecordHandler, read_checkpoint
from ingest.lake.migrate.errors import LakeBusy, UnconvertibleRecord
from ingest.lake.migrate.old_layout import WAL_DIR, sorted_entries
from ingest.runtime import WRITER_LOCK
from ingest.wal.log import log_end, read_records

PENDING = "pending.json"


@dataclass(frozen=True)
class OldLane:
    name: str  # <writer>-<lane>
    directory: Path
    checkpoint: int  # everything before it is in data files
    end: int  # end of the last complete record
    withdrawn: frozenset[tuple[str, str, str]]  # (table, partition, file name) to skip

    @property
    def backlog(self) -> int:
        """Bytes of records acknowledged but not in any data file."""
        return max(0, self.end - self.checkpoint)


def lanes(root: Path) -> list[OldLane]:
    """Every lane of the old WAL, sorted by name."""
    out = []
    for entry in sorted_entries(root / WAL_DIR):
        if entry.name.startswith(("_", ".")) or not entry.is_dir():
            continue  # _quarantine: records the old converter could not convert, kept aside
        directory = Path(entry.path)
        checkpoint = read_checkpoint(directory)
        out.append(
            OldLane(
                entry.name,
                directory,
                checkpoint,
                log_end(directory),
                _withdrawn(directory, checkpoint),
            )
        )
    return out


def _withdrawn(directory: Path, checkpoint: int) -> frozenset[tuple[str, str, str]]:
    try:
        doc = json.loads((directory / PENDING).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return frozenset()
    if int(doc["wal_end"]) <= checkpoint:
        return frozenset()  # the flush finished; only its bookkeeping was left
    return frozenset((f["table"], f["partition"], f["name"]) for f in doc["files"])


def fingerprint(found: Sequence[OldLane]) -> str:
    """Names what the WAL holds for migration: equal fingerprints, equal records."""
    digest = hashlib.sha256()
    for lane in found:
        digest.update(f"{lane.name}\0{lane.checkpoint}\0{lane.end}\0".encode())
        digest.update(repr(sorted(lane.withdrawn)).encode())
    return digest.hexdigest()


@contextlib.contextmanager
def hold(root: Path) -> Iterator[None]:
    """Hold every lane's writer and converter lock for the duration, or raise ``LakeBusy``:
    a running server holds them, and one started meanwhile is refused (``LakeLocked``)."""
    with contextlib.ExitStack() as stack:
        wal = root / WAL_DIR
        names = sorted(p.name for p in wal.iterdir()) if wal.is_dir() else []
        for name in names:
            for lock in (WRITER_LOCK, CONVERT_LOCK):
                path = wal / name / lock
                if not path.is_file():
                    continue
                fd = os.open(path, os.O_RDONLY)
                stack.callback(os.close, fd)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise LakeBusy(
                        f"a tasklake server is running on {root} (it holds {path}); stop it,"
                        " then run tasklake migrate again"
                    ) from None
        yield


def convert(lane: OldLane, handlers: Mapping[int, RecordHandler]) -> Iterator[tuple[str, pa.Table]]:
    """The rows of the lane's records past its checkpoint, as ``(table, rows)`` in the table's
    row schema, record by record (memory: one record's rows)."""
    for record in read_records(lane.directory, lane.checkpoint, lane.end):
        handler = handlers.get(record.kind)
        where = f"lane {lane.name}, WAL position {record.start}"
        if handler is None:
            raise UnconvertibleRecord(where, f"no handler for record kind {record.kind}")
        try:
            rows = handler.rows(record.payload, record.time_ms)
        except Exception as exc:
            raise UnconvertibleRecord(where, f"{type(exc).__name__}: {exc}") from exc
        if rows is None or rows.num_rows == 0:
            continue
        yield handler.table, rows if isinstance(rows, pa.Table) else pa.Table.from_batches([rows])
