"""Commits the lanes' manifests to the Delta tables, exactly once, a few commits a second.

One committer per receiver (a thread of the server process) gathers every lane's waiting
manifests and makes **one commit per table** for all of them, so a receiver commits at most
about once per ``commit_interval`` per table however many lanes it runs. Each commit carries
a Delta *application transaction* per lane: app id ``<writer id>-<lane>``, version = the WAL
end of the lane's newest manifest in it. Delta keeps the highest version per app id in the
table's state, so after any crash a manifest is committed to a table exactly when the
table's version for its lane is below the manifest's WAL end (``pending``): a round is
idempotent, and recovery is just a round (with a check that the files are still there).

Once every table holds a lane's manifest, the lane's checkpoint (the WAL position whose
records are all in the lake) moves durably to its end, and only then is the manifest deleted:
a converter resumes after the newest manifest or the checkpoint, so it never converts again
records a table already holds. WAL segments below the checkpoint are dropped.

Commits of several receivers to one table never conflict: they are blind appends, retried by
delta-rs when another commit took the version first.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deltalake import CommitProperties, Transaction

from ingest.lake.files import FileWriter, NewFile
from ingest.lake.manifest import Manifest, read_manifests, remove_manifests
from schemas.delta import Tables
from schemas.lake import PARTITION, TABLES

log = logging.getLogger(__name__)

#: Test hook: seconds to wait before each round (crash tests kill the server while manifests
#: wait for their commit).
COMMIT_SLEEP_ENV = "TASKLAKE_TEST_COMMIT_SLEEP"

#: (lane app id, new checkpoint position, rows committed, files committed)
OnCommitted = Callable[[str, int, int, int], None]


@dataclass
class LaneOutbox:
    """A lane as the committer sees it: where its manifests wait."""

    app_id: str  # <writer id>-<lane>
    wal_dir: Path


@dataclass
class CommitStats:
    commits: int = 0
    files: int = 0
    rows: int = 0
    failures: int = 0
    last_error: str | None = None
    last_commit_ms: int = 0
    by_table: dict[str, int] = field(default_factory=dict)


class Committer:
    """Commits waiting manifests of ``lanes`` to the lake's tables (see module doc)."""

    def __init__(
        self,
        tables: Tables,
        lanes: Sequence[LaneOutbox],
        *,
        writer_id: str,
        on_committed: OnCommitted,
        interval: float = 0.5,
    ) -> None:
        self.tables = tables
        self.lanes = list(lanes)
        self.writer_id = writer_id
        self.on_committed = on_committed
        self.interval = interval
        self.files = FileWriter(tables.location)
        self.stats = CommitStats()
        self._lock = threading.Lock()  # one round at a time
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._sleep = float(os.environ.get(COMMIT_SLEEP_ENV, "0") or 0)
        self._failing = False

    @property
    def failing(self) -> bool:
        """The last round failed (the lake's store refused or could not be reached)."""
        return self._failing

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tasklake-committer", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Commit what waits, then stop."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.commit_round()

    def _run(self) -> None:
        backoff = self.interval
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            if self._sleep:
                self._stop.wait(self._sleep)
            try:
                self.commit_round()
                backoff = self.interval
                self._failing = False
            except Exception as exc:  # the store is unreachable, say: keep the manifests
                self._failing = True
                self.stats.failures += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.error("committing to the lake failed (will retry): %s", exc)
                backoff = min(backoff * 2, 30.0)
                self._stop.wait(backoff)

    # ------------------------------------------------------------------ rounds

    def recover(self) -> None:
        """Before converters start: commit what a crash left waiting, or void what cannot be
        committed any more (its files are gone); the WAL still holds those records."""
        with self._lock:
            for lane in self.lanes:
                waiting = read_manifests(lane.wal_dir)
                for i, m in enumerate(waiting):
                    missing = [
                        f
                        for table in m.tables()
                        if m.wal_end > self._version(table, lane.app_id)
                        for f in m.files_of(table)
                        if not self.files.exists(table, f.path)
                    ]
                    if missing:
                        log.warning(
                            "lane %s: %d file(s) of an uncommitted flush are gone; converting"
                            " WAL %d.. again",
                            lane.app_id,
                            len(missing),
                            m.wal_start,
                        )
                        for later in waiting[i:]:
                            for f in later.files:
                                self.files.delete(f.table, f.path)
                        remove_manifests(lane.wal_dir, waiting[i:])
                        break
            self._round()

    def commit_round(self) -> int:
        """Commit every waiting manifest; return how many manifests were completed."""
        with self._lock:
            return self._round()

    def _version(self, table: str, app_id: str) -> int:
        version = self.tables.current(table).transaction_version(app_id)
        return -1 if version is None else int(version)

    def _round(self) -> int:
        waiting = [(lane, read_manifests(lane.wal_dir)) for lane in self.lanes]
        waiting = [(lane, ms) for lane, ms in waiting if ms]
        if not waiting:
            return 0
        tables = sorted({t for _, ms in waiting for m in ms for t in m.tables()})
        for table in tables:
            self._commit_table(table, waiting)
        done = 0
        for lane, ms in waiting:
            rows = sum(f.rows for m in ms for f in m.files)
            files = sum(len(m.files) for m in ms)
            # the checkpoint first, then the manifests go: a converter restarted in between
            # resumes after one or the other, never below what the tables already hold
            self.on_committed(lane.app_id, ms[-1].wal_end, rows, files)
            remove_manifests(lane.wal_dir, ms)
            done += len(ms)
        return done

    def _commit_table(self, table: str, waiting: list[tuple[LaneOutbox, list[Manifest]]]) -> None:
        adds: list[NewFile] = []
        txns: list[Transaction] = []
        now = int(time.time() * 1000)
        for lane, ms in waiting:
            held = self._version(table, lane.app_id)
            pending = [m for m in ms if m.wal_end > held and m.files_of(table)]
            if not pending:
                continue
            for m in pending:
                adds.extend(m.files_of(table))
            txns.append(Transaction(lane.app_id, pending[-1].wal_end, now))
        if not adds:
            return
        spec = TABLES[table]
        dt = self.tables.current(table)
        started = time.perf_counter()
        dt.create_write_transaction(
            [f.add_action() for f in adds],
            mode="append",
            schema=spec.delta_schema,
            partition_by=[PARTITION],
            commit_properties=CommitProperties(
                app_transactions=txns,
                custom_metadata={"tasklake.writer": self.writer_id, "tasklake.op": "ingest"},
            ),
        )
        s = self.stats
        s.commits += 1
        s.files += len(adds)
        s.rows += sum(f.rows for f in adds)
        s.last_commit_ms = int(time.time() * 1000)
        s.by_table[table] = s.by_table.get(table, 0) + 1
        log.debug(
            "committed %d file(s) to %s in %.0f ms",
            len(adds),
            table,
            (time.perf_counter() - started) * 1000,
        )
