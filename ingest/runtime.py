"""The ingest runtime: lanes (WAL writer + converter process), committer, compactor, lifecycle.

``IngestRuntime(settings).start()`` makes sure the lake's tables exist, takes each lane's
writer lock (a second process with the same writer id is refused), recovers the WAL (torn
tails), lets the committer commit whatever a crash left in the lanes' outboxes, spawns one
converter per lane (which resumes after its newest manifest) and starts the committer and
the background compactor. ``exporter`` is what the receivers call; ``stats()`` feeds /readyz
and /metrics; ``stop()`` refuses new requests, drains the WAL into the lake and releases
everything.

Converters watch this process's pid and exit when it dies, so ``kill -9`` of the server
leaves no orphans; a converter that dies is restarted by a watchdog thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import multiprocessing
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.convert.lane import (
    CHECKPOINT_POS,
    COMMITTED,
    FILES,
    FLUSH_ERRNO,
    FLUSH_FAILURES,
    HANDLERS,
    LAST_FLUSH_MS,
    PID,
    QUARANTINED,
    RECOVERED,
    ROWS,
    STATUS_SLOTS,
    STOP,
    ConverterJob,
    LaneSpec,
    converter_main,
    lane_committed,
    read_checkpoint,
)
from ingest.lake.committer import Committer, LaneOutbox
from ingest.lake.compaction import CompactionStats, compact_once
from ingest.lake.compactor import BackgroundCompactor
from ingest.pipeline import LakeExporter, Lane
from ingest.receive.admission import Admission
from ingest.wal.log import WalWriter, recover
from schemas.delta import Tables
from schemas.settings import Settings

log = logging.getLogger(__name__)

WRITER_LOCK = "writer.lock"
_RESTART_DELAY = 1.0


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reasons: tuple[str, ...] = ()  # why data is refused now
    warnings: tuple[str, ...] = ()  # trouble that does not refuse data (yet)


class LakeLocked(RuntimeError):
    """Another process already writes to this lake with the same writer id."""


@dataclass
class _LaneRuntime:
    spec: LaneSpec
    status: Any
    lock_fd: int
    writer: WalWriter | None  # None: drain-only lane (left over from a larger lane count)
    process: multiprocessing.process.BaseProcess | None = None
    restarts: int = 0


class IngestRuntime:
    """Owns the lanes of one writer id on one lake."""

    def __init__(
        self,
        settings: Settings,
        *,
        handlers: Mapping[int, str] | None = None,
    ) -> None:
        self.settings = settings
        self.writer_id = settings.effective_writer_id
        self.wal_root = settings.effective_wal_dir
        self.handlers = dict(HANDLERS if handlers is None else handlers)
        self._ctx = multiprocessing.get_context("spawn")
        self._lanes: list[_LaneRuntime] = []
        self._exporter: LakeExporter | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._stopped = False
        self._compactor: BackgroundCompactor | None = None
        self._committer: Committer | None = None
        #: the memory budget every receiver of this process admits its requests within
        self.admission = Admission(settings.max_inflight_bytes)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> IngestRuntime:
        if self._started:
            raise RuntimeError("runtime already started")
        self._started = True
        tables = Tables(self.settings.location)
        tables.ensure()
        wal_root = self.wal_root
        wal_root.mkdir(parents=True, exist_ok=True)
        active = self.settings.effective_lanes
        existing = {
            int(m.group(1))
            for p in wal_root.iterdir()
            if (m := re.fullmatch(re.escape(self.writer_id) + r"-(\d+)", p.name))
        }
        try:
            for index in sorted(set(range(active)) | existing):
                self._lanes.append(self._open_lane(index, drain_only=index >= active))
        except BaseException:
            self._release()
            raise
        self._committer = Committer(
            tables,
            [LaneOutbox(lane.spec.name, lane.spec.wal_dir) for lane in self._lanes],
            writer_id=self.writer_id,
            on_committed=self._committed,
            interval=self.settings.commit_interval,
        )
        self._committer.recover()
        for lane in self._lanes:
            self._spawn(lane)
        self._committer.start()
        self._exporter = LakeExporter(
            [Lane(lane.spec.lane, lane.writer, lane.status) for lane in self._lanes if lane.writer],
            self.settings.wal_max_backlog_bytes,
            self.settings,
        )
        self._thread(self._watchdog, "tasklake-watchdog")
        if self.settings.compaction_interval > 0 and self.settings.compactor:
            self._compactor = BackgroundCompactor(self.settings)
            self._compactor.start()
        return self

    def _committed(self, app_id: str, position: int, rows: int, files: int) -> None:
        """The committer made a lane's flushes part of the lake: move its checkpoint."""
        for lane in self._lanes:
            if lane.spec.name == app_id:
                lane_committed(lane.spec.wal_dir, lane.status, position, rows, files)
                return

    def _open_lane(self, index: int, *, drain_only: bool) -> _LaneRuntime:
        spec = LaneSpec(str(self.wal_root), self.writer_id, index)
        spec.wal_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(spec.wal_dir / WRITER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LakeLocked(
                f"another tasklake process is already writing to lake {self.settings.lake}"
                f" with writer "
                f"id '{self.writer_id}' ({spec.wal_dir}); give each process sharing a lake "
                "its own writer id (--writer-id / TASKLAKE_WRITER_ID)"
            ) from None
        status = self._ctx.RawArray("q", STATUS_SLOTS)
        status[CHECKPOINT_POS] = read_checkpoint(spec.wal_dir)
        writer: WalWriter | None = None
        try:
            if drain_only:
                status[COMMITTED] = recover(spec.wal_dir)
                log.info("lane %s: draining a lane beyond the configured count", spec.name)
            else:

                def on_commit(position: int, _status: Any = status) -> None:
                    _status[COMMITTED] = position

                def converted(_status: Any = status) -> int:
                    return int(_status[CHECKPOINT_POS])

                writer = WalWriter(
                    spec.wal_dir,
                    segment_bytes=self.settings.wal_segment_bytes,
                    fsync=self.settings.wal_fsync,
                    on_commit=on_commit,
                    converted=converted,
                )
        except BaseException:
            os.close(fd)
            raise
        return _LaneRuntime(spec, status, fd, writer)

    def _spawn(self, lane: _LaneRuntime) -> None:
        lane.status[RECOVERED] = 0
        lane.status[STOP] = 0
        lane.process = self._ctx.Process(
            target=converter_main,
            args=(
                ConverterJob(lane.spec, self.settings, os.getpid(), self.handlers),
                lane.status,
            ),
            name=f"tasklake-convert-{lane.spec.name}",
            daemon=True,
        )
        lane.process.start()

    def _thread(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        """Refuse new requests, write what is queued, convert and publish it, release."""
        if not self._started or self._stopped:
            return
        self._stopped = True
        deadline = time.monotonic() + timeout
        if self._exporter is not None:
            self._exporter.stopping = True
        for lane in self._lanes:
            if lane.writer is not None:
                lane.writer.close(max(0.1, deadline - time.monotonic()))
        self._stop.set()  # watchdog stops restarting converters, compactor stops
        if self._compactor is not None:
            self._compactor.request_stop()
        for lane in self._lanes:
            lane.status[STOP] = 1
        for lane in self._lanes:
            proc = lane.process
            if proc is None:
                continue
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                log.warning(
                    "lane %s: converter did not drain in time; the WAL keeps the rest",
                    lane.spec.name,
                )
                proc.terminate()
                proc.join(5)
                if proc.is_alive():
                    proc.kill()
                    proc.join()
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        if self._committer is not None:
            try:
                self._committer.stop(max(0.1, deadline - time.monotonic()))
            except Exception:
                log.exception("the last commit failed; the outboxes keep it for the next start")
        if self._compactor is not None:
            self._compactor.stop(max(0.1, deadline - time.monotonic()))
        self._release()

    def _release(self) -> None:
        for lane in self._lanes:
            if lane.lock_fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(lane.lock_fd)
                lane.lock_fd = -1

    def __enter__(self) -> IngestRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ state

    @property
    def compactions(self) -> int:
        return self._compactor.rounds if self._compactor else 0

    @property
    def last_compaction(self) -> CompactionStats | None:
        return self._compactor.last if self._compactor else None

    @property
    def exporter(self) -> LakeExporter:
        if self._exporter is None:
            raise RuntimeError("runtime not started")
        return self._exporter

    @property
    def ready(self) -> bool:
        """Accepting data: recovery is done (every converter undid any unfinished flush and
        follows its WAL) and every WAL lane takes writes."""
        return self.readiness().ready

    def readiness(self) -> Readiness:
        """Whether data is accepted now and, if not, why; problems that do not refuse data
        (a converter that cannot publish to the lake yet) as warnings."""
        reasons: list[str] = []
        warnings: list[str] = []
        if not self._started:
            reasons.append("not started")
        if self._stopped:
            reasons.append("shutting down")
        for lane in self._lanes:
            name = lane.spec.name
            if lane.status[RECOVERED] != 1:
                reasons.append(f"lane {name}: recovering the write-ahead log")
            if lane.writer is not None and lane.writer.failed is not None:
                reasons.append(f"lane {name}: write-ahead log refuses writes: {lane.writer.failed}")
            error = int(lane.status[FLUSH_ERRNO])
            if error:
                why = os.strerror(error) if error > 0 else "I/O error"
                warnings.append(
                    f"lane {name}: converter cannot publish to the lake ({why}); retrying, the "
                    "write-ahead log keeps the data meanwhile"
                )
        committer = self._committer
        if committer is not None and committer.failing:
            warnings.append(
                f"cannot commit to the lake ({committer.stats.last_error}); retrying, the"
                " write-ahead log keeps the data meanwhile"
            )
        return Readiness(not reasons, tuple(reasons), tuple(warnings))

    def caught_up(self) -> bool:
        """Everything acknowledged so far is published (no backlog, nothing queued)."""
        return all(
            lane.status[CHECKPOINT_POS] >= lane.status[COMMITTED]
            and (lane.writer is None or lane.writer.queued_bytes == 0)
            for lane in self._lanes
        )

    def wait_caught_up(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.caught_up():
                return True
            time.sleep(0.02)
        return self.caught_up()

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready:
                return True
            time.sleep(0.02)
        return self.ready

    def stats(self) -> dict[str, Any]:
        lanes: list[dict[str, Any]] = []
        for lane in self._lanes:
            s = lane.status
            proc = lane.process
            lanes.append(
                {
                    "lane": lane.spec.lane,
                    "drain_only": lane.writer is None,
                    "backlog_bytes": int(s[COMMITTED] - s[CHECKPOINT_POS])
                    + (lane.writer.queued_bytes if lane.writer else 0),
                    "committed": int(s[COMMITTED]),
                    "checkpoint": int(s[CHECKPOINT_POS]),
                    "files_published": int(s[FILES]),
                    "rows_published": int(s[ROWS]),
                    "last_flush_ms": int(s[LAST_FLUSH_MS]),
                    "quarantined_records": int(s[QUARANTINED]),
                    "converter_pid": int(s[PID]),
                    "converter_alive": bool(proc is not None and proc.is_alive()),
                    "converter_restarts": lane.restarts,
                    "wal_fsyncs": lane.writer.fsyncs if lane.writer else 0,
                    "wal_failed": lane.writer.failed if lane.writer else None,
                    "wal_failures": lane.writer.failures if lane.writer else 0,
                    "flush_errno": int(s[FLUSH_ERRNO]),
                    "flush_failures": int(s[FLUSH_FAILURES]),
                }
            )
        counters = self._exporter.counters if self._exporter else None
        admitted = self.admission.stats()
        last_flush = max((lane["last_flush_ms"] for lane in lanes), default=0)
        return {
            "ready": self.ready,
            "writer_id": self.writer_id,
            "lanes": lanes,
            "backlog_bytes": sum(lane["backlog_bytes"] for lane in lanes),
            "spans_acknowledged": counters.spans if counters else 0,
            "requests_acknowledged": counters.requests if counters else 0,
            "spans_rejected": counters.rejected_spans if counters else 0,
            "signals_acknowledged": counters.signals if counters else 0,
            "cost_entries_acknowledged": counters.cost_entries if counters else 0,
            "log_records_rejected": counters.rejected_log_records if counters else 0,
            "requests_refused": counters.refused_requests if counters else 0,
            "wal_refusing_lanes": sum(1 for lane in lanes if lane["wal_failed"]),
            "wal_write_failures": sum(lane["wal_failures"] for lane in lanes),
            "wal_disk_free_bytes": _free_bytes(self.wal_root),
            "lake_publish_failing_lanes": sum(1 for lane in lanes if lane["flush_errno"]),
            "lake_publish_failures": sum(lane["flush_failures"] for lane in lanes),
            "inflight_bytes": admitted.inflight_bytes,
            "inflight_bytes_peak": admitted.peak_bytes,
            "inflight_budget_bytes": admitted.budget_bytes,
            "requests_waiting_admission": admitted.waiting,
            "requests_refused_admission": admitted.refused,
            "files_published": sum(lane["files_published"] for lane in lanes),
            "rows_published": sum(lane["rows_published"] for lane in lanes),
            # records a converter could not convert: a bug, never bad input (ingest.convert.lane)
            "quarantined_records": sum(lane["quarantined_records"] for lane in lanes),
            "last_flush_time": last_flush / 1000 if last_flush else None,
            "compactions": self.compactions,
            "compaction_lease_held": int(bool(self._compactor and self._compactor.holds_lease)),
            "files_vacuumed": self._compactor.vacuumed if self._compactor else 0,
            "lake_commits": self._committer.stats.commits if self._committer else 0,
            "lake_commit_failures": self._committer.stats.failures if self._committer else 0,
            "last_compaction": self.last_compaction.as_dict() if self.last_compaction else None,
        }

    # ------------------------------------------------------------------ threads

    def _watchdog(self) -> None:
        while not self._stop.wait(0.5):
            compactor = self._compactor
            if compactor is not None and not compactor.alive() and not self._stop.is_set():
                log.error("compactor exited; restarting")
                compactor.restart()
            for lane in self._lanes:
                proc = lane.process
                if proc is None or proc.is_alive() or self._stop.is_set():
                    continue
                lane.restarts += 1
                log.error(
                    "lane %s: converter exited with %s; restarting (restart %d)",
                    lane.spec.name,
                    proc.exitcode,
                    lane.restarts,
                )
                if self._stop.wait(min(_RESTART_DELAY * lane.restarts, 30.0)):
                    return
                self._spawn(lane)


def _free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still put on ``path``'s filesystem (-1: unknown)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return -1
    return st.f_bavail * st.f_frsize


__all__ = ["IngestRuntime", "LakeLocked", "Readiness", "compact_once"]
