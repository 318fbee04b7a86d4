"""The task views, materialized in the service and kept exact by following the Delta log.

Recomputing attempts and tasks from millions of spans takes minutes, and a dashboard asks
every few seconds. So the service keeps, in a DuckDB database attached as ``tl_store``:

- ``attempt_parts``, ``breakdown_parts`` and ``call_parts`` (the model calls and retrievals
  the levers read): the templates of the same names, per trace;
- ``attempts``, ``signals`` (one row per signal id), ``tasks`` (their clock-free decisions)
  and ``breakdown`` (each task's spend by role, provider and model);
- ``files`` (the span files of the version it reflects) and ``trace_files`` (which files hold
  each trace), so it can find every row of a trace without scanning the lake.

``refresh()`` follows the Delta logs from the versions it reflects (``Tables.commits``):

1. a commit that adds span files (ingest, or anything not ours): the traces in them are
   recomputed from every file holding them, deduplicated and resolved (``trace_spans``), then
   every attempt with a part in those traces (before or after), and their tasks;
2. a compaction commit (``tasklake.op = compact``) changes no answer — it rewrites the same
   spans, dropping copies that never counted — so only ``trace_files`` follows it;
3. a commit that adds signals: the tasks those signals name are decided again.

Every statement renders the templates the views use (``schemas.templates``), so the store
answers exactly what the views answer over the same table versions; tests hold them equal.
Queries read the store at the versions it reflects (``snapshot``: the pin of every table,
costs included), so one answer never mixes versions. Decisions do not depend on the clock:
the outcome is read at ``as_of`` when queried, and a task with a signal later than ``as_of``
is decided again at query time from the signals in force then (``store_task_facts``,
``tasks_at.sql``), so the store answers for any moment.

**On disk, bounded memory.** Given a ``path``, the store is a file: DuckDB keeps what queries
touch in its buffer pool (bounded by the connection's ``memory_limit``) and the store survives
a restart, which then follows the log from where it was. The file also records the versions
its tables reflect, written in the same transaction as the tables. A store built by other
code or other settings (a fingerprint of every SQL definition and of the workflow rules) is
rebuilt; so is one whose versions' commits the log no longer holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from schemas.delta import Commit, DataFile, Snapshot, Tables
from schemas.lake import COMPACTED_PREFIX, SIGNALS, SPANS
from schemas.prices import PriceBook, fill_model_prices
from schemas.settings import DECISION_RULES, Settings
from schemas.templates import PACKAGE as TEMPLATES
from schemas.templates import render, sql_file, substitute
from schemas.views import (
    ANALYSIS_FILES,
    analysis_bindings,
    settings_bindings,
    workflow_rules_values,
)
from schemas.views import PACKAGE as VIEWS

log = logging.getLogger(__name__)

SCHEMA = "tl_store"
#: Where a rebuild keeps its intermediate tables (a file beside the store, deleted after).
SCRATCH = "tl_build"
#: Bump when the store's tables change shape: a store file of another version is rebuilt.
STORE_VERSION = 4
#: Compress the store (a checkpoint) after a rebuild and after this many refreshes.
CHECKPOINT_EVERY = 200
#: Spans per pass of a rebuild: whole days, and each trace whole with the day it starts on
#: (the bound of what one pass holds in memory: ~1 KB a span under query_memory_limit).
BUILD_PASS_SPANS = 150_000
#: Attempts, signals or tasks per pass of the larger aggregations.
BUILD_PASS_ROWS = 250_000
#: Store files attached by this process: a second store on the same file stays in memory.
_IN_USE: set[str] = set()
_IN_USE_LOCK = threading.Lock()

#: The templates the stored tables are computed from (the rest is applied at query time).
STORE_SQL = (
    "macros",
    "span_copies",
    "unique_spans",
    "trace_spans",
    "attempt_parts",
    "attempt_rows",
    "breakdown_parts",
    "breakdown_sums",
    "call_parts",
    "stored_signals",
    "signal_rows",
    "task_rows",
)
#: The per-trace tables of the store and the templates they hold (over a pass of spans).
PART_TABLES = (
    ("attempt_parts", "attempt_parts"),
    ("breakdown_parts", "breakdown_parts"),
    ("call_parts", "call_parts"),
)
#: The columns of trace_spans that the stored parts read (what a pass keeps of each span).
PART_COLUMNS = (
    "trace_id, attempt_id, correlation_level, billed, is_model_call, operation, status_code,"
    " cost_usd, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,"
    " reasoning_tokens, total_tokens, start_time_unix_nano, duration_ns, rk, span_id, name,"
    " task_id, workflow, team, workflow_version, resource_workflow, resource_team,"
    " resource_version, resolved_role, provider, response_model, request_model"
)


@dataclass
class RefreshStats:
    kind: str = "none"  # none | incremental | rebuild
    seconds: float = 0.0
    commits: int = 0
    added_files: int = 0
    removed_files: int = 0
    traces: int = 0  # traces recomputed
    attempts: int = 0  # attempts recomputed
    tasks: int = 0  # tasks recomputed


def fingerprint(settings: Settings | None) -> str:
    """What the stored tables depend on besides the lake: their SQL definitions, the workflow
    rules that decide tasks (not the targets and thresholds read at query time) and the
    store's own version. A store with another fingerprint is rebuilt."""
    digest = hashlib.sha256(f"store-v{STORE_VERSION}".encode())
    for name in STORE_SQL:
        digest.update(name.encode())
        digest.update(resources.files(TEMPLATES).joinpath(f"{name}.sql").read_bytes())
    digest.update(workflow_rules_values(settings, DECISION_RULES).encode())
    return digest.hexdigest()[:32]


