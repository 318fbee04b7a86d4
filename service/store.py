"""The task views, materialized in the service and kept exact by incremental refresh.

Recomputing attempts and tasks from ~2M roll-up rows takes seconds on a 2-core machine, and a
dashboard asks every few seconds. So the service keeps ``attempts``, ``tasks`` (their
clock-free decisions) and deduplicated ``signals`` as tables of an in-memory database attached
as ``tl_store``, built from one listing of the lake's files. Before a query, ``refresh()``
lists the files again (a few milliseconds) and, when something changed, recomputes only what
the change can touch:

1. the traces of added files (and of removed ones: compaction replaces files);
2. every attempt with a roll-up row in those traces, plus every trace holding a row of those
   attempts (the closure): correlation ids are resolved per trace, so attempts outside the
   closure cannot have changed;
3. the tasks of those attempts (before and after) and of new signals, with all their signals.

Every statement renders the same templates the views use (``schemas.views.template``), so
the store answers exactly what the views answer over the same files; tests hold them equal.
Decisions do not depend on the clock: the outcome is read at ``as_of`` when queried, so the
store stays right as windows elapse. An ``as_of`` earlier than the latest stored signal needs
the signals of that moment: such queries go to the views instead (``covers``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from schemas.lake import SEED_PARTITION, SIGNALS, SPANS, is_vanished_file_error, seed_file
from schemas.rollup import ATTEMPTS_DIR, rollup_select
from schemas.views import cost_macro, template, with_outcome

log = logging.getLogger(__name__)

SCHEMA = "tl_store"
#: Compress the store (a checkpoint: ~4x smaller, seconds at 10M spans) after a rebuild and
#: after this many incremental refreshes, whose rows stay uncompressed until then.
CHECKPOINT_EVERY = 200
#: Refresh by recomputing everything when more than this share of span files changed.
REBUILD_SHARE = 0.5


@dataclass(frozen=True)
class LakeFile:
    path: str  # the data file, as listed in its partition
    source: str  # what is read for it: its roll-up companion, else the file itself
    size: int
    mtime_ns: int
    day: str

    @property
    def rolled_up(self) -> bool:
        return self.source != self.path


@dataclass
class RefreshStats:
    kind: str = "none"  # none | incremental | rebuild
    seconds: float = 0.0
    added_files: int = 0
    removed_files: int = 0
    attempts: int = 0  # attempts recomputed
    tasks: int = 0  # tasks recomputed


def list_span_files(lake: Path) -> dict[str, LakeFile]:
    return _list(lake / SPANS, ATTEMPTS_DIR)


def list_signal_files(lake: Path) -> dict[str, LakeFile]:
    return _list(lake / SIGNALS, None)


def _list(root: Path, companion: str | None) -> dict[str, LakeFile]:
    out: dict[str, LakeFile] = {}
    try:
        parts = sorted(os.scandir(root), key=lambda e: e.name)
    except FileNotFoundError:
        return out
    for part in parts:
        if not part.name.startswith("date=") or part.name == SEED_PARTITION:
            continue
        try:
            entries = list(os.scandir(part.path))
        except FileNotFoundError:  # a partition swapped away under us: list it next time
            continue
        for entry in entries:
            if not entry.name.endswith(".parquet") or entry.name.startswith(("_", ".")):
                continue
            try:
                st = entry.stat()
            except FileNotFoundError:
                continue
            source = entry.path
            if companion is not None:
                candidate = os.path.join(part.path, companion, entry.name)
                if os.path.exists(candidate):
                    source = candidate
            out[entry.path] = LakeFile(
                entry.path, source, st.st_size, st.st_mtime_ns, part.name[len("date=") :]
            )
    return out


def _sql_list(paths: Iterable[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


class Store:
    """The materialized tasks of one lake on one DuckDB connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, lake: Path) -> None:
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
        con.execute(f"ATTACH ':memory:' AS {SCHEMA} (COMPRESS)")

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
            except duckdb.Error as exc:  # only memory is at stake: try again next time
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
            rows.append((self._file_no[f.path], f.source, f.day))
        return pa.table(
            {
                "file_no": pa.array([r[0] for r in rows], pa.int32()),
                "source": pa.array([r[1] for r in rows], pa.string()),
                "day": pa.array([r[2] for r in rows], pa.string()),
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

    def _signal_raw(self, files: Sequence[LakeFile], where: str = "") -> str:
        if not files:
            seed = seed_file(self.lake, SIGNALS)
            return f"(SELECT * FROM read_parquet({_sql_list([str(seed)])}) {where})"
        return (
            f"(SELECT * FROM read_parquet({_sql_list(f.source for f in files)},"
            f" union_by_name = true, hive_partitioning = false) {where})"
        )

    def _rebuild(
        self,
        cur: duckdb.DuckDBPyConnection,
        spans: dict[str, LakeFile],
        signals: dict[str, LakeFile],
    ) -> RefreshStats:
        files = list(spans.values())
        cur.register("listing_all", self._numbers(files))
        parts = self._parts(files, "listing_all")
        resolved = "(" + template("part_attempts", parts=parts) + ")"
        s = SCHEMA
        # Each table is sorted by the key lookups use: a point lookup then reads one segment.
        cur.execute("BEGIN")
        cur.execute(
            f"CREATE OR REPLACE TABLE {s}.attempts AS SELECT * FROM ("
            + template("attempt_rows", resolved=resolved)
            + ") ORDER BY task_key"
        )
        cur.execute(
            f"CREATE OR REPLACE TABLE {s}.parts AS SELECT file_no, trace_id, correlation_id,"
            f" resource_correlation_id, attempt_id FROM {resolved} ORDER BY attempt_id"
        )
        cur.execute(
            f"CREATE OR REPLACE TABLE {s}.files AS SELECT file_no, source, day FROM listing_all"
        )
        cur.execute(
            f"CREATE OR REPLACE TABLE {s}.signals AS SELECT * FROM ("
            + template("signal_rows", raw=self._signal_raw(list(signals.values())))
            + ") ORDER BY coalesce(task_id, correlation_id)"
        )
        cur.execute(
            f"CREATE OR REPLACE TABLE {s}.tasks AS SELECT * FROM ("
            + template("task_rows", attempts=f"{s}.attempts", signals=f"{s}.signals")
            + ") ORDER BY task_key"
        )
        cur.execute("COMMIT")
        cur.unregister("listing_all")
        self._define_macros()
        count = cur.execute(f"SELECT count(*) FROM {s}.tasks").fetchone()
        return RefreshStats(kind="rebuild", tasks=count[0] if count else 0)

    def _rows_of_traces(
        self, cur: duckdb.DuckDBPyConnection, traces: str, fresh: Sequence[LakeFile]
    ) -> str:
        """Every roll-up row of the traces in temp table ``traces``: read only from the files
        that hold them (the index says which) and the fresh ones."""
        s = SCHEMA
        nos = cur.execute(
            f"SELECT DISTINCT file_no FROM {s}.parts"
            f" WHERE trace_id IN (SELECT trace_id FROM {traces})"
        ).fetchall()
        by_no = {self._file_no[p]: f for p, f in self._current.items()}
        files = {f.path: f for f in fresh}
        for (no,) in nos:
            f = by_no.get(no)
            if f is not None:
                files[f.path] = f
        cur.register(f"listing_{traces}", self._numbers(files.values()))
        parts = self._parts(list(files.values()), f"listing_{traces}")
        return f"(SELECT * FROM {parts} WHERE trace_id IN (SELECT trace_id FROM {traces}))"

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
        run(
            "CREATE OR REPLACE TEMP TABLE new_attempts AS "
            + template(
                "attempt_rows",
                resolved="(SELECT * FROM r1 WHERE attempt_id IN (SELECT attempt_id FROM a0))",
            )
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
        run(f"DELETE FROM {s}.attempts WHERE attempt_id IN (SELECT attempt_id FROM a0)")
        run(f"INSERT INTO {s}.attempts SELECT * FROM new_attempts")
        run(f"DELETE FROM {s}.parts WHERE {gone}", [removed_nos])
        run(f"DELETE FROM {s}.parts WHERE trace_id IN (SELECT trace_id FROM t1)")
        run(
            f"INSERT INTO {s}.parts SELECT file_no, trace_id, correlation_id,"
            " resource_correlation_id, attempt_id FROM r1"
        )
        run(f"DELETE FROM {s}.files WHERE {gone}", [removed_nos])
        run(f"INSERT INTO {s}.files SELECT file_no, source, day FROM listing_added")
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
        run(
            "CREATE OR REPLACE TEMP TABLE new_tasks AS "
            + template(
                "task_rows",
                attempts="task_attempts",
                signals=(
                    f"(SELECT * FROM {s}.signals WHERE coalesce(task_id, correlation_id)"
                    " IN (SELECT k FROM task_signal_keys))"
                ),
            )
        )
        run(f"DELETE FROM {s}.tasks WHERE task_key IN (SELECT task_key FROM task_keys)")
        run(f"INSERT INTO {s}.tasks SELECT * FROM new_tasks")
        run("COMMIT")
        counts = run(
            "SELECT (SELECT count(*) FROM a0), (SELECT count(DISTINCT task_key) FROM task_keys)"
        ).fetchone()
        for name in ("listing_added", "listing_t0", "listing_t1"):
            cur.unregister(name)
        return RefreshStats(
            kind="incremental",
            attempts=counts[0] if counts else 0,
            tasks=counts[1] if counts else 0,
        )

    def _define_macros(self) -> None:
        tasks = with_outcome(f"{SCHEMA}.tasks")
        self._con.execute(cost_macro("store_cost_per_task_by", tasks, "span_breakdown"))

    # ------------------------------------------------------------------ lookups

    def stats(self) -> dict[str, Any]:
        return {"built": self.built, "last_refresh": self.last.__dict__}
