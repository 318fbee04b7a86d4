"""Compaction on Delta: lossless, sorted, copies dropped, one commit that never conflicts with
ingest, safe beside a second compactor and pinned readers; input choice that rewrites little;
a niced process that holds the lake's lease and dies with its parent; vacuum."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from ingest.lake.append import append_rows
from ingest.lake.compaction import choose_inputs, compact_once, tidy_dictionaries, vacuum
from ingest.lake.compactor import BackgroundCompactor
from ingest.lake.lease import Lease
from schemas.delta import DataFile, is_vanished_file_error
from schemas.lake import SPANS, TABLES
from schemas.settings import Settings
from tests.ingest.spanrows import DAY_NS, span_rows
from tests.lakes import connect, lake_settings, parquet_file, read_parquet, tables
from tests.waiting import eventually

DAY0 = 20_454 * DAY_NS  # 2026-01-01
DAYS = ("2026-01-01", "2026-01-02")
_ROWS: dict[int, pa.Table] = {}


def _rows(n: int) -> pa.Table:
    if n not in _ROWS:
        _ROWS[n] = span_rows(n, seed=3, day_ns=DAY0, days=2)
    return _ROWS[n]


def _settings(lake: str, **kw: object) -> Settings:
    values: dict[str, object] = {
        "writer_id": "c",
        "row_group_rows": 1_000,
        "compaction_target_rows": 4_000,
    }
    values.update(kw)
    return lake_settings(lake, **values)


def _flush_files(lake: str, table: pa.Table, per_file: int) -> None:
    """``table`` committed as small flush files (each split by day like a converter's)."""
    for start in range(0, table.num_rows, per_file):
        append_rows(tables(lake), SPANS, table.slice(start, per_file), prefix=f"w-{start:08d}")


def _files(lake: str, day: str | None = None) -> list[DataFile]:
    return [f for f in tables(lake).version_of(SPANS).files if day is None or f.day == day]


QUERIES = (
    "SELECT count(*), sum(cost_usd), count(DISTINCT span_id), sum(input_tokens) FROM spans",
    "SELECT trace_id, count(*), sum(cost_usd), min(start_time) FROM spans "
    "GROUP BY trace_id ORDER BY trace_id",
    "SELECT count(*), sum(spend_usd), count(DISTINCT attempt_id) FROM attempts",
)


def _answers(con: duckdb.DuckDBPyConnection) -> list[list[tuple[object, ...]]]:
    return [con.execute(q).fetchall() for q in QUERIES]


def test_compaction_is_lossless_and_sorted(lake: str) -> None:
    rows = _rows(6_000)
    _flush_files(lake, rows, 250)
    settings = _settings(lake, compaction_target_rows=10_000)
    stats = compact_once(settings)
    assert stats.input_files > 20 and stats.output_files == 2 and stats.rows == 6_000
    merged = []
    for day in DAYS:
        (f,) = _files(lake, day)
        assert f.path.split("/")[-1].startswith("c-c-")
        pf = parquet_file(f.uri)
        assert all(pf.metadata.row_group(i).num_rows <= 1_000 for i in range(pf.num_row_groups))
        for i in range(pf.num_row_groups):
            # traces together, ordered by their first span's start
            seen: list[str] = []
            for t in pf.read_row_group(i).column("trace_id").to_pylist():
                if not seen or seen[-1] != t:
                    assert t not in seen, "a trace is split inside a row group"
                    seen.append(t)
        assert pf.schema_arrow.equals(TABLES[SPANS].file_schema)  # plain strings
        merged.append(pf.read())
    before = TABLES[SPANS].to_lake(rows).sort_by("span_id")
    after = pa.concat_tables(merged).select(before.schema.names).sort_by("span_id")
    assert after.equals(before)  # every value, ns and decimals included


def test_compaction_drops_copies_and_keeps_the_first_received(lake: str) -> None:
    rows = _rows(1_000)
    _flush_files(lake, rows, 500)
    later = rows.slice(0, 300)
    ingested = pa.array([v + 5 for v in later.column("ingested_at").cast(pa.int64()).to_pylist()])
    later = later.set_column(
        later.schema.get_field_index("ingested_at"),
        "ingested_at",
        ingested.cast(pa.int64()).cast(rows.schema.field("ingested_at").type),
    ).set_column(later.schema.get_field_index("name"), "name", pa.array(["copy"] * 300))
    append_rows(tables(lake), SPANS, later, prefix="again")
    con = connect(lake)
    before = _answers(con)
    stats = compact_once(_settings(lake, compaction_target_rows=10_000))
    assert stats.copies_dropped == 300 and stats.rows == 1_300
    stored = pa.concat_tables(read_parquet(f.uri) for f in _files(lake))
    assert stored.num_rows == 1_000 and "copy" not in stored.column("name").to_pylist()
    tables(lake).pin(con)
    assert _answers(con) == before


def test_ingest_commits_during_a_merge_are_kept(lake: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A receiver commits to the partition while it is being merged: the compaction commit
    removes only its inputs, and the receiver's file stays."""
    _flush_files(lake, _rows(2_000), 500)
    from ingest.lake import compaction

    real = compaction.span_copies

    def copies_then_ingest(t: object, inputs: object) -> object:
        out = real(t, inputs)  # type: ignore[arg-type]
        append_rows(tables(lake), SPANS, _rows(2_100).slice(2_000), prefix="meanwhile")
        return out

    monkeypatch.setattr(compaction, "span_copies", copies_then_ingest)
    stats = compact_once(_settings(lake, compaction_target_rows=10_000))
    assert stats.conflicts == 0 and stats.partitions >= 1
    con = connect(lake)
    assert con.execute("SELECT count(*) FROM spans").fetchone() == (2_100,)
    assert any("meanwhile" in f.path for f in _files(lake))


def test_concurrent_queries_always_see_the_same_answer(lake: str) -> None:
    """Queries hammer the lake while compaction rewrites it again and again, two compactors
    at once: every pinned answer equals the answer before compaction; a second compactor's
    conflicting merge is dropped, never committed on top."""
    _flush_files(lake, _rows(6_000), 150)
    con = connect(lake)
    expected = _answers(con)
    stop = threading.Event()
    answers: list[bool] = []
    errors: list[str] = []

    def hammer() -> None:
        mine = connect(lake)
        while not stop.is_set():
            try:
                tables(lake).pin(mine)
                answers.append(_answers(mine) == expected)
            except duckdb.Error as exc:
                errors.append(str(exc))

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for t in threads:
        t.start()
    merges = conflicts = 0
    try:
        for target in (400, 800, 1_600, 3_200, 6_400):
            settings = _settings(lake, compaction_target_rows=target, row_group_rows=200)
            stats = [compact_once(settings, quiet=0)]
            other = threading.Thread(
                target=lambda s=settings, out=stats: out.append(compact_once(s, quiet=0))
            )
            other.start()
            stats.append(compact_once(settings, quiet=0))
            other.join()
            merges += sum(s.partitions for s in stats)
            conflicts += sum(s.conflicts for s in stats)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert merges >= 5
    assert len(answers) > 10 and all(answers), f"{answers.count(False)} wrong answers"
    tables(lake).pin(con)
    assert _answers(con) == expected
    assert len(_files(lake, DAYS[0])) == 1


def _file(name: str, rows: int, *, compacted: bool, age: float = 0.0) -> DataFile:
    path = f"date=2026-01-01/{'c-' if compacted else ''}{name}.parquet"
    return DataFile(path, path, rows * 40, rows, int((1_000.0 - age) * 1000), "2026-01-01")


def _chosen(files: list[DataFile], **kw: float) -> list[str]:
    picked = choose_inputs(files, target_rows=1_000, window_rows=100, now=1_000.0, **kw)
    return sorted(f.path.split("/")[-1].removeprefix("c-").removesuffix(".parquet") for f in picked)


def test_input_choice_rewrites_partial_files_only_when_it_pays() -> None:
    flush = [_file(f"f{i}", 50, compacted=False) for i in range(2)]
    small, mid = _file("p200", 200, compacted=True), _file("p500", 500, compacted=True)
    full = _file("full", 950, compacted=True)  # another window would not fit: never again
    # flush files always; a partial one only once as many rows go in with it
    assert _chosen([*flush, small, mid, full]) == ["f0", "f1"]
    more = [*flush, *(_file(f"g{i}", 75, compacted=False) for i in range(2))]
    assert _chosen([*more, small, mid, full]) == ["f0", "f1", "g0", "g1", "p200"]
    assert _chosen([*more, small, _file("p250", 250, compacted=True)]) == [
        "f0",
        "f1",
        "g0",
        "g1",
        "p200",
        "p250",
    ]
    # a single flush file is rewritten (final encodings); compacted files alone are not
    assert _chosen([flush[0]]) == ["f0"]
    assert _chosen([small, mid, full]) == []
    # a quiet partition merges its partial files into full ones
    old = [_file("p200", 200, compacted=True, age=700), _file("p400", 400, compacted=True, age=900)]
    assert _chosen([*old, full]) == []
    assert _chosen([*old, _file("full", 950, compacted=True, age=700)]) == ["p200", "p400"]
    assert _chosen([*old], quiet=0) == ["p200", "p400"]


def test_a_slowly_filling_partition_is_not_rewritten_every_round(lake: str) -> None:
    """One small flush file per round: rows merged grow like n log n, not n squared."""
    rows = _rows(4_000)
    days = pa.compute.divide(rows.column("start_time").cast(pa.int64()), DAY_NS)
    day0 = rows.filter(pa.compute.equal(days, DAY0 // DAY_NS)).slice(0, 1_600)
    assert day0.num_rows == 1_600
    settings = _settings(lake, row_group_rows=100, compaction_target_rows=100_000)
    merged = 0
    for i in range(16):
        append_rows(tables(lake), SPANS, day0.slice(i * 100, 100), prefix=f"f{i:02d}")
        merged += compact_once(settings).rows
    # a binary counter: 16 rounds of 100 rows merge 100 * 16 * (1 + log2(16) / 2) = 4,800
    # rows; merging everything every round would be 100 * (1 + 2 + ... + 16) = 13,600
    assert merged <= 4_800
    files = _files(lake, DAYS[0])
    assert len(files) <= 5
    got = pa.concat_tables(read_parquet(f.uri) for f in files)
    assert sorted(got.column("span_id").to_pylist()) == sorted(day0.column("span_id").to_pylist())
    compact_once(settings, quiet=0)  # the partition goes quiet: one file
    assert len(_files(lake, DAYS[0])) == 1


def test_long_dictionaries_keep_only_used_values_sorted() -> None:
    values = pa.array([f"user-{i:04d}" for i in range(1_000)])
    used = pa.DictionaryArray.from_arrays(pa.array([999, None, 5, 999], pa.int32()), values)
    small = pa.DictionaryArray.from_arrays(pa.array([0, 1, 0, 1], pa.int32()), values[:3])
    got = tidy_dictionaries(pa.table({"user_id": used, "name": small}))
    assert got.column("user_id").to_pylist() == ["user-0999", None, "user-0005", "user-0999"]
    assert got.column("user_id").chunk(0).dictionary.to_pylist() == ["user-0005", "user-0999"]
    assert len(got.column("name").chunk(0).dictionary) == 3  # short ones are left alone


def test_a_pinned_query_reads_the_version_it_pinned_until_a_vacuum(lake: str) -> None:
    """A query pinned before a compaction keeps answering from the version it pinned; once a
    vacuum removes that version's files, every view fails with a vanished-file error (none
    answers with fewer rows), and pinning again answers."""
    _flush_files(lake, _rows(2_000), 100)
    con = connect(lake)
    expected = _answers(con)
    old = {f.path for f in _files(lake)}
    assert compact_once(_settings(lake), quiet=0).partitions == 2
    assert old.isdisjoint(f.path for f in _files(lake))
    assert _answers(con) == expected  # the pinned version, whole
    time.sleep(0.01)
    assert vacuum(_settings(lake), retention_seconds=0) >= len(old)
    for query in QUERIES:
        with pytest.raises(duckdb.Error) as failed:
            con.execute(query).fetchall()
        assert is_vanished_file_error(failed.value), failed.value
    tables(lake).pin(con)
    assert _answers(con) == expected  # the new version


def test_only_the_lease_holder_compacts(lake: str) -> None:
    location = _settings(lake).location
    first, second = Lease(location, "a", ttl=60), Lease(location, "b", ttl=60)
    assert first.acquire() and not second.acquire()
    assert first.acquire()  # renewed
    first.release()
    assert second.acquire() and not first.acquire()
    assert not Lease(location, "c", ttl=60).acquire(now_ms=int(time.time() * 1000) + 30_000)
    assert Lease(location, "c", ttl=60).acquire(now_ms=int(time.time() * 1000) + 61_000)


def test_background_compactor_merges_at_low_priority_and_stops(lake: str) -> None:
    _flush_files(lake, _rows(2_000), 250)
    compactor = BackgroundCompactor(_settings(lake, compaction_interval=0.1))
    compactor.start()
    try:
        pid = compactor.process.pid
        assert eventually(lambda: compactor.rounds >= 1, 60)
        assert os.getpriority(os.PRIO_PROCESS, pid) >= 10  # the server's CPU comes first
        assert compactor.holds_lease
        assert all(len(_files(lake, d)) == 1 for d in DAYS)
        assert compactor.last is not None
    finally:
        compactor.stop(30)
    assert not compactor.alive()
    assert compactor.process.exitcode == 0  # it left when asked, nobody had to kill it
    assert Lease(_settings(lake).location, "next", ttl=60).acquire()  # released on the way out


_ORPHAN = """
import sys, time
from dataclasses import replace
from ingest.lake.compactor import BackgroundCompactor
from schemas.settings import Settings
c = BackgroundCompactor(replace(Settings(), lake=sys.argv[1], compaction_interval=0.1))
c.start()
print(c.process.pid, flush=True)
time.sleep(600)
"""


def test_compactor_dies_with_its_parent(lake: str) -> None:
    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN, str(lake)], cwd=root, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    parent.stdout.close()

    def gone() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{child}/stat") as fh:  # a zombie waiting for init counts as gone
            return fh.read().split()[2] == "Z"

    assert eventually(gone, 30)


def test_which_errors_say_a_pinned_file_is_gone() -> None:
    """A vacuumed file: a local disk's and an object store's words; other failures are not."""
    gone = [
        'IO Error: Cannot open file "/l/spans/d/a.parquet": No such file or directory',
        'IO Error: No files found that match the pattern "/l/spans/date=2026-01-01/a.parquet"',
        "HTTP Error: HTTP GET error reading 's3://b/l/spans/a.parquet' (HTTP 404 Not Found)",
    ]
    other = [
        "HTTP Error: HTTP GET error reading 's3://b/l/spans/a.parquet' (HTTP 403 Forbidden)",
        "IO Error: corrupt footer in 's3://b/l/spans/part-404.parquet'",
        "IO Error: No such file or directory: /l/_delta_log/00000000000000000004.json",
    ]
    assert all(is_vanished_file_error(RuntimeError(text)) for text in gone)
    assert not any(is_vanished_file_error(RuntimeError(text)) for text in other)
