"""The converter process of one lane: WAL records in, published Parquet files out.

It follows its lane's log up to the *committed* position the writer publishes (bytes past it
may not be durable yet), turns each record into rows with the handler of its kind, buffers
them, and flushes when ``flush_rows`` rows (or ``flush_bytes`` of them) wait or
``flush_interval`` passed. A flush is
all-or-nothing across crashes::

    write files to _tmp (fsync)  ->  pending.json (files + WAL end, fsync)  ->  publish each
    ->  checkpoint.json (WAL end, fsync + rename)  ->  delete pending.json  ->  drop segments

On start-up a leftover ``pending.json`` whose WAL end is beyond the checkpoint means the
flush did not finish: its files that made it into the lake are removed and the records are
converted again from the checkpoint. Every acknowledged record is therefore published exactly
once. Compaction leaves files named in any ``pending.json`` alone.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import pyarrow as pa
import pyarrow.compute as pc
from ulid import ULID

from ingest import diskfaults
from ingest.heap import release_free_memory
from ingest.parquet import FLUSH_LEVEL, conform, write_parquet
from ingest.storage import DataFile, Storage, fsync_dir
from ingest.wal import KIND_COSTS, KIND_SIGNALS, KIND_TRACES, WalReader, list_segments
from schemas.lake import SPANS, TABLES, partition_name
from schemas.settings import Settings

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.json"
PENDING = "pending.json"
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
CHECKPOINT_POS = 1  # converter: WAL position fully published
FILES = 2  # converter: files published
ROWS = 3  # converter: rows published
LAST_FLUSH_MS = 4  # converter: wall time of the last publish
RECOVERED = 5  # converter: 1 once pending work is undone and it follows the WAL
PID = 6  # converter: its pid
QUARANTINED = 7  # converter: records it could not convert (kept in _quarantine)
READ_POS = 8  # converter: WAL position read so far
STOP = 9  # main process: 1 = convert everything committed, flush, exit
FLUSH_ERRNO = 10  # converter: errno of the last flush if it failed (-1: no errno), else 0
FLUSH_FAILURES = 11  # converter: flushes the disk refused
STATUS_SLOTS = 12


class RecordHandler(Protocol):
    """Turns one WAL record of its kind into rows of ``table``."""

    table: str
    #: Timestamp column whose UTC date picks the partition.
    time_column: str

    def rows(self, payload: memoryview, time_ms: int) -> pa.RecordBatch | pa.Table | None: ...


#: kind -> "module:factory"; factory(settings) -> RecordHandler.
HANDLERS: dict[int, str] = {
    KIND_TRACES: "ingest.convert:span_handler",
    KIND_SIGNALS: "ingest.records:signal_handler",
    KIND_COSTS: "ingest.records:cost_handler",
}

#: Companion hook: data file (in _tmp) -> {subdir: companion file in _tmp}; see ingest.storage.
CompanionHook = Callable[[Path], dict[str, Path]]


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
        from ingest.normalize import Normalizer
        from ingest.price import Pricer

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

    lake: str
    writer_id: str
    lane: int

    @property
    def name(self) -> str:
        return f"{self.writer_id}-{self.lane}"

    @property
    def wal_dir(self) -> Path:
        from schemas.lake import WAL_DIR

        return Path(self.lake) / WAL_DIR / self.name


# ---------------------------------------------------------------------- lane state files


def _write_json_atomic(path: Path, doc: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


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


def read_pending(wal_dir: Path) -> dict[str, Any] | None:
    try:
        doc: dict[str, Any] = json.loads((wal_dir / PENDING).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return doc


def pending_names(lake: Path) -> set[tuple[str, str, str]]:
    """(table, partition, name) of every file named in any lane's pending.json: files that
    may still be withdrawn by a recovery, which compaction must not touch."""
    from schemas.lake import WAL_DIR

    out: set[tuple[str, str, str]] = set()
    try:
        lanes = list(os.scandir(lake / WAL_DIR))
    except FileNotFoundError:
        return out
    for lane in lanes:
        if not lane.is_dir():
            continue
        try:
            doc = read_pending(Path(lane.path))
        except (OSError, ValueError) as exc:
            # unreadable: be safe, treat the whole lake as pending for this round
            raise RuntimeError(f"cannot read {lane.path}/{PENDING}: {exc}") from exc
        if doc:
            out.update((f["table"], f["partition"], f["name"]) for f in doc["files"])
    return out


def recover_lane(spec: LaneSpec, storage: Storage) -> int:
    """Undo a half-done flush and drop this lane's temp files; return the checkpoint."""
    wal_dir = spec.wal_dir
    checkpoint = read_checkpoint(wal_dir)
    pending = read_pending(wal_dir)
    if pending is not None:
        if checkpoint >= int(pending["wal_end"]):
            log.info("lane %s: last flush completed before the crash", spec.name)
        else:
            removed = 0
            for f in pending["files"]:
                removed += storage.unpublish(f["table"], f["partition"], [f["name"]])
            log.warning(
                "lane %s: withdrew %d file(s) of an unfinished flush; converting again from "
                "WAL position %d",
                spec.name,
                removed,
                checkpoint,
            )
        (wal_dir / PENDING).unlink(missing_ok=True)
        fsync_dir(wal_dir)
    for leftover in [*storage.tmp_dir.glob(f"{spec.name}-*"), *wal_dir.glob("*.json.tmp")]:
        leftover.unlink(missing_ok=True)
    return checkpoint


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


