"""The converter process of one lane: WAL records in, data files and manifests out.

It follows its lane's log up to the *committed* position the writer publishes (bytes past it
may not be durable yet), turns each record into rows with the handler of its kind, buffers
them, and flushes when ``flush_rows`` rows (or ``flush_bytes`` of them) wait or
``flush_interval`` passed. A flush writes each table partition's rows as a data file in the
table's location and then one **manifest** (``ingest.lake.manifest``) naming the files and
the WAL range they hold. The server's committer (``ingest.lake.committer``) commits manifests
to the Delta tables exactly once and then advances the lane's checkpoint; files that no
manifest names are never committed, so a crash mid-flush leaves nothing visible, and on
start-up the converter resumes after the newest manifest (or the checkpoint).

A flush the disk refuses (ENOSPC, EDQUOT, EIO: a full lake) is undone the same way at once,
without a restart: its files leave the lake, the rows stay buffered, the converter stops
reading the WAL (the WAL holds the rest) and tries again every ``FLUSH_RETRY`` seconds;
``FLUSH_ERRNO`` tells the runtime why meanwhile (readiness, metrics). An undo that fails too
ends the process, and the restarted converter recovers as after a crash.

A record *kind* maps to a handler producing rows for one table (``HANDLERS``: spans, signals,
cost entries; ``register_kind`` adds more). Handlers are named by import path because
the process is spawned: the registry is handed to the child explicitly.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import importlib
import itertools
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import pyarrow as pa

from ingest import diskfaults
from ingest.heap import release_free_memory
from ingest.lake.files import FileWriter, NewFile
from ingest.lake.manifest import Manifest, last_end, write_manifest
from ingest.lake.parquet import FLUSH_LEVEL, conform
from ingest.wal.log import KIND_COSTS, KIND_SIGNALS, KIND_TRACES, WalReader, list_segments
from schemas.lake import SPANS, TABLES
from schemas.location import LakeLocation
from schemas.settings import Settings

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.json"
CONVERT_LOCK = "convert.lock"
QUARANTINE_DIR = "_quarantine"
#: Test hook: seconds to sleep between publishing the files of one flush (crash tests kill
#: the process inside a flush with it).
FLUSH_SLEEP_ENV = "TASKLAKE_TEST_FLUSH_SLEEP"

DAY_NS = 86_400 * 10**9
_IDLE_SLEEP = 0.01
#: Seconds between attempts at a flush the disk refused.
FLUSH_RETRY = 1.0
_READ_BYTES = 16 * 1024 * 1024
#: Once idle after a flush of at least this many bytes, freed memory goes back to the OS
#: (else a converter stays at the peak of its largest flush).
_RELEASE_AFTER_BYTES = 1024 * 1024

# Slots of a lane's shared status array (multiprocessing.RawArray('q')): one writer each.
COMMITTED = 0  # main process: durable end of the WAL
CHECKPOINT_POS = 1  # committer (main process): WAL position fully committed to the lake
FILES = 2  # committer: files committed
ROWS = 3  # committer: rows committed
LAST_FLUSH_MS = 4  # converter: wall time of the last flush
RECOVERED = 5  # converter: 1 once it resumed after its last manifest and follows the WAL
PID = 6  # converter: its pid
QUARANTINED = 7  # converter: records it could not convert (kept in _quarantine)
READ_POS = 8  # converter: WAL position read so far
STOP = 9  # main process: 1 = convert everything committed, flush, exit
FLUSH_ERRNO = 10  # converter: errno of the last flush if it failed (-1: no errno), else 0
FLUSH_FAILURES = 11  # converter: flushes the disk refused
PUBLISHED_POS = 12  # converter: WAL position whose rows are in files named by a manifest
STATUS_SLOTS = 13


class RecordHandler(Protocol):
    """Turns one WAL record of its kind into rows of ``table``."""

    table: str
    #: Timestamp column whose UTC date picks the partition.
    time_column: str

    def rows(self, payload: memoryview, time_ms: int) -> pa.RecordBatch | pa.Table | None: ...


#: kind -> "module:factory"; factory(settings) -> RecordHandler.
HANDLERS: dict[int, str] = {
    KIND_TRACES: "ingest.convert.lane:span_handler",
    KIND_SIGNALS: "ingest.wal.records:signal_handler",
    KIND_COSTS: "ingest.wal.records:cost_handler",
}


def register_kind(kind: int, factory: str) -> None:
    """Route WAL records of ``kind`` to ``factory`` ("module:function", called with the
    settings in the converter process)."""
    HANDLERS[kind] = factory


def resolve(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


class SpanHandler:
    """Kind 1: an ``ExportTraceServiceRequest`` -> normalized, priced span rows."""

    table = SPANS
    time_column = "start_time"

    def __init__(self, settings: Settings) -> None:
        from ingest.convert.normalize import Normalizer
        from ingest.convert.price import Pricer

        self._normalizer = Normalizer(settings, Pricer(settings.prices))

    def rows(self, payload: memoryview, time_ms: int) -> pa.RecordBatch:
        # the record is the request's protobuf encoding: normalize it without re-encoding
        # (upb parses any buffer; the stubs only say bytes)
        batch: pa.RecordBatch = self._normalizer.normalize_bytes(cast(bytes, payload), time_ms)
        return batch


def span_handler(settings: Settings) -> RecordHandler:
    return SpanHandler(settings)


@dataclass(frozen=True)
class LaneSpec:
    """What a converter needs to know about its lane (picklable for spawn)."""

    wal_root: str  # the receiver's WAL directory (settings.effective_wal_dir)
    writer_id: str
    lane: int

    @property
    def name(self) -> str:
        """The lane's name, and the app id of its Delta transactions."""
        return f"{self.writer_id}-{self.lane}"

    @property
    def wal_dir(self) -> Path:
        return Path(self.wal_root) / self.name


