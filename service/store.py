"""The task views, materialized in the service and kept exact by incremental refresh.

Recomputing attempts and tasks from ~2M roll-up rows takes seconds on a 2-core machine, and a
dashboard asks every few seconds. So the service keeps ``attempts``, ``tasks`` (their
clock-free decisions), deduplicated ``signals`` and each task's spend by role, provider and
model (``breakdown``) as tables of a DuckDB database attached as ``tl_store``, built from one
listing of the lake's files. Before a query, ``refresh()`` lists the files again (a few
milliseconds) and, when something changed, recomputes only what the change can touch:

1. the traces of added files (and of removed ones: compaction replaces files);
2. every attempt with a roll-up row in those traces, plus every trace holding a row of those
   attempts (the closure): correlation ids are resolved per trace, so attempts outside the
   closure cannot have changed;
3. the tasks of those attempts (before and after) and of new signals, with all their signals,
   and the breakdown of those tasks (from the roll-ups of every trace of their attempts; a
   role inherited across files is resolved over the spans of those traces only).

Every statement renders the same templates the views use (``schemas.views.template``), so
the store answers exactly what the views answer over the same files; tests hold them equal.
Decisions do not depend on the clock: the outcome is read at ``as_of`` when queried, so the
store stays right as windows elapse. An ``as_of`` earlier than the latest stored signal needs
the signals of that moment: such queries go to the views instead (``covers``).

**On disk, bounded memory.** Given a ``path`` (the service uses
``<lake>/_store/<writer id>.duckdb``; not for readers), the store is a file: DuckDB keeps
only what queries touch in its buffer pool (bounded by the connection's ``memory_limit``)
and the store survives a restart, which then refreshes incrementally instead of rebuilding.
The file also holds the listing the tables reflect, written in the same transaction as the
tables, so a crash leaves both consistent. A store built by other code or other settings
(a fingerprint of every SQL definition and of the workflow rules) is rebuilt. When the file
is in use by another process, or cannot be opened, the store falls back to memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from schemas.lake import SIGNALS, SPANS, is_vanished_file_error, seed_file
from schemas.rollup import ATTEMPTS_DIR, BREAKDOWN_DIR, rollup_select
from schemas.settings import Settings
from schemas.snapshot import partitions
from schemas.views import (
    allocation,
    cost_macro,
    template,
    unallocated_macro,
    unmatched_signals,
    with_outcome,
    workflow_rules_sql,
)

log = logging.getLogger(__name__)

SCHEMA = "tl_store"
#: Where a rebuild keeps its intermediate tables (a file beside the store, deleted after).
SCRATCH = "tl_build"
#: Bump when the store's tables change shape: a store file of another version is rebuilt.
STORE_VERSION = 2
#: Compress the store (a checkpoint: ~4x smaller, seconds at 10M spans) after a rebuild and
#: after this many incremental refreshes, whose rows stay uncompressed until then.
CHECKPOINT_EVERY = 200
#: Refresh by recomputing everything when more than this share of span files changed.
REBUILD_SHARE = 0.5

#: Rows of a build's source per pass of its large aggregations (see ``Store._chunked``).
BUILD_PASS_ROWS = 250_000
#: Store files attached by this process: a second store on the same file stays in memory
#: (DuckDB's file lock does not keep two databases of one process apart).
_IN_USE: set[str] = set()
_IN_USE_LOCK = threading.Lock()


@dataclass(frozen=True)
class LakeFile:
    path: str  # the data file, as listed in its partition
    source: str  # what is read for its attempts: their roll-up companion, else the file itself
    size: int
    mtime_ns: int
    day: str
    breakdown: str = ""  # what is read for its breakdown: that companion, else the file

    @property
    def rolled_up(self) -> bool:
        return self.source != self.path

    @property
    def breakdown_source(self) -> str:
        return self.breakdown or self.path


@dataclass
class RefreshStats:
    kind: str = "none"  # none | incremental | rebuild
    seconds: float = 0.0
    added_files: int = 0
    removed_files: int = 0
    attempts: int = 0  # attempts recomputed
    tasks: int = 0  # tasks recomputed


def list_span_files(lake: Path) -> dict[str, LakeFile]:
    return _list(lake / SPANS, (ATTEMPTS_DIR, BREAKDOWN_DIR))


def list_signal_files(lake: Path) -> dict[str, LakeFile]:
    return _list(lake / SIGNALS, ())


def _list(root: Path, companions: tuple[str, ...]) -> dict[str, LakeFile]:
    """Data files by partition path, each partition from one generation (``partitions``).
    Paths stay partition paths, so a file's key survives compaction swaps that keep it; a
    read after a swap that merged it fails cleanly and is retried."""
    out: dict[str, LakeFile] = {}
    for part in partitions(root):
        for entry in part.files:
            if entry.name.startswith(("_", ".")):  # schema seeds and temp names are not data
                continue
            try:
                st = entry.stat()
            except FileNotFoundError:
                continue
            path = os.path.join(part.path, entry.name)
            found = []
            for subdir in companions:
                rolled = os.path.exists(os.path.join(part.generation, subdir, entry.name))
                found.append(os.path.join(part.path, subdir, entry.name) if rolled else path)
            source = found[0] if found else path
            breakdown = found[1] if len(found) > 1 else ""
            out[path] = LakeFile(
                path, source, st.st_size, st.st_mtime_ns, part.name[len("date=") :], breakdown
            )
    return out


def _sql_list(paths: Iterable[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def _run(cur: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> Any:
    """Execute one statement of a refresh, logging how long it took (DEBUG)."""
    started = time.perf_counter()
    out = cur.execute(sql, params)
    log.debug("task store: %.3f s  %.100s", time.perf_counter() - started, " ".join(sql.split()))
    return out


#: The definitions the stored tables are computed from (the rest is applied at query time).
STORE_SQL = (
    "macros",
    "rollup_attempts",
    "rollup_breakdown",
    "part_attempts",
    "attempt_rows",
    "signal_rows",
    "task_rows",
    "breakdown_rows",
    "breakdown_sums",
)


def fingerprint(settings: Settings | None) -> str:
    """What the stored tables depend on besides the lake: their SQL definitions, the workflow
    rules and the store's own version. A store with another fingerprint is rebuilt."""
    digest = hashlib.sha256(f"store-v{STORE_VERSION}".encode())
    for name in STORE_SQL:
        digest.update(name.encode())
        digest.update(resources.files("schemas").joinpath(f"{name}.sql").read_bytes())
    digest.update(workflow_rules_sql(settings).encode())
    return digest.hexdigest()[:32]