def split_by_day(table: pa.Table, column: str) -> list[tuple[str, pa.Table]]:
    """``table`` split by the UTC date of ``column``: [(partition name, rows)]."""
    if table.num_rows == 0:
        return []
    ns = pc.fill_null(table.column(column).cast(pa.int64()), 0)
    days = pc.divide(ns, DAY_NS)  # times are >= 0: integer division floors
    lo, hi = pc.min(days).as_py(), pc.max(days).as_py()
    epoch = dt.date(1970, 1, 1)

    def name(day: int) -> str:
        return partition_name((epoch + dt.timedelta(days=day)).isoformat())

    if lo == hi:
        return [(name(lo), table)]
    out = []
    for day in pc.unique(days).to_pylist():
        out.append((name(day), table.filter(pc.equal(days, day))))
    return sorted(out, key=lambda p: p[0])


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
        companions: CompanionHook | None = None,
        parent_pid: int | None = None,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.status = status
        self.handlers = handlers
        self.companions = companions
        self.parent_pid = parent_pid
        self.storage = Storage(settings.lake)
        self.wal_dir = spec.wal_dir
        self.reader = WalReader(self.wal_dir)
        self.buffers: dict[str, list[pa.RecordBatch | pa.Table]] = {}
        self.buffered_rows = 0
        self.buffered_bytes = 0
        self.first_buffered_at: float | None = None
        self.release_due = False
        self.retry_at: float | None = None  # a refused flush waits for this monotonic time
        self.checkpoint = 0
        self.position = 0
        self.flush_sleep = float(os.environ.get(FLUSH_SLEEP_ENV, "0") or 0)

    # -------------------------------------------------------------- lifecycle

    def recover(self) -> None:
        self.checkpoint = recover_lane(self.spec, self.storage)
        self.position = self.checkpoint
        self.status[CHECKPOINT_POS] = self.checkpoint
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
        counted (``quarantined_records`` in ``/metrics``); the record stays in
        ``_quarantine/`` to be converted again once the bug is fixed.
        """
        directory = Path(self.settings.lake) / QUARANTINE_DIR
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
        return self.position > self.checkpoint

    # -------------------------------------------------------------- flushing

    def flush(self) -> bool:
        """Publish everything buffered, all-or-nothing, then advance the checkpoint; False
        when the disk refused (undone, kept buffered, retried in ``FLUSH_RETRY``)."""
        try:
            self._publish()
        except OSError as exc:
            self._undo_refused_flush(exc)
            return False
        if self.retry_at is not None:
            log.warning("lane %s: the lake takes files again; published", self.spec.name)
            self.retry_at = None
        self.status[FLUSH_ERRNO] = 0
        return True

    def _undo_refused_flush(self, exc: OSError) -> None:
        log.error(
            "lane %s: could not publish to the lake (%s); undone, retrying in %.0f s",
            self.spec.name,
            exc,
            FLUSH_RETRY,
        )
        self.status[FLUSH_ERRNO] = exc.errno or -1
        self.status[FLUSH_FAILURES] += 1
        self.retry_at = time.monotonic() + FLUSH_RETRY
        # as after a crash: withdraw what a pending flush published, drop its temp files
        checkpoint = recover_lane(self.spec, self.storage)
        if checkpoint > self.checkpoint:  # the checkpoint was written: it did publish
            self._published(checkpoint, files=0, rows=0)
            self.retry_at = None
            self.status[FLUSH_ERRNO] = 0

    def _publish(self) -> None:
        end = self.position
        if end <= self.checkpoint and not self.buffers:
            return
        diskfaults.check("lake")
        files: list[tuple[str, str, DataFile, int]] = []
        for table_name, parts in self.buffers.items():
            schema, version = TABLES[table_name]
            handler_column = self._time_column(table_name)
            tables = [p if isinstance(p, pa.Table) else pa.Table.from_batches([p]) for p in parts]
            merged = pa.concat_tables([conform(t, schema) for t in tables])
            for partition, rows in split_by_day(merged, handler_column):
                name = f"{self.spec.writer_id}-{ULID()}.parquet".lower()
                tmp = self.storage.tmp_path(self.spec.name)
                write_parquet(
                    rows,
                    tmp,
                    metadata={
                        "tasklake.writer": self.spec.writer_id,
                        "tasklake.lane": str(self.spec.lane),
                        "tasklake.wal_start": str(self.checkpoint),
                        "tasklake.wal_end": str(end),
                        "tasklake.schema_version": str(version),
                    },
                    row_group_rows=self.settings.row_group_rows,
                    level=FLUSH_LEVEL,
                )
                extra = self.companions(tmp) if self.companions else {}
                files.append((table_name, partition, DataFile(tmp, name, extra), rows.num_rows))
        if files:
            _write_json_atomic(
                self.wal_dir / PENDING,
                {
                    "wal_start": self.checkpoint,
                    "wal_end": end,
                    "files": [{"table": t, "partition": p, "name": f.name} for t, p, f, _ in files],
                },
            )
            for i, (table_name, partition, data_file, _) in enumerate(files):
                if i and self.flush_sleep:
                    time.sleep(self.flush_sleep)
                # an orphan stops at once, even mid-flush: the next converter undoes it
                self._check_parent()
                self.storage.publish(table_name, partition, [data_file])
        write_checkpoint(self.wal_dir, end)
        if files:
            (self.wal_dir / PENDING).unlink(missing_ok=True)
        self._published(end, files=len(files), rows=sum(n for *_, n in files))

    def _published(self, end: int, *, files: int, rows: int) -> None:
        """The buffered rows up to WAL position ``end`` are in the lake: move on."""
        self.checkpoint = end
        self.buffers.clear()
        self.release_due |= self.buffered_bytes >= _RELEASE_AFTER_BYTES
        self.buffered_rows = 0
        self.buffered_bytes = 0
        self.first_buffered_at = None
        self.status[CHECKPOINT_POS] = end
        if files:
            self.status[FILES] += files
            self.status[ROWS] += rows
            self.status[LAST_FLUSH_MS] = int(time.time() * 1000)
        drop_segments_below(self.wal_dir, end)

    def _time_column(self, table_name: str) -> str:
        for handler in self.handlers.values():
            if handler.table == table_name:
                return handler.time_column
        raise KeyError(table_name)


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
    companion_hook: str | None = None


def converter_main(job: ConverterJob, status: Any) -> None:
    """Entry point of the spawned converter process."""
    spec, settings, parent_pid = job.spec, job.settings, job.parent_pid
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s tasklake-convert[{spec.name}] %(levelname)s %(message)s",
    )
    status[PID] = os.getpid()
    handlers = build_handlers(settings, job.factories)
    hook: CompanionHook | None = resolve(job.companion_hook) if job.companion_hook else None
    with _convert_lock(spec):
        if os.getppid() != parent_pid:
            return
        converter = Converter(
            spec, settings, status, handlers=handlers, companions=hook, parent_pid=parent_pid
        )
        converter.recover()
        try:
            converter.run()
        except _ParentGone:
            log.warning("lane %s: server process is gone; exiting", spec.name)
            os._exit(3)