# ---------------------------------------------------------------------- lane state files


def _write_json_atomic(path: Path, doc: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_checkpoint(wal_dir: Path) -> int:
    try:
        doc = json.loads((wal_dir / CHECKPOINT).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return 0
    return int(doc["position"])


def write_checkpoint(wal_dir: Path, position: int) -> None:
    _write_json_atomic(
        wal_dir / CHECKPOINT,
        {"position": position, "at": dt.datetime.now(dt.UTC).isoformat()},
    )


def resume_position(wal_dir: Path) -> int:
    """Where a converter resumes: after the newest manifest, else at the checkpoint."""
    for leftover in wal_dir.glob("*.json.tmp"):
        leftover.unlink(missing_ok=True)
    return max(read_checkpoint(wal_dir), last_end(wal_dir))


def lane_committed(wal_dir: Path, status: Any, position: int, rows: int, files: int) -> None:
    """The committer made a lane's flushes up to ``position`` part of the lake: the lane's
    checkpoint moves there (durably first), and the WAL below it is no longer needed."""
    write_checkpoint(wal_dir, position)
    status[CHECKPOINT_POS] = position
    status[FILES] += files
    status[ROWS] += rows
    drop_segments_below(wal_dir, position)


def drop_segments_below(wal_dir: Path, position: int) -> int:
    """Delete segments wholly below ``position`` (never the newest: the writer owns it)."""
    segments = list_segments(wal_dir)
    dropped = 0
    for (_, path), (next_base, _) in itertools.pairwise(segments):
        if next_base <= position:
            path.unlink(missing_ok=True)
            dropped += 1
    return dropped


# ---------------------------------------------------------------------- the converter


class _ParentGone(Exception):
    pass


class Converter:
    """The loop of one lane's converter (runs in its own process; testable in-process)."""

    def __init__(
        self,
        spec: LaneSpec,
        settings: Settings,
        status: Any,  # RawArray('q', STATUS_SLOTS) or a list in tests
        *,
        handlers: Mapping[int, RecordHandler],
        parent_pid: int | None = None,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.status = status
        self.handlers = handlers
        self.parent_pid = parent_pid
        self.writer = FileWriter(LakeLocation.parse(settings.lake))
        self.wal_dir = spec.wal_dir
        self.reader = WalReader(self.wal_dir)
        self.buffers: dict[str, list[pa.RecordBatch | pa.Table]] = {}
        self.buffered_rows = 0
        self.buffered_bytes = 0
        self.first_buffered_at: float | None = None
        self.release_due = False
        self.retry_at: float | None = None  # a refused flush waits for this monotonic time
        self.published = 0
        self.position = 0
        self.flush_sleep = float(os.environ.get(FLUSH_SLEEP_ENV, "0") or 0)

    # -------------------------------------------------------------- lifecycle

    def recover(self) -> None:
        self.published = resume_position(self.wal_dir)
        self.position = self.published
        self.status[PUBLISHED_POS] = self.published
        self.status[READ_POS] = self.position
        self.status[PID] = os.getpid()
        self.status[RECOVERED] = 1

    def run(self) -> None:
        """Follow the WAL until told to stop (after draining) or the parent dies."""
        try:
            while True:
                self._check_parent()
                committed = int(self.status[COMMITTED])
                progressed = False
                if self.position < committed and self.retry_at is None:
                    progressed = self.step(committed)
                if self._should_flush():
                    self.flush()
                if not progressed:
                    if self.status[STOP] and self.position >= int(self.status[COMMITTED]):
                        self.flush()
                        return
                    if self.release_due and not self.buffers:
                        self.release_due = False
                        release_free_memory()
                    time.sleep(_IDLE_SLEEP)
        finally:
            self.reader.close()

    def _check_parent(self) -> None:
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            raise _ParentGone

    # -------------------------------------------------------------- converting

    def step(self, committed: int) -> bool:
        """Convert the committed records of one read; True if the position moved."""
        chunk = self.reader.read(self.position, committed, _READ_BYTES)
        if chunk is None:
            raise RuntimeError(
                f"lane {self.spec.name}: WAL position {self.position} is in no segment"
            )
        records, next_pos = chunk
        moved = next_pos != self.position or bool(records)
        for rec in records:
            self._check_parent()
            self._convert(rec.kind, rec.payload, rec.time_ms, rec.start)
            self.position = rec.end
            if (
                self.buffered_rows >= self.settings.flush_rows
                or self.buffered_bytes >= self.settings.flush_bytes
            ) and not self.flush():
                break  # the disk refused it: read no further until it is published
        else:
            self.position = next_pos
        self.status[READ_POS] = self.position
        return moved

    def _convert(self, kind: int, payload: memoryview, time_ms: int, start: int) -> None:
        handler = self.handlers.get(kind)
        if handler is None:
            self._quarantine(payload, kind, start, f"no handler for record kind {kind}")
            return
        try:
            rows = handler.rows(payload, time_ms)
        except Exception as exc:
            self._quarantine(payload, kind, start, f"{type(exc).__name__}: {exc}", exc_info=True)
            return
        if rows is None or rows.num_rows == 0:
            return
        self.buffers.setdefault(handler.table, []).append(rows)
        self.buffered_rows += rows.num_rows
        self.buffered_bytes += rows.nbytes
        if self.first_buffered_at is None:
            self.first_buffered_at = time.monotonic()

    def _quarantine(
        self, payload: memoryview, kind: int, start: int, why: str, *, exc_info: bool = False
    ) -> None:
        """Keep a record we cannot convert (it was acknowledged: never drop it silently).

        Validation decides what is stored, so this is for bugs only: logged at ERROR and
        counted (``quarantined_records`` in ``/metrics``); the record stays in the WAL
        directory's ``_quarantine/`` (local disk) to be converted again once the bug is fixed.
        """
        directory = Path(self.spec.wal_root) / QUARANTINE_DIR
        directory.mkdir(parents=True, exist_ok=True)
        stem = directory / f"{self.spec.name}-{start:020d}-kind{kind}"
        stem.with_suffix(".bin").write_bytes(payload)
        stem.with_suffix(".txt").write_text(why + "\n", encoding="utf-8")
        self.status[QUARANTINED] += 1
        log.error(
            "lane %s: record at %d quarantined in %s (a bug: please report it): %s",
            self.spec.name,
            start,
            stem.with_suffix(".bin"),
            why,
            exc_info=exc_info,
        )

    def _should_flush(self) -> bool:
        if self.retry_at is not None:
            return time.monotonic() >= self.retry_at
        if self.first_buffered_at is not None:
            waited = time.monotonic() - self.first_buffered_at
            return waited >= self.settings.flush_interval
        # nothing buffered but the position moved (empty or quarantined records)
        return self.position > self.published

    # -------------------------------------------------------------- flushing

    def flush(self) -> bool:
        """Write everything buffered as data files and one manifest; the committer commits.

        Once the manifest is durable the flush is safe: the files are committed exactly once
        (``ingest.lake.committer``) even if this process dies now. False when the lake's
        storage refused (the files written are deleted, the rows stay buffered, retried in
        ``FLUSH_RETRY``); files a crash leaves behind are never committed (a vacuum removes
        them).
        """
        written: list[NewFile] = []
        try:
            self._write(written)
        except OSError as exc:
            self._refused(exc, written)
            return False
        if self.retry_at is not None:
            log.warning("lane %s: the lake takes files again; flushed", self.spec.name)
            self.retry_at = None
        self.status[FLUSH_ERRNO] = 0
        return True

    def _refused(self, exc: OSError, written: list[NewFile]) -> None:
        log.error(
            "lane %s: could not write to the lake (%s); retrying in %.0f s",
            self.spec.name,
            exc,
            FLUSH_RETRY,
        )
        self.status[FLUSH_ERRNO] = exc.errno or -1
        self.status[FLUSH_FAILURES] += 1
        self.retry_at = time.monotonic() + FLUSH_RETRY
        for f in written:  # no manifest names them: nobody would commit them
            with contextlib.suppress(OSError):
                self.writer.delete(f.table, f.path)

    def _write(self, files: list[NewFile]) -> None:
        end = self.position
        if end <= self.published and not self.buffers:
            return
        diskfaults.check("lake")
        for table_name, parts in self.buffers.items():
            spec = TABLES[table_name]
            tables = [p if isinstance(p, pa.Table) else pa.Table.from_batches([p]) for p in parts]
            merged = spec.to_lake(pa.concat_tables([conform(t, spec.schema) for t in tables]))
            for day, rows in spec.split_by_day(merged):
                if files and self.flush_sleep:
                    time.sleep(self.flush_sleep)
                # an orphan stops at once, even mid-flush: its files are never committed
                self._check_parent()
                files.append(
                    self.writer.write(
                        spec,
                        day,
                        rows,
                        prefix=self.spec.name,
                        row_group_rows=self.settings.row_group_rows,
                        level=FLUSH_LEVEL,
                        metadata={
                            "tasklake.writer": self.spec.writer_id,
                            "tasklake.lane": str(self.spec.lane),
                            "tasklake.wal_start": str(self.published),
                            "tasklake.wal_end": str(end),
                        },
                    )
                )
        write_manifest(self.wal_dir, Manifest(self.spec.name, self.published, end, tuple(files)))
        self.published = end
        self.buffers.clear()
        self.release_due |= self.buffered_bytes >= _RELEASE_AFTER_BYTES
        self.buffered_rows = 0
        self.buffered_bytes = 0
        self.first_buffered_at = None
        self.status[PUBLISHED_POS] = end
        if files:
            self.status[LAST_FLUSH_MS] = int(time.time() * 1000)


# ---------------------------------------------------------------------- process entry


def build_handlers(settings: Settings, factories: Mapping[int, str]) -> dict[int, RecordHandler]:
    return {kind: resolve(path)(settings) for kind, path in factories.items()}


@contextlib.contextmanager
def _convert_lock(spec: LaneSpec) -> Any:
    """One converter per lane, even while an orphan of a killed server is still exiting."""
    spec.wal_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(spec.wal_dir / CONVERT_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("lane %s: waiting for the previous converter to exit", spec.name)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@dataclass(frozen=True)
class ConverterJob:
    """Everything a spawned converter gets besides its shared status array."""

    spec: LaneSpec
    settings: Settings
    parent_pid: int
    factories: Mapping[int, str]


def converter_main(job: ConverterJob, status: Any) -> None:
    """Entry point of the spawned converter process."""
    spec, settings, parent_pid = job.spec, job.settings, job.parent_pid
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s tasklake-convert[{spec.name}] %(levelname)s %(message)s",
    )
    status[PID] = os.getpid()
    handlers = build_handlers(settings, job.factories)
    with _convert_lock(spec):
        if os.getppid() != parent_pid:
            return
        converter = Converter(spec, settings, status, handlers=handlers, parent_pid=parent_pid)
        converter.recover()
        try:
            converter.run()
        except _ParentGone:
            log.warning("lane %s: server process is gone; exiting", spec.name)
            os._exit(3)