def _sql_list(items: Iterable[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in items) + "]"


#: The span columns the stored parts are computed from: a pass reads only these (the maps of
#: attributes, events and links are most of a span's bytes, and no stored figure reads them).
PART_INPUT = (
    "trace_id, span_id, parent_span_id, name, kind, start_time_unix_nano, duration_ns,"
    " status_code, operation, is_model_call, provider, request_model, response_model,"
    " input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,"
    " total_tokens, cost_usd, correlation_id, task_id, workflow, workflow_version, team, role,"
    " resource_correlation_id, resource_workflow, resource_team, resource_version, ingested_at,"
    " filename, file_row_number"
)


def span_read(uris: Sequence[str], seed: str | None, where: str = "", columns: str = "*") -> str:
    """A relation of span rows (as the templates' ``spans_table``) from ``uris``."""
    files = list(uris) or ([seed] if seed else [])
    read = (
        f"read_parquet({_sql_list(files)}, hive_partitioning = true, union_by_name = true,"
        " filename = true, file_row_number = true)"
    )
    return f"(SELECT {columns} FROM {read} {where})"


class Store:
    """The materialized tasks of one lake on one DuckDB connection."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        tables: Tables,
        *,
        path: Path | None = None,
        settings: Settings | None = None,
    ) -> None:
        self._con = con
        self.tables = tables
        self.settings = settings
        self._lock = threading.Lock()
        self.built = False
        self.snapshot: Snapshot | None = None
        self.max_signal_at: datetime | None = None
        self.last = RefreshStats()
        self.fingerprint = fingerprint(settings)
        self._prices = PriceBook(settings.prices if settings is not None else ())
        self._since_checkpoint = 0
        self._file_no: dict[str, int] = {}  # relative path -> number, current span files
        self._signal_files: set[str] = set()
        self._next_no = 0
        self.path: Path | None = None
        if path is not None:
            self.path = self._attach_file(path)
        if self.path is None:
            con.execute(f"ATTACH ':memory:' AS {SCHEMA} (COMPRESS)")
        else:
            self._load()
        if self.built:
            self._define_macros()
            self._price_models(con, f"{SCHEMA}.call_parts")

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

    def _load(self) -> None:
        """Take over what the store file holds when it was built by this code and settings."""
        s = SCHEMA
        tables = {
            r[0]
            for r in self._con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [s]
            ).fetchall()
        }
        if "meta" in tables:
            meta = dict(self._con.execute(f"SELECT key, value FROM {s}.meta").fetchall())
            if meta.get("fingerprint") == self.fingerprint and "versions" in meta:
                versions = json.loads(meta["versions"])
                try:
                    self.snapshot = Snapshot(
                        {t: self.tables.version_of(t, v) for t, v in versions.items()}
                    )
                except Exception as exc:  # the versions are gone from the log
                    log.info("task store versions %s unreadable (%s): rebuilding", versions, exc)
                else:
                    self._file_no = dict(
                        self._con.execute(f"SELECT path, file_no FROM {s}.files").fetchall()
                    )
                    self._next_no = max(self._file_no.values(), default=-1) + 1
                    self._signal_files = {f.path for f in self.snapshot[SIGNALS].files}
                    row = self._con.execute(f"SELECT max(occurred_at) FROM {s}.signals").fetchone()
                    self.max_signal_at = row[0] if row else None
                    self.built = True
                    log.info("task store %s: at versions %s", self.path, versions)
                    return
        for name in sorted(tables):  # another version or other settings: start over
            self._con.execute(f"DROP TABLE IF EXISTS {s}.{name}")

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

    def stats(self) -> dict[str, Any]:
        return {
            "built": self.built,
            "file": str(self.path) if self.path else None,
            "versions": self.snapshot.versions if self.snapshot else None,
            "last_refresh": self.last.__dict__,
        }

    # ------------------------------------------------------------------ refresh

    def refresh(self, target: Snapshot | None = None) -> RefreshStats:
        """Bring the store to ``target`` (default: the tables' newest versions)."""
        with self._lock:
            started = time.perf_counter()
            snap = target or self.tables.snapshot()
            if self.built and self.snapshot is not None and snap.versions == self.snapshot.versions:
                self.last = RefreshStats()
                return self.last
            cur = self._con.cursor()
            try:
                cur.execute("SET TimeZone = 'UTC'")
                # Semi-joins on up to this many keys reach the scans of the (sorted) store
                # tables as IN filters, which skip every segment that cannot hold a key.
                cur.execute("SET dynamic_or_filter_threshold = 20000")
                stats = self._incremental(cur, snap) if self.built else None
                if stats is None:
                    stats = self._rebuild(cur, snap)
                    self._price_models(cur, f"{SCHEMA}.call_parts")
                row = cur.execute(f"SELECT max(occurred_at) FROM {SCHEMA}.signals").fetchone()
                self.max_signal_at = row[0] if row else None
            except BaseException:
                with contextlib.suppress(duckdb.Error):  # none may be open
                    cur.execute("ROLLBACK")
                raise
            finally:
                cur.close()
            if not self.built:
                self._define_macros()  # before anyone sees it built
                self.built = True
            self.snapshot = snap
            self._since_checkpoint = 0 if stats.kind == "rebuild" else self._since_checkpoint + 1
            if stats.kind == "rebuild" or self._since_checkpoint >= CHECKPOINT_EVERY:
                try:
                    self._con.cursor().execute(f"CHECKPOINT {SCHEMA}").close()
                    self._since_checkpoint = 0
                except duckdb.Error as exc:  # only space is at stake: try again next time
                    log.warning("could not compress the task store: %s", exc)
            stats.seconds = time.perf_counter() - started
            self.last = stats
            return stats

    def _run(self, cur: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> Any:
        started = time.perf_counter()
        out = cur.execute(sql, params)
        log.debug(
            "task store: %.3f s  %.120s", time.perf_counter() - started, " ".join(sql.split())
        )
        return out

    # ------------------------------------------------------------------ rebuild

    def _numbered(self, files: Iterable[DataFile]) -> pa.Table:
        rows = list(files)
        for f in rows:
            if f.path not in self._file_no:
                self._file_no[f.path] = self._next_no
                self._next_no += 1
        return pa.table(
            {
                "file_no": pa.array([self._file_no[f.path] for f in rows], pa.int32()),
                "path": pa.array([f.path for f in rows], pa.string()),
                "uri": pa.array([f.uri for f in rows], pa.string()),
                "day": pa.array([f.day for f in rows], pa.string()),
                "rows": pa.array([f.rows for f in rows], pa.int64()),
            }
        )

    def _seed(self) -> str | None:
        return self.tables.seed(SPANS)

    def _signals_raw(self, snap: Snapshot, where: str = "") -> str:
        files = snap[SIGNALS].uris() or [s for s in [self.tables.seed(SIGNALS)] if s]
        table = (
            f"(SELECT * FROM read_parquet({_sql_list(files)}, hive_partitioning = true,"
            f" union_by_name = true))"
        )
        return f"(SELECT * FROM ({render('stored_signals', {'signals_table': table})}) {where})"

    def _rebuild(self, cur: duckdb.DuckDBPyConnection, snap: Snapshot) -> RefreshStats:
        s = SCHEMA
        b = self._attach_scratch(cur)
        self._file_no, self._next_no = {}, 0
        files = snap[SPANS].files
        cur.register("listing", self._numbered(files))
        uris = [f.uri for f in files]
        single = b == s  # in memory: one transaction for everything
        try:
            if single:
                self._run(cur, "BEGIN")
            self._run(
                cur,
                f"CREATE OR REPLACE TABLE {b}._trace_files AS SELECT DISTINCT r.trace_id,"
                " l.file_no FROM read_parquet("
                f"{_sql_list(uris or [self._seed() or ''])}, filename = true) r"
                " JOIN listing l ON l.uri = r.filename",
            )
            for i, days in enumerate(self._day_passes(files)):
                # the traces whose first day is in this pass, from every file holding them
                self._run(
                    cur,
                    "CREATE OR REPLACE TEMP TABLE pass_traces AS SELECT t.trace_id FROM"
                    f" {b}._trace_files t JOIN listing l USING (file_no) GROUP BY t.trace_id"
                    " HAVING list_contains(?::VARCHAR[], min(l.day))",
                    [days],
                )
                uris = [
                    r[0]
                    for r in self._run(
                        cur,
                        f"SELECT DISTINCT l.uri FROM {b}._trace_files t JOIN listing l USING"
                        " (file_no) WHERE t.trace_id IN (SELECT trace_id FROM pass_traces)",
                    ).fetchall()
                ]
                where = "WHERE trace_id IN (SELECT trace_id FROM pass_traces)"
                spans = span_read(uris, self._seed(), where, PART_INPUT)
                self._parts_of(cur, spans, f"{b}._pass")
                verb = "CREATE OR REPLACE TABLE" if i == 0 else "INSERT INTO"
                for table, template in ((f"_{t}", p) for t, p in PART_TABLES):
                    into = f"{verb} {b}.{table} " + ("AS " if i == 0 else "")
                    self._run(cur, into + render(template, {"trace_spans": f"{b}._pass"}))
            self._run(cur, f"DROP TABLE {b}._pass")
            self._chunked(
                cur,
                f"{b}._attempts",
                f"{b}._attempt_parts",
                "attempt_id",
                lambda rows: render("attempt_rows", {"attempt_parts": rows}),
            )
            self._chunked(
                cur,
                f"{b}._signals",
                self._signals_raw(snap),
                "signal_id",
                lambda rows: render("signal_rows", {"raw": rows}),
            )
            self._chunked(
                cur,
                f"{b}._tasks",
                f"{b}._attempts",
                "task_key",
                lambda rows: render("task_rows", {"attempts": rows, "signals": f"{b}._signals"}),
            )
            if not single:
                self._run(cur, "BEGIN")
            for table, sql in (
                ("files", "SELECT * FROM listing"),
                ("trace_files", f"SELECT * FROM {b}._trace_files ORDER BY trace_id"),
                ("attempt_parts", f"SELECT * FROM {b}._attempt_parts ORDER BY attempt_id"),
                ("breakdown_parts", f"SELECT * FROM {b}._breakdown_parts ORDER BY attempt_id"),
                ("call_parts", f"SELECT * FROM {b}._call_parts ORDER BY attempt_id"),
                ("attempts", f"SELECT * FROM {b}._attempts ORDER BY task_key"),
                (
                    "signals",
                    f"SELECT * FROM {b}._signals ORDER BY coalesce(task_id, correlation_id)",
                ),
                ("tasks", f"SELECT * FROM {b}._tasks ORDER BY task_key"),
            ):
                self._run(cur, f"CREATE OR REPLACE TABLE {s}.{table} AS {sql}")
            self._run(
                cur,
                f"CREATE OR REPLACE TABLE {s}.breakdown AS SELECT * FROM ("
                + self._breakdown_sql(f"{s}.breakdown_parts", f"{s}.attempts")
                + ") ORDER BY task_key",
            )
            if single:
                for stage in (
                    "_trace_files",
                    "_attempt_parts",
                    "_breakdown_parts",
                    "_call_parts",
                    "_attempts",
                    "_signals",
                    "_tasks",
                ):
                    self._run(cur, f"DROP TABLE {s}.{stage}")
            self._write_meta(cur, snap)
            self._run(cur, "COMMIT")
        finally:
            if not single:
                self._detach_scratch(cur)
            cur.unregister("listing")
        self._signal_files = {f.path for f in snap[SIGNALS].files}
        count = cur.execute(f"SELECT count(*) FROM {s}.tasks").fetchone()
        return RefreshStats(kind="rebuild", tasks=count[0] if count else 0)

    @staticmethod
    def _day_passes(files: Sequence[DataFile]) -> list[list[str]]:
        """The partitions in consecutive groups of about ``BUILD_PASS_SPANS`` spans (at least
        one pass, so an empty lake builds empty tables)."""
        rows: dict[str, int] = {}
        for f in files:
            rows[f.day] = rows.get(f.day, 0) + f.rows
        passes: list[list[str]] = [[]]
        held = 0
        for day in sorted(rows):
            if passes[-1] and held + rows[day] > BUILD_PASS_SPANS:
                passes.append([])
                held = 0
            passes[-1].append(day)
            held += rows[day]
        return passes

    def _parts_of(self, cur: duckdb.DuckDBPyConnection, spans: str, into: str) -> None:
        """``into``: the columns of trace_spans the parts need, over span rows ``spans``."""
        body = render("trace_spans", {"spans_table": spans})
        create = "CREATE OR REPLACE TABLE" if "." in into else "CREATE OR REPLACE TEMP TABLE"
        self._run(cur, f"{create} {into} AS SELECT {PART_COLUMNS} FROM ({body})")

    @staticmethod
    def _breakdown_sql(parts: str, attempts: str, where: str = "") -> str:
        rows = (
            f"(SELECT a.task_key, b.* FROM {parts} b JOIN {attempts} a USING (attempt_id) {where})"
        )
        return render("breakdown_sums", {"rows": rows})

    def _write_meta(self, cur: duckdb.DuckDBPyConnection, snap: Snapshot) -> None:
        s = SCHEMA
        self._run(cur, f"CREATE TABLE IF NOT EXISTS {s}.meta (key VARCHAR, value VARCHAR)")
        self._run(cur, f"DELETE FROM {s}.meta")
        self._run(
            cur,
            f"INSERT INTO {s}.meta VALUES ('fingerprint', ?), ('versions', ?)",
            [self.fingerprint, json.dumps(snap.versions, sort_keys=True)],
        )

    def _scratch_path(self) -> Path | None:
        return None if self.path is None else self.path.with_name(self.path.stem + ".build.duckdb")

    def _attach_scratch(self, cur: duckdb.DuckDBPyConnection) -> str:
        scratch = self._scratch_path()
        if scratch is None:
            return SCHEMA
        for stale in (scratch, scratch.with_name(scratch.name + ".wal")):
            stale.unlink(missing_ok=True)
        quoted = str(scratch).replace("'", "''")
        self._run(cur, f"ATTACH '{quoted}' AS {SCRATCH}")
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

    def _chunked(
        self,
        cur: duckdb.DuckDBPyConnection,
        table: str,
        source: str,
        key: str,
        select: Any,
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
            self._run(cur, into + f"SELECT * FROM ({select(rows)})")

    # ------------------------------------------------------------------ incremental

    def _changes(self, snap: Snapshot, table: str) -> list[Commit] | None:
        assert self.snapshot is not None
        since, until = self.snapshot[table].version, snap[table].version
        if until < since:
            return None  # the table was replaced: start over
        return self.tables.commits(table, since, until)

    def _incremental(self, cur: duckdb.DuckDBPyConnection, snap: Snapshot) -> RefreshStats | None:
        """Follow the logs to ``snap``; None when only a rebuild can (see module doc)."""
        span_commits = self._changes(snap, SPANS)
        signal_commits = self._changes(snap, SIGNALS)
        if span_commits is None or signal_commits is None:
            return None
        s = SCHEMA
        stats = RefreshStats(kind="incremental", commits=len(span_commits) + len(signal_commits))
        # 1. which span files came and went; which of them bring new data
        fresh: list[DataFile] = []  # files whose traces are recomputed
        rewritten: list[DataFile] = []  # compaction outputs: same spans, new files
        gone: list[str] = []  # relative paths no longer in the table
        for commit in span_commits:
            ours = commit.op == "compact" and all(
                p.rsplit("/", 1)[-1].startswith(COMPACTED_PREFIX)
                for p in (f.path for f in commit.added)
            )
            if commit.removed and not ours:
                return None  # something rewrote data we cannot follow file by file
            (rewritten if ours else fresh).extend(commit.added)
            gone.extend(commit.removed)
        if any(
            p not in self._file_no and p not in {f.path for f in fresh + rewritten} for p in gone
        ):
            return None
        current = {f.path for f in snap[SPANS].files}
        # 2. new signals: the copies of their ids
        new_signal_files = [f for c in signal_commits for f in c.added if c.op != "compact"]
        if any(c.removed and c.op != "compact" for c in signal_commits):
            return None
        stats.added_files, stats.removed_files = len(fresh) + len(rewritten), len(gone)
        gone_nos = [self._file_no[p] for p in gone if p in self._file_no]
        added = [f for f in fresh + rewritten if f.path in current]
        cur.register("listing_added", self._numbered(added))
        try:
            self._run(cur, "BEGIN")
            # traces of the fresh files (read even if compaction already merged them)
            if fresh:
                self._run(
                    cur,
                    "CREATE OR REPLACE TEMP TABLE t0 AS SELECT DISTINCT trace_id FROM"
                    f" read_parquet({_sql_list([f.uri for f in fresh])})",
                )
            else:
                self._run(cur, "CREATE OR REPLACE TEMP TABLE t0 (trace_id VARCHAR)")
            # the index follows every file that came or went
            if gone_nos:
                self._run(
                    cur,
                    f"DELETE FROM {s}.trace_files WHERE file_no IN (SELECT unnest(?::INTEGER[]))",
                    [gone_nos],
                )
                self._run(
                    cur,
                    f"DELETE FROM {s}.files WHERE file_no IN (SELECT unnest(?::INTEGER[]))",
                    [gone_nos],
                )
            if added:
                self._run(
                    cur,
                    f"INSERT INTO {s}.trace_files SELECT DISTINCT r.trace_id, l.file_no FROM"
                    f" read_parquet({_sql_list([f.uri for f in added])}, filename = true) r"
                    " JOIN listing_added l ON l.uri = r.filename",
                )
                self._run(cur, f"INSERT INTO {s}.files SELECT * FROM listing_added")
            for p in gone:
                self._file_no.pop(p, None)
            # 2. the traces' parts, from every file that holds them
            uris = [
                r[0]
                for r in self._run(
                    cur,
                    f"SELECT DISTINCT f.uri FROM {s}.trace_files t JOIN {s}.files f USING"
                    " (file_no) WHERE t.trace_id IN (SELECT trace_id FROM t0)",
                ).fetchall()
            ]
            stats.traces = self._scalar(cur, "SELECT count(*) FROM t0")
            self._parts_of(
                cur,
                span_read(
                    uris, self._seed(), "WHERE trace_id IN (SELECT trace_id FROM t0)", PART_INPUT
                ),
                "pass",
            )
            self._run(
                cur,
                "CREATE OR REPLACE TEMP TABLE a0 AS SELECT DISTINCT attempt_id FROM pass"
                f" UNION SELECT attempt_id FROM {s}.attempt_parts"
                " WHERE trace_id IN (SELECT trace_id FROM t0)",
            )
            # priced once the transaction is over: one transaction writes to one database
            models = self._models_of(cur, "(" + render("call_parts", {"trace_spans": "pass"}) + ")")
            for table, template in PART_TABLES:
                self._run(
                    cur, f"DELETE FROM {s}.{table} WHERE trace_id IN (SELECT trace_id FROM t0)"
                )
                self._run(
                    cur, f"INSERT INTO {s}.{table} " + render(template, {"trace_spans": "pass"})
                )
            # 3. the attempts with a part in those traces, from all their parts
            self._run(
                cur,
                "CREATE OR REPLACE TEMP TABLE new_attempts AS "
                + render(
                    "attempt_rows",
                    {
                        "attempt_parts": f"(SELECT * FROM {s}.attempt_parts"
                        " WHERE attempt_id IN (SELECT attempt_id FROM a0))"
                    },
                ),
            )
            self._run(
                cur,
                "CREATE OR REPLACE TEMP TABLE task_keys AS SELECT task_key FROM"
                f" {s}.attempts WHERE attempt_id IN (SELECT attempt_id FROM a0)"
                " UNION SELECT task_key FROM new_attempts",
            )
            self._run(cur, "CREATE OR REPLACE TEMP TABLE span_task_keys AS SELECT * FROM task_keys")
            self._run(
                cur, f"DELETE FROM {s}.attempts WHERE attempt_id IN (SELECT attempt_id FROM a0)"
            )
            self._run(cur, f"INSERT INTO {s}.attempts SELECT * FROM new_attempts")
            stats.attempts = self._scalar(cur, "SELECT count(*) FROM a0")
            # 4. new signals: every stored copy of their ids decides them again
            self._update_signals(cur, snap, new_signal_files)
            # 5. the tasks touched, from all their attempts and signals
            self._run(
                cur,
                "CREATE OR REPLACE TEMP TABLE task_attempts AS SELECT * FROM"
                f" {s}.attempts WHERE task_key IN (SELECT task_key FROM task_keys)",
            )
            self._run(
                cur,
                "CREATE OR REPLACE TEMP TABLE task_signal_keys AS SELECT task_key AS k FROM"
                " task_keys UNION SELECT attempt_id FROM task_attempts",
            )
            self._run(
                cur,
                "CREATE OR REPLACE TEMP TABLE new_tasks AS "
                + render(
                    "task_rows",
                    {
                        "attempts": "task_attempts",
                        "signals": f"(SELECT * FROM {s}.signals WHERE coalesce(task_id,"
                        " correlation_id) IN (SELECT k FROM task_signal_keys))",
                    },
                ),
            )
            self._run(
                cur, f"DELETE FROM {s}.tasks WHERE task_key IN (SELECT task_key FROM task_keys)"
            )
            self._run(cur, f"INSERT INTO {s}.tasks SELECT * FROM new_tasks")
            stats.tasks = self._scalar(cur, "SELECT count(*) FROM task_keys")
            # 6. the breakdown of the tasks whose attempts changed (a signal changes no spend)
            self._run(
                cur,
                f"DELETE FROM {s}.breakdown WHERE task_key IN (SELECT task_key FROM"
                " span_task_keys)",
            )
            self._run(
                cur,
                "CREATE OR REPLACE TEMP TABLE breakdown_attempts AS SELECT * FROM"
                f" {s}.attempts WHERE task_key IN (SELECT task_key FROM span_task_keys)",
            )
            self._run(
                cur,
                f"INSERT INTO {s}.breakdown "
                + self._breakdown_sql(
                    # the parts of those attempts only: a point lookup on the sorted table
                    f"(SELECT * FROM {s}.breakdown_parts WHERE attempt_id IN"
                    " (SELECT attempt_id FROM breakdown_attempts))",
                    "breakdown_attempts",
                ),
            )
            self._write_meta(cur, snap)
            self._run(cur, "COMMIT")
        finally:
            cur.unregister("listing_added")
        fill_model_prices(cur, models, self._prices, datetime.now(UTC).date())
        self._signal_files = {f.path for f in snap[SIGNALS].files}
        return stats

    def _update_signals(
        self, cur: duckdb.DuckDBPyConnection, snap: Snapshot, new_files: Sequence[DataFile]
    ) -> None:
        """Replace the stored signals whose ids have new copies; their tasks join task_keys."""
        s = SCHEMA
        if not new_files:
            return
        table = (
            f"(SELECT * FROM read_parquet({_sql_list([f.uri for f in new_files])},"
            " hive_partitioning = true, union_by_name = true))"
        )
        self._run(
            cur,
            "CREATE OR REPLACE TEMP TABLE sig_ids AS SELECT DISTINCT signal_id FROM "
            f"({render('stored_signals', {'signals_table': table})})",
        )
        self._run(
            cur,
            "CREATE OR REPLACE TEMP TABLE new_signals AS "
            + render(
                "signal_rows",
                {
                    "raw": self._signals_raw(
                        snap, "WHERE signal_id IN (SELECT signal_id FROM sig_ids)"
                    )
                },
            ),
        )
        self._run(
            cur,
            "INSERT INTO task_keys "
            "SELECT coalesce(x.task_id, a.task_key) FROM (SELECT task_id, correlation_id FROM"
            f" {s}.signals WHERE signal_id IN (SELECT signal_id FROM sig_ids)"
            " UNION ALL SELECT task_id, correlation_id FROM new_signals) x"
            f" LEFT JOIN {s}.attempts a ON a.attempt_id = x.correlation_id"
            " WHERE coalesce(x.task_id, a.task_key) IS NOT NULL",
        )
        self._run(
            cur, f"DELETE FROM {s}.signals WHERE signal_id IN (SELECT signal_id FROM sig_ids)"
        )
        self._run(cur, f"INSERT INTO {s}.signals SELECT * FROM new_signals")

    def _price_models(self, cur: duckdb.DuckDBPyConnection, calls: str) -> None:
        """Price the models of ``calls`` (call_parts rows) that ``model_prices`` does not hold
        yet, at today's prices (schemas.prices): the what-if figures of the levers."""
        fill_model_prices(cur, self._models_of(cur, calls), self._prices, datetime.now(UTC).date())

    @staticmethod
    def _models_of(cur: duckdb.DuckDBPyConnection, calls: str) -> list[tuple[Any, Any]]:
        rows: list[tuple[Any, Any]] = cur.execute(
            f"SELECT DISTINCT provider, model FROM (SELECT * FROM {calls}) WHERE kind = 'model'"
        ).fetchall()
        return rows

    @staticmethod
    def _scalar(cur: duckdb.DuckDBPyConnection, sql: str) -> int:
        row = cur.execute(sql).fetchone()
        return int(row[0]) if row else 0

    # ------------------------------------------------------------------ query-time macros

    def _define_macros(self) -> None:
        """The decisions at as_of(), the cost macro and the allocation view over the stored
        tables (the same templates as the views)."""
        # a cursor of its own: the follower thread runs this while requests use the connection
        con = self._con.cursor()
        try:
            s = SCHEMA
            bindings = settings_bindings(self.settings)
            con.execute(
                "CREATE OR REPLACE VIEW store_task_facts AS "
                + render(
                    "tasks_at",
                    {"tasks": f"{s}.tasks", "attempts": f"{s}.attempts", "signals": f"{s}.signals"},
                )
            )
            con.execute(
                "CREATE OR REPLACE VIEW store_tasks AS "
                + render("task_outcomes", {"task_facts": "store_task_facts"})
            )
            tasks = "store_tasks"
            allocations = (
                "("
                + render(
                    "allocation",
                    {"tasks": "store_task_facts", "costs": "costs", "output": "task_allocations"},
                )
                + ")"
            )
            body = render(
                "cost_rows",
                {"tasks": tasks, "breakdown": f"{s}.breakdown", "allocations": allocations},
            )
            con.execute(
                "CREATE OR REPLACE MACRO store_cost_per_task_by("
                f"{bindings['cost_params']}) AS TABLE\n{body};"
            )
            con.execute(
                "CREATE OR REPLACE VIEW store_cost_allocations AS "
                + render(
                    "allocation",
                    {"tasks": "store_task_facts", "costs": "costs", "output": "entry_allocations"},
                )
            )
            con.execute(
                "CREATE OR REPLACE VIEW store_unmatched_signals AS "
                + render(
                    "signals_for_no_task",
                    {
                        "signals": f"({render('signals_now', {'signals': f'{s}.signals'})})",
                        "attempts": f"{s}.attempts",
                        "tasks": "store_task_facts",
                    },
                )
            )
            con.execute(
                "CREATE OR REPLACE MACRO store_unallocated_costs_in("
                f"{bindings['unallocated_params']}) AS TABLE\n"
                + render(
                    "unallocated",
                    {
                        "entry_allocations": "store_cost_allocations",
                        "unmatched": "store_unmatched_signals",
                    },
                )
            )
            analyses = {**bindings, **analysis_bindings(store=s)}
            for name in ANALYSIS_FILES:
                con.execute(substitute(sql_file(VIEWS, name), analyses))
        finally:
            con.close()