class Store:
    """The materialized tasks of one lake on one DuckDB connection."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        lake: Path,
        *,
        path: Path | None = None,
        settings: Settings | None = None,
    ) -> None:
        self._con = con
        self.lake = lake
        self._lock = threading.Lock()
        self._spans: dict[str, LakeFile] = {}
        self._signals: dict[str, LakeFile] = {}
        self._file_no: dict[str, int] = {}
        self._current: dict[str, LakeFile] = {}
        self._since_checkpoint = 0
        self._next_no = 0
        self.built = False
        self.max_signal_at: datetime | None = None
        self.last = RefreshStats()
        self.fingerprint = fingerprint(settings)
        self.path: Path | None = None
        if path is not None:
            self.path = self._attach_file(path)
        if self.path is None:
            con.execute(f"ATTACH ':memory:' AS {SCHEMA} (COMPRESS)")
        elif self._load():
            self._define_macros()

    # ------------------------------------------------------------------ the store file

    def _attach_file(self, path: Path) -> Path | None:
        """Attach the store file (recreated when unreadable); None: stay in memory."""
        key = str(path.resolve())
        with _IN_USE_LOCK:
            if key in _IN_USE:
                log.warning("task store %s is open in this process: keeping one in memory", path)
                return None
            _IN_USE.add(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        quoted = key.replace("'", "''")
        for attempt in range(2):
            try:
                self._con.execute(f"ATTACH '{quoted}' AS {SCHEMA}")
                return path
            except duckdb.Error as exc:
                if "lock" in str(exc).lower():  # another process has it: do not touch it
                    log.warning("task store %s is in use (%s): keeping one in memory", path, exc)
                    break
                if attempt:
                    log.warning("task store %s cannot be opened (%s): in memory", path, exc)
                    break
                log.warning("task store %s is unreadable (%s): starting a new one", path, exc)
                for stale in (path, path.with_name(path.name + ".wal")):
                    stale.unlink(missing_ok=True)
        with _IN_USE_LOCK:
            _IN_USE.discard(key)
        return None

    def _load(self) -> bool:
        """Take over what the store file holds when it was built by this code and settings."""
        s = SCHEMA
        tables = {
            r[0]
            for r in self._con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [s]
            ).fetchall()
        }
        if "meta" in tables:
            row = self._con.execute(
                f"SELECT value FROM {s}.meta WHERE key = 'fingerprint'"
            ).fetchone()
            if row and row[0] == self.fingerprint:
                self._spans = {}
                for path, source, breakdown, size, mtime, day, no in self._con.execute(
                    f"SELECT path, source, breakdown, size, mtime_ns, day, file_no FROM {s}.files"
                ).fetchall():
                    self._spans[path] = LakeFile(path, source, size, mtime, day, breakdown)
                    self._file_no[path] = no
                self._signals = {
                    r[0]: LakeFile(r[0], r[1], r[2], r[3], r[4])
                    for r in self._con.execute(
                        f"SELECT path, source, size, mtime_ns, day FROM {s}.signal_files"
                    ).fetchall()
                }
                self._next_no = max(self._file_no.values(), default=-1) + 1
                self._current = dict(self._spans)
                sig = self._con.execute(f"SELECT max(occurred_at) FROM {s}.signals").fetchone()
                self.max_signal_at = sig[0] if sig else None
                self.built = True
                log.info("task store %s: %d span files known", self.path, len(self._spans))
                return True
        for name in sorted(tables):  # another version or other settings: start over
            self._con.execute(f"DROP TABLE IF EXISTS {s}.{name}")
        return False

    def close(self) -> None:
        """Detach the store file (the connection stays usable)."""
        if self.path is None:
            return
        with contextlib.suppress(duckdb.Error):
            self._con.execute(f"DETACH {SCHEMA}")
        with _IN_USE_LOCK:
            _IN_USE.discard(str(self.path.resolve()))
        self.path = None

    # ------------------------------------------------------------------ queries

    def covers(self, as_of: datetime | None) -> bool:
        """Whether the store answers for ``as_of`` (None: now)."""
        if not self.built:
            return False
        if self.max_signal_at is None:
            return True
        return (as_of or datetime.now(UTC)) >= self.max_signal_at

    # ------------------------------------------------------------------ refresh

    def refresh(self) -> RefreshStats:
        """Bring the store to the lake's current files; recompute only what changed."""
        with self._lock:
            for attempt in range(3):
                try:
                    return self._refresh()
                except duckdb.Error as exc:  # a file vanished (compaction): list again
                    if attempt == 2 or not is_vanished_file_error(exc):
                        raise
            raise AssertionError("unreachable")

    def _refresh(self) -> RefreshStats:
        started = time.perf_counter()
        spans = list_span_files(self.lake)
        signals = list_signal_files(self.lake)
        if self.built and spans == self._spans and signals == self._signals:
            self.last = RefreshStats()
            return self.last
        added = [f for p, f in spans.items() if self._spans.get(p) != f]
        removed = [f for p, f in self._spans.items() if spans.get(p) != f]
        sig_added = [f for p, f in signals.items() if self._signals.get(p) != f]
        cur = self._con.cursor()
        try:
            cur.execute("SET TimeZone = 'UTC'")
            # Semi-joins on up to this many keys reach the scans of the (sorted) store tables
            # as IN filters, which skip every segment that cannot hold a key.
            cur.execute("SET dynamic_or_filter_threshold = 20000")
            changed = {f.path for f in added} | {f.path for f in removed}
            try:
                if not self.built or len(changed) > REBUILD_SHARE * max(len(spans), 1):
                    stats = self._rebuild(cur, spans, signals)
                else:
                    stats = self._incremental(
                        cur,
                        spans=spans,
                        signals=signals,
                        added=added,
                        removed=removed,
                        sig_added=sig_added,
                    )
            except BaseException:
                with contextlib.suppress(duckdb.Error):  # none may be open
                    cur.execute("ROLLBACK")
                raise
            row = cur.execute(f"SELECT max(occurred_at) FROM {SCHEMA}.signals").fetchone()
            self.max_signal_at = row[0] if row else None
        finally:
            cur.close()
        self._spans, self._signals = spans, signals
        self.built = True
        self._since_checkpoint = 0 if stats.kind == "rebuild" else self._since_checkpoint + 1
        if stats.kind == "rebuild" or self._since_checkpoint >= CHECKPOINT_EVERY:
            try:
                self._con.execute(f"CHECKPOINT {SCHEMA}")
                self._since_checkpoint = 0
            except duckdb.Error as exc:  # only space is at stake: try again next time
                log.warning("could not compress the task store: %s", exc)
        stats.added_files, stats.removed_files = len(added), len(removed)
        stats.seconds = time.perf_counter() - started
        self.last = stats
        return stats

    def _numbers(self, files: Iterable[LakeFile]) -> pa.Table:
        rows = []
        for f in files:
            if f.path not in self._file_no:
                self._file_no[f.path] = self._next_no
                self._next_no += 1
            rows.append(f)
        return pa.table(
            {
                "file_no": pa.array([self._file_no[f.path] for f in rows], pa.int32()),
                "path": pa.array([f.path for f in rows], pa.string()),
                "source": pa.array([f.source for f in rows], pa.string()),
                "breakdown": pa.array([f.breakdown_source for f in rows], pa.string()),
                "size": pa.array([f.size for f in rows], pa.int64()),
                "mtime_ns": pa.array([f.mtime_ns for f in rows], pa.int64()),
                "day": pa.array([f.day for f in rows], pa.string()),
            }
        )

    @staticmethod
    def _signal_listing(files: Iterable[LakeFile]) -> pa.Table:
        rows = list(files)
        return pa.table(
            {
                "path": pa.array([f.path for f in rows], pa.string()),
                "source": pa.array([f.source for f in rows], pa.string()),
                "size": pa.array([f.size for f in rows], pa.int64()),
                "mtime_ns": pa.array([f.mtime_ns for f in rows], pa.int64()),
                "day": pa.array([f.day for f in rows], pa.string()),
            }
        )

    def _parts(self, files: Sequence[LakeFile], listing: str) -> str:
        """The attempt roll-up rows of ``files`` with their ``file_no`` (from ``listing``)."""
        rolled = [f.source for f in files if f.rolled_up]
        raw = [f.path for f in files if not f.rolled_up]
        selects = []
        if rolled:
            selects.append(
                f"SELECT * FROM read_parquet({_sql_list(rolled)}, union_by_name = true,"
                " hive_partitioning = false, filename = true)"
            )
        if raw:
            source = (
                f"read_parquet({_sql_list(raw)}, filename = true, union_by_name = true,"
                " hive_partitioning = false)"
            )
            selects.append(rollup_select(ATTEMPTS_DIR, source, keep=("filename",)))
        if not selects:
            seed = seed_file(self.lake, SPANS).parent / ATTEMPTS_DIR / "_schema.parquet"
            selects.append(
                f"SELECT *, NULL::VARCHAR AS filename FROM read_parquet({_sql_list([str(seed)])})"
            )
        union = " UNION ALL BY NAME ".join(selects)
        return (
            f"(SELECT u.* EXCLUDE (filename), l.file_no FROM ({union}) u"
            f" JOIN {listing} l ON l.source = u.filename)"
        )

    def _breakdown_parts(self, files: Sequence[LakeFile], traces: str | None) -> str:
        """The breakdown roll-up rows of ``files`` (of the traces in temp table ``traces``;
        None: all)."""
        where = f" WHERE trace_id IN (SELECT trace_id FROM {traces})" if traces else ""
        rolled = [f.breakdown_source for f in files if f.breakdown_source != f.path]
        raw = [f.path for f in files if f.breakdown_source == f.path]
        selects = []
        if rolled:
            selects.append(
                f"SELECT * FROM read_parquet({_sql_list(rolled)}, union_by_name = true,"
                f" hive_partitioning = false){where}"
            )
        if raw:
            source = (
                f"(SELECT * FROM read_parquet({_sql_list(raw)}, filename = true,"
                f" union_by_name = true, hive_partitioning = false){where})"
            )
            selects.append(rollup_select(BREAKDOWN_DIR, source))
        if not selects:
            seed = seed_file(self.lake, SPANS).parent / BREAKDOWN_DIR / "_schema.parquet"
            selects.append(f"SELECT * FROM read_parquet({_sql_list([str(seed)])})")
        return "(" + " UNION ALL BY NAME ".join(selects) + ")"

    def _span_rows(self, files: Sequence[LakeFile]) -> str:
        """Span rows of ``files``: where a role inherited across files is looked up."""
        paths = [f.path for f in files] or [str(seed_file(self.lake, SPANS))]
        return (
            f"(SELECT trace_id, span_id, parent_span_id, role FROM read_parquet("
            f"{_sql_list(paths)}, union_by_name = true, hive_partitioning = false))"
        )

    def _breakdown_sql(
        self,
        files: Sequence[LakeFile],
        traces: str | None,
        summed: bool = True,
        *,
        parts: str = f"{SCHEMA}.parts",
        attempts: str = f"{SCHEMA}.attempts",
    ) -> str:
        """Each task's spend by role, billable, provider and model, from the roll-ups of
        ``files`` (limited to the traces in temp table ``traces``; None: all), attempts
        resolved through the stored ``parts`` and ``attempts`` (``summed``: one row per
        task and key, else the roll-up rows with their task)."""
        rows = template(
            "breakdown_rows",
            parts=self._breakdown_parts(files, traces),
            spans=self._span_rows(files),
        )
        where = f" WHERE trace_id IN (SELECT trace_id FROM {traces})" if traces else ""
        keyed = f"""
SELECT a.task_key, r.role, r.billable, r.provider, r.model, r.spans, r.model_calls,
    r.unpriced_spans, r.spend_usd, r.input_tokens, r.output_tokens, r.total_tokens
FROM ({rows}) r
JOIN (SELECT DISTINCT trace_id, correlation_id, resource_correlation_id, attempt_id
      FROM {parts}{where}) k
  ON k.trace_id = r.trace_id AND k.correlation_id IS NOT DISTINCT FROM r.correlation_id
 AND k.resource_correlation_id IS NOT DISTINCT FROM r.resource_correlation_id
JOIN {attempts} a USING (attempt_id)"""
        return template("breakdown_sums", rows=f"({keyed})") if summed else keyed

    def _signal_raw(self, files: Sequence[LakeFile], where: str = "") -> str:
        if not files:
            seed = seed_file(self.lake, SIGNALS)
            return f"(SELECT * FROM read_parquet({_sql_list([str(seed)])}) {where})"
        return (
            f"(SELECT * FROM read_parquet({_sql_list(f.source for f in files)},"
            f" union_by_name = true, hive_partitioning = false) {where})"
        )

    def _write_meta(self, cur: duckdb.DuckDBPyConnection) -> None:
        cur.execute(f"CREATE OR REPLACE TABLE {SCHEMA}.meta (key VARCHAR, value VARCHAR)")
        cur.execute(
            f"INSERT INTO {SCHEMA}.meta VALUES ('fingerprint', ?), ('built_at', ?)",
            [self.fingerprint, datetime.now(UTC).isoformat()],
        )

    def _rebuild(
        self,
        cur: duckdb.DuckDBPyConnection,
        spans: dict[str, LakeFile],
        signals: dict[str, LakeFile],
    ) -> RefreshStats:
        files = list(spans.values())
        saved = self._file_no, self._next_no
        self._file_no, self._next_no = {}, 0
        try:
            return self._build(cur, spans, signals, files)
        except BaseException:
            self._file_no, self._next_no = saved  # the stored tables still use those
            raise

    def _build(
        self,
        cur: duckdb.DuckDBPyConnection,
        spans: dict[str, LakeFile],
        signals: dict[str, LakeFile],
        files: list[LakeFile],
    ) -> RefreshStats:
        cur.register("listing_all", self._numbers(files))
        cur.register("signal_listing", self._signal_listing(signals.values()))
        parts = self._parts(files, "listing_all")
        s = SCHEMA
        # Intermediate results go to a scratch database beside the store file (deleted after,
        # so they leave no free space behind in the store), or into the in-memory store. The
        # large aggregations run in passes over a hash of their key: a pass's hash table stays
        # small, so the build fits the memory limit whatever the lake's size.
        b = self._attach_scratch(cur)
        single = b == s  # in memory: one transaction for everything
        try:
            if single:
                _run(cur, "BEGIN")
            _run(
                cur,
                f"CREATE OR REPLACE TABLE {b}._resolved AS "
                + template("part_attempts", parts=parts),
            )
            self._chunked(
                cur,
                f"{b}._attempts",
                f"{b}._resolved",
                "attempt_id",
                lambda rows: template("attempt_rows", resolved=rows),
            )
            _run(
                cur,
                f"CREATE OR REPLACE TABLE {b}._parts AS SELECT file_no, trace_id, correlation_id,"
                f" resource_correlation_id, attempt_id FROM {b}._resolved",
            )
            _run(cur, f"DROP TABLE {b}._resolved")
            _run(
                cur,
                f"CREATE OR REPLACE TABLE {b}._raw_signals AS SELECT * FROM "
                + self._signal_raw(list(signals.values())),
            )
            self._chunked(
                cur,
                f"{b}._signals",
                f"{b}._raw_signals",
                "signal_id",
                lambda rows: template("signal_rows", raw=rows),
            )
            self._chunked(
                cur,
                f"{b}._tasks",
                f"{b}._attempts",
                "task_key",
                lambda rows: template("task_rows", attempts=rows, signals=f"{b}._signals"),
            )
            _run(
                cur,
                f"CREATE OR REPLACE TABLE {b}._breakdown AS "
                + self._breakdown_sql(
                    files, None, False, parts=f"{b}._parts", attempts=f"{b}._attempts"
                ),
            )
            # The store's tables in one transaction, each sorted by the key lookups use: a
            # point lookup then reads one segment. (The breakdown's sums spill to disk.)
            if not single:
                _run(cur, "BEGIN")
            for table, sql in (
                ("attempts", f"SELECT * FROM {b}._attempts ORDER BY task_key"),
                ("parts", f"SELECT * FROM {b}._parts ORDER BY attempt_id"),
                ("files", "SELECT * FROM listing_all"),
                ("signal_files", "SELECT * FROM signal_listing"),
                (
                    "signals",
                    f"SELECT * FROM {b}._signals ORDER BY coalesce(task_id, correlation_id)",
                ),
                ("tasks", f"SELECT * FROM {b}._tasks ORDER BY task_key"),
                (
                    "breakdown",
                    "SELECT * FROM ("
                    + template("breakdown_sums", rows=f"{b}._breakdown")
                    + ") ORDER BY task_key",
                ),
            ):
                _run(cur, f"CREATE OR REPLACE TABLE {s}.{table} AS {sql}")
            if single:
                for stage in ("_attempts", "_parts", "_raw_signals", "_signals", "_tasks"):
                    _run(cur, f"DROP TABLE {s}.{stage}")
                _run(cur, f"DROP TABLE {s}._breakdown")
            self._write_meta(cur)
            _run(cur, "COMMIT")
        finally:
            if not single:
                self._detach_scratch(cur)
        cur.unregister("listing_all")
        cur.unregister("signal_listing")
        self._current = dict(spans)
        self._define_macros()
        count = cur.execute(f"SELECT count(*) FROM {s}.tasks").fetchone()
        return RefreshStats(kind="rebuild", tasks=count[0] if count else 0)

    def _scratch_path(self) -> Path | None:
        return None if self.path is None else self.path.with_name(self.path.stem + ".build.duckdb")

    def _attach_scratch(self, cur: duckdb.DuckDBPyConnection) -> str:
        scratch = self._scratch_path()
        if scratch is None:
            return SCHEMA
        for stale in (scratch, scratch.with_name(scratch.name + ".wal")):
            stale.unlink(missing_ok=True)
        quoted = str(scratch).replace("'", "''")
        _run(cur, f"ATTACH '{quoted}' AS {SCRATCH}")
        return SCRATCH

    def _detach_scratch(self, cur: duckdb.DuckDBPyConnection) -> None:
        with contextlib.suppress(duckdb.Error):
            cur.execute("ROLLBACK")
        with contextlib.suppress(duckdb.Error):
            cur.execute(f"DETACH {SCRATCH}")
        scratch = self._scratch_path()
        if scratch is not None:
            for stale in (scratch, scratch.with_name(scratch.name + ".wal")):
                stale.unlink(missing_ok=True)

    @staticmethod
    def _chunked(
        cur: duckdb.DuckDBPyConnection,
        table: str,
        source: str,
        key: str,
        select: Callable[[str], str],
    ) -> None:
        """``CREATE TABLE <table>`` as ``select(<rows of source>)``, run in passes over
        ``hash(key)`` (every row of one key in one pass). ``table`` without a schema is a
        TEMP table."""
        row = cur.execute(f"SELECT count(*) FROM {source}").fetchone()
        passes = max(1, -(-(row[0] if row else 0) // BUILD_PASS_ROWS))
        create = "CREATE OR REPLACE TABLE" if "." in table else "CREATE OR REPLACE TEMP TABLE"
        for i in range(passes):
            rows = (
                source
                if passes == 1
                else f"(SELECT * FROM {source} WHERE hash({key}) % {passes} = {i})"
            )
            into = f"{create} {table} AS " if i == 0 else f"INSERT INTO {table} "
            _run(cur, into + f"SELECT * FROM ({select(rows)})")

    def _rows_of_traces(
        self, cur: duckdb.DuckDBPyConnection, traces: str, fresh: Sequence[LakeFile]
    ) -> str:
        """Every roll-up row of the traces in temp table ``traces``: read only from the files
        that hold them (the index says which) and the fresh ones."""
        files = self._files_of_traces(cur, traces, fresh)
        cur.register(f"listing_{traces}", self._numbers(files))
        parts = self._parts(files, f"listing_{traces}")
        return f"(SELECT * FROM {parts} WHERE trace_id IN (SELECT trace_id FROM {traces}))"

    def _files_of_traces(
        self, cur: duckdb.DuckDBPyConnection, traces: str, fresh: Sequence[LakeFile]
    ) -> list[LakeFile]:
        nos = cur.execute(
            f"SELECT DISTINCT file_no FROM {SCHEMA}.parts"
            f" WHERE trace_id IN (SELECT trace_id FROM {traces})"
        ).fetchall()
        by_no = {self._file_no[p]: f for p, f in self._current.items()}
        files = {f.path: f for f in fresh}
        for (no,) in nos:
            f = by_no.get(no)
            if f is not None:
                files[f.path] = f
        return list(files.values())

    def _incremental(
        self,
        cur: duckdb.DuckDBPyConnection,
        *,
        spans: dict[str, LakeFile],
        signals: dict[str, LakeFile],
        added: list[LakeFile],
        removed: list[LakeFile],
        sig_added: list[LakeFile],
    ) -> RefreshStats:
        s = SCHEMA
        removed_nos = [self._file_no[f.path] for f in removed if f.path in self._file_no]
        self._current = {p: f for p, f in spans.items() if p not in {a.path for a in added}}
        cur.register("listing_added", self._numbers(added))
        cur.register("signal_listing", self._signal_listing(signals.values()))

        def run(sql: str, params: Any = None) -> duckdb.DuckDBPyConnection:
            t = time.perf_counter()
            out = cur.execute(sql, params)
            log.debug("store refresh step %.3f s: %.90s", time.perf_counter() - t, sql)
            return out

        gone = "file_no IN (SELECT unnest(?::INTEGER[]))"
        # 1. traces touched by the change: in added files, or in files that went away
        run(
            "CREATE OR REPLACE TEMP TABLE fresh AS "
            f"SELECT * FROM {self._parts(added, 'listing_added')}"
        )
        run(
            "CREATE OR REPLACE TEMP TABLE t0 AS SELECT DISTINCT trace_id FROM fresh"
            f" UNION SELECT trace_id FROM {s}.parts WHERE {gone}",
            [removed_nos],
        )
        # 2. their attempts before and after, and every trace holding a row of one of them
        r0 = self._rows_of_traces(cur, "t0", added)
        run(
            "CREATE OR REPLACE TEMP TABLE a0 AS "
            f"SELECT DISTINCT attempt_id FROM ({template('part_attempts', parts=r0)})"
            f" UNION SELECT attempt_id FROM {s}.parts WHERE trace_id IN (SELECT trace_id FROM t0)"
        )
        keyed = " UNION ".join(
            f"SELECT trace_id, file_no FROM {source} WHERE {column} IN (SELECT attempt_id FROM a0)"
            for source in (f"{s}.parts", "fresh")
            for column in ("correlation_id", "resource_correlation_id", "trace_id", "attempt_id")
            if not (source == "fresh" and column == "attempt_id")
        )
        run(
            "CREATE OR REPLACE TEMP TABLE t1 AS SELECT trace_id FROM t0"
            f" UNION SELECT trace_id FROM ({keyed}) WHERE NOT {gone}",
            [removed_nos],
        )
        r1 = self._rows_of_traces(cur, "t1", added)
        run("CREATE OR REPLACE TEMP TABLE r1 AS " + template("part_attempts", parts=r1))
        self._chunked(
            cur,
            "new_attempts",
            "(SELECT * FROM r1 WHERE attempt_id IN (SELECT attempt_id FROM a0))",
            "attempt_id",
            lambda rows: template("attempt_rows", resolved=rows),
        )
        # 3. new signals: the first-received copy of their ids
        if sig_added:
            run(
                "CREATE OR REPLACE TEMP TABLE sig_ids AS SELECT DISTINCT signal_id FROM "
                + self._signal_raw(sig_added)
            )
            run(
                "CREATE OR REPLACE TEMP TABLE new_signals AS "
                + template(
                    "signal_rows",
                    raw=self._signal_raw(
                        list(signals.values()),
                        "WHERE signal_id IN (SELECT signal_id FROM sig_ids)",
                    ),
                )
            )
        else:
            run(
                f"CREATE OR REPLACE TEMP TABLE sig_ids AS SELECT signal_id FROM {s}.signals LIMIT 0"
            )
            run(f"CREATE OR REPLACE TEMP TABLE new_signals AS SELECT * FROM {s}.signals LIMIT 0")
        run("BEGIN")
        run(
            "CREATE OR REPLACE TEMP TABLE task_keys AS "
            f"SELECT task_key FROM {s}.attempts WHERE attempt_id IN (SELECT attempt_id FROM a0)"
            " UNION SELECT task_key FROM new_attempts"
        )
        run("CREATE OR REPLACE TEMP TABLE span_task_keys AS SELECT * FROM task_keys")
        run(f"DELETE FROM {s}.attempts WHERE attempt_id IN (SELECT attempt_id FROM a0)")
        run(f"INSERT INTO {s}.attempts SELECT * FROM new_attempts")
        run(f"DELETE FROM {s}.parts WHERE {gone}", [removed_nos])
        run(f"DELETE FROM {s}.parts WHERE trace_id IN (SELECT trace_id FROM t1)")
        run(
            f"INSERT INTO {s}.parts SELECT file_no, trace_id, correlation_id,"
            " resource_correlation_id, attempt_id FROM r1"
        )
        run(f"DELETE FROM {s}.files WHERE {gone}", [removed_nos])
        run(f"INSERT INTO {s}.files SELECT * FROM listing_added")
        run(f"DELETE FROM {s}.signal_files")
        run(f"INSERT INTO {s}.signal_files SELECT * FROM signal_listing")
        # the tasks named by the changed signals, before and after
        run(
            "INSERT INTO task_keys "
            f"SELECT coalesce(x.task_id, a.task_key) FROM (SELECT task_id, correlation_id FROM"
            f" {s}.signals WHERE signal_id IN (SELECT signal_id FROM sig_ids)"
            " UNION ALL SELECT task_id, correlation_id FROM new_signals) x"
            f" LEFT JOIN {s}.attempts a ON a.attempt_id = x.correlation_id"
            " WHERE coalesce(x.task_id, a.task_key) IS NOT NULL"
        )
        run(f"DELETE FROM {s}.signals WHERE signal_id IN (SELECT signal_id FROM sig_ids)")
        run(f"INSERT INTO {s}.signals SELECT * FROM new_signals")
        # 4. the tasks touched, from all their attempts and signals
        run(
            "CREATE OR REPLACE TEMP TABLE task_attempts AS "
            f"SELECT * FROM {s}.attempts WHERE task_key IN (SELECT task_key FROM task_keys)"
        )
        run(
            "CREATE OR REPLACE TEMP TABLE task_signal_keys AS "
            "SELECT task_key AS k FROM task_keys UNION SELECT attempt_id FROM task_attempts"
        )
        self._chunked(
            cur,
            "new_tasks",
            "task_attempts",
            "task_key",
            lambda rows: template(
                "task_rows",
                attempts=rows,
                signals=(
                    f"(SELECT * FROM {s}.signals WHERE coalesce(task_id, correlation_id)"
                    " IN (SELECT k FROM task_signal_keys))"
                ),
            ),
        )
        run(f"DELETE FROM {s}.tasks WHERE task_key IN (SELECT task_key FROM task_keys)")
        run(f"INSERT INTO {s}.tasks SELECT * FROM new_tasks")
        # 5. the breakdown of the tasks whose attempts changed (a signal changes no spend),
        # from the roll-ups of every trace of their attempts
        run(
            "CREATE OR REPLACE TEMP TABLE bt AS SELECT DISTINCT trace_id FROM"
            f" {s}.parts WHERE attempt_id IN (SELECT attempt_id FROM {s}.attempts"
            " WHERE task_key IN (SELECT task_key FROM span_task_keys))"
        )
        files = self._files_of_traces(cur, "bt", added)
        run(f"DELETE FROM {s}.breakdown WHERE task_key IN (SELECT task_key FROM span_task_keys)")
        run(
            f"INSERT INTO {s}.breakdown SELECT * FROM ({self._breakdown_sql(files, 'bt')})"
            " WHERE task_key IN (SELECT task_key FROM span_task_keys)"
        )
        run("COMMIT")
        counts = run(
            "SELECT (SELECT count(*) FROM a0), (SELECT count(DISTINCT task_key) FROM task_keys)"
        ).fetchone()
        for name in ("listing_added", "listing_t0", "listing_t1", "signal_listing"):
            cur.unregister(name)
        return RefreshStats(
            kind="incremental",
            attempts=counts[0] if counts else 0,
            tasks=counts[1] if counts else 0,
        )

    def _define_macros(self) -> None:
        s = SCHEMA
        tasks = with_outcome(f"{s}.tasks")
        allocations = "(" + allocation(f"{s}.tasks", "costs", "task_allocations") + ")"
        self._con.execute(
            cost_macro("store_cost_per_task_by", tasks, f"{s}.breakdown", allocations)
        )
        self._con.execute(
            "CREATE OR REPLACE VIEW store_cost_allocations AS "
            + allocation(f"{s}.tasks", "costs", "entry_allocations")
        )
        signals = f"(SELECT * FROM {s}.signals WHERE occurred_at <= as_of())"
        self._con.execute(
            "CREATE OR REPLACE VIEW store_unmatched_signals AS "
            + unmatched_signals(signals, f"{s}.attempts", f"{s}.tasks")
        )
        self._con.execute(
            unallocated_macro(
                "store_unallocated_costs_in", "store_cost_allocations", "store_unmatched_signals"
            )
        )

    # ------------------------------------------------------------------ lookups

    def stats(self) -> dict[str, Any]:
        return {
            "built": self.built,
            "file": str(self.path) if self.path else None,
            "last_refresh": self.last.__dict__,
        }
