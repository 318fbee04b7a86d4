"""Compaction: lossless, sorted, atomic for concurrent readers, respectful of pending files,
never rewriting much, and in a process of its own that dies with its parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.compact import (
    BackgroundCompactor,
    FileInfo,
    choose_inputs,
    compact_once,
    tidy_dictionaries,
)
from ingest.parquet import write_parquet
from ingest.storage import DataFile, Storage
from schemas.lake import ensure_lake, is_vanished_file_error
from schemas.settings import Settings
from schemas.snapshot import pin
from schemas.spans import SPAN_SCHEMA
from schemas.views import load_views
from tests.ingest.spanrows import DAY_NS, span_rows
from tests.waiting import eventually

DAY0 = 20_454 * DAY_NS  # 2026-01-01
PARTITIONS = ("date=2026-01-01", "date=2026-01-02")
_ROWS: dict[int, pa.Table] = {}


def _rows(n: int) -> pa.Table:
    if n not in _ROWS:
        _ROWS[n] = span_rows(n, seed=3, day_ns=DAY0, days=2)
    return _ROWS[n]


def _settings(lake: Path, **kw: object) -> Settings:
    values: dict[str, object] = {
        "lake": str(lake),
        "writer_id": "c",
        "row_group_rows": 1_000,
        "compaction_target_rows": 4_000,
        "compaction_grace": 0.0,
    }
    values.update(kw)
    return replace(Settings(), **values)  # type: ignore[arg-type]


def _flush_files(lake: Path, table: pa.Table, per_file: int) -> list[tuple[str, str]]:
    """Publish ``table`` as small flush files, split by day like a converter would."""
    storage = Storage(lake)
    out = []
    days = pa.compute.divide(table.column("start_time").cast(pa.int64()), DAY_NS)
    for i, partition in enumerate(PARTITIONS):
        part = table.filter(pa.compute.equal(days, DAY0 // DAY_NS + i))
        for start in range(0, part.num_rows, per_file):
            tmp = storage.tmp_path("test")
            write_parquet(part.slice(start, per_file), tmp)
            name = f"w-{i}-{start:08d}.parquet"
            storage.publish("spans", partition, [DataFile(tmp, name)])
            out.append((partition, name))
    return out


QUERIES = (
    "SELECT count(*), sum(cost_usd), count(DISTINCT span_id), sum(input_tokens) FROM spans",
    "SELECT trace_id, count(*), sum(cost_usd), min(start_time) FROM spans "
    "GROUP BY trace_id ORDER BY trace_id",
    # the roll-up companions compaction writes, and the fallback for files without them
    "SELECT count(*), sum(spend_usd), count(DISTINCT attempt_id) FROM attempts",
)


def _answers(con: duckdb.DuckDBPyConnection) -> list[list[tuple[object, ...]]]:
    return [con.execute(q).fetchall() for q in QUERIES]


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    ensure_lake(tmp_path / "lake")
    return tmp_path / "lake"


def test_compaction_is_lossless_and_sorted(lake: Path) -> None:
    rows = _rows(6_000)
    _flush_files(lake, rows, 250)
    settings = _settings(lake, compaction_target_rows=10_000)
    stats = compact_once(settings)
    assert stats.input_files > 20 and stats.output_files == 2 and stats.rows == 6_000
    storage = Storage(lake)
    merged = []
    for partition in PARTITIONS:
        (name,) = storage.list_files("spans", partition)
        pf = pq.ParquetFile(storage.partition_path("spans", partition) / name)
        assert all(pf.metadata.row_group(i).num_rows <= 1_000 for i in range(pf.num_row_groups))
        for i in range(pf.num_row_groups):
            group = pf.read_row_group(i)
            # traces together, ordered by their first span's start
            traces = group.column("trace_id").to_pylist()
            seen: list[str] = []
            for t in traces:
                if not seen or seen[-1] != t:
                    assert t not in seen, "a trace is split inside a row group"
                    seen.append(t)
        assert pf.schema_arrow.equals(SPAN_SCHEMA)  # plain strings, whatever was written
        merged.append(pf.read())
    before = rows.sort_by("span_id")
    after = pa.concat_tables(merged).select(rows.schema.names).sort_by("span_id")
    assert after.equals(before.cast(after.schema))  # every value, ns and decimals included


def test_pending_files_are_left_alone(lake: Path) -> None:
    files = _flush_files(lake, _rows(3_000), 500)
    wal = lake / "_wal" / "x-0"
    wal.mkdir(parents=True)
    partition, name = files[0]
    doc = {
        "wal_start": 0,
        "wal_end": 9,
        "files": [{"table": "spans", "partition": partition, "name": name}],
    }
    (wal / "pending.json").write_text(json.dumps(doc))
    compact_once(_settings(lake))
    storage = Storage(lake)
    assert name in storage.list_files("spans", partition)
    assert len(storage.list_files("spans", partition)) == 2  # the pending file + one merged


def _rollup(data: Path) -> dict[str, Path]:
    out = data.with_name(data.name + ".rollup")
    pq.write_table(pa.table({"rows": [pq.read_metadata(data).num_rows]}), out)
    return {"_rollup": out}


def test_compaction_replaces_companions_through_the_hook(lake: Path) -> None:
    storage = Storage(lake)
    for start in range(0, 1_500, 500):
        tmp = storage.tmp_path("t")
        write_parquet(_rows(3_000).slice(start, 500), tmp)
        storage.publish(
            "spans", "date=2026-01-01", [DataFile(tmp, f"f{start}.parquet", _rollup(tmp))]
        )
    compact_once(_settings(lake, compaction_target_rows=10_000), hook=_rollup)
    (name,) = storage.list_files("spans", "date=2026-01-01")
    rollups = list((storage.partition_path("spans", "date=2026-01-01") / "_rollup").iterdir())
    assert [p.name for p in rollups] == [name]
    assert pq.read_table(rollups[0]).column("rows").to_pylist() == [1_500]


def test_concurrent_queries_always_see_the_same_answer(lake: Path) -> None:
    """Queries hammer the lake while compaction rewrites it again and again, two compactors
    at once: every answer equals the answer before compaction. Each round of queries is
    pinned (``schemas.snapshot``); with no grace, a round whose generation was collected
    meanwhile fails with a vanished-file error and is retried, never answered wrongly."""
    _flush_files(lake, _rows(6_000), 150)
    con = duckdb.connect()
    load_views(con, lake)
    expected = _answers(con)
    stop = threading.Event()
    answers: list[bool] = []
    retries = [0]
    errors: list[str] = []

    def hammer() -> None:
        mine = duckdb.connect()
        while True:  # binding the views reads file schemas: a swap can pull one away too
            try:
                load_views(mine, lake)
                break
            except duckdb.Error as exc:
                if not is_vanished_file_error(exc):
                    raise
        while not stop.is_set():
            try:
                pin(mine, lake)
                answers.append(_answers(mine) == expected)
            except duckdb.Error as exc:
                if is_vanished_file_error(exc):
                    retries[0] += 1
                else:
                    errors.append(str(exc))

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for t in threads:
        t.start()
    swaps = 0
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
            swaps += sum(s.partitions for s in stats)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert swaps >= 5
    assert len(answers) > 10 and all(answers), f"{answers.count(False)} wrong answers"
    assert _answers(con) == expected
    assert len(Storage(lake).list_files("spans", PARTITIONS[0])) == 1


def _info(name: str, rows: int, *, compacted: bool, age: float = 0.0) -> FileInfo:
    return FileInfo(name, Path(name), rows, rows * 40, 0, compacted, 1_000.0 - age)


def _chosen(files: list[FileInfo], **kw: float) -> list[str]:
    picked = choose_inputs(files, target_rows=1_000, window_rows=100, now=1_000.0, **kw)
    return sorted(f.name for f in picked)


def test_input_choice_rewrites_partial_files_only_when_it_pays() -> None:
    flush = [_info(f"f{i}", 50, compacted=False) for i in range(2)]
    small, mid = _info("p200", 200, compacted=True), _info("p500", 500, compacted=True)
    full = _info("full", 950, compacted=True)  # another window would not fit: never again
    # flush files always; a partial one only once as many rows go in with it
    assert _chosen([*flush, small, mid, full]) == ["f0", "f1"]
    more = [*flush, *(_info(f"g{i}", 75, compacted=False) for i in range(2))]
    assert _chosen([*more, small, mid, full]) == ["f0", "f1", "g0", "g1", "p200"]
    assert _chosen([*more, small, _info("p250", 250, compacted=True)]) == [
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
    old = [_info("p200", 200, compacted=True, age=700), _info("p400", 400, compacted=True, age=900)]
    assert _chosen([*old, full]) == []
    assert _chosen([*old, _info("full", 950, compacted=True, age=700)]) == ["p200", "p400"]
    assert _chosen([*old], quiet=0) == ["p200", "p400"]


def test_a_slowly_filling_partition_is_not_rewritten_every_round(lake: Path) -> None:
    """One small flush file per round: rows merged grow like n log n, not n squared."""
    storage = Storage(lake)
    rows = _rows(4_000)
    days = pa.compute.divide(rows.column("start_time").cast(pa.int64()), DAY_NS)
    day0 = rows.filter(pa.compute.equal(days, DAY0 // DAY_NS)).slice(0, 1_600)
    assert day0.num_rows == 1_600
    settings = _settings(lake, row_group_rows=100, compaction_target_rows=100_000)
    merged = 0
    for i in range(16):
        tmp = storage.tmp_path("t")
        write_parquet(day0.slice(i * 100, 100), tmp)
        storage.publish("spans", PARTITIONS[0], [DataFile(tmp, f"f{i:02d}.parquet")])
        merged += compact_once(settings).rows
    # a binary counter: 16 rounds of 100 rows merge 100 * 16 * (1 + log2(16) / 2) = 4,800
    # rows; merging everything every round would be 100 * (1 + 2 + ... + 16) = 13,600
    assert merged <= 4_800
    files = storage.list_files("spans", PARTITIONS[0])
    assert len(files) <= 5
    got = pa.concat_tables(
        pq.read_table(storage.partition_path("spans", PARTITIONS[0]) / f) for f in files
    )
    assert sorted(got.column("span_id").to_pylist()) == sorted(day0.column("span_id").to_pylist())
    compact_once(settings, quiet=0)  # the partition goes quiet: one file
    assert len(storage.list_files("spans", PARTITIONS[0])) == 1


def test_long_dictionaries_keep_only_used_values_sorted() -> None:
    values = pa.array([f"user-{i:04d}" for i in range(1_000)])
    used = pa.DictionaryArray.from_arrays(pa.array([999, None, 5, 999], pa.int32()), values)
    small = pa.DictionaryArray.from_arrays(pa.array([0, 1, 0, 1], pa.int32()), values[:3])
    got = tidy_dictionaries(pa.table({"user_id": used, "name": small}))
    assert got.column("user_id").to_pylist() == ["user-0999", None, "user-0005", "user-0999"]
    assert got.column("user_id").chunk(0).dictionary.to_pylist() == ["user-0005", "user-0999"]
    assert len(got.column("name").chunk(0).dictionary) == 3  # short ones are left alone


def test_background_compactor_merges_at_low_priority_and_stops(lake: Path) -> None:
    _flush_files(lake, _rows(2_000), 250)
    compactor = BackgroundCompactor(_settings(lake, compaction_interval=0.1))
    compactor.start()
    try:
        pid = compactor.process.pid
        assert eventually(lambda: compactor.rounds >= 1)
        assert os.getpriority(os.PRIO_PROCESS, pid) >= 10  # the server's CPU comes first
        storage = Storage(lake)
        assert all(len(storage.list_files("spans", p)) == 1 for p in PARTITIONS)
        last = compactor.last
        assert last is not None and compactor.rounds >= 1
    finally:
        compactor.stop(30)
    assert not compactor.alive()
    assert compactor.process.exitcode == 0  # it left when asked, nobody had to kill it


_ORPHAN = """
import sys, time
from dataclasses import replace
from ingest.compact import BackgroundCompactor
from schemas.settings import Settings
c = BackgroundCompactor(replace(Settings(), lake=sys.argv[1], compaction_interval=0.1))
c.start()
print(c.process.pid, flush=True)
time.sleep(600)
"""


def test_compactor_dies_with_its_parent(lake: Path) -> None:
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


def test_a_pinned_query_reads_the_generation_it_listed(lake: Path) -> None:
    """A query pinned before a compaction keeps answering from the generation it listed;
    once garbage collection removes that generation, every view fails with a vanished-file
    error (none answers with fewer rows: a listed file that is gone is never skipped)."""
    _flush_files(lake, _rows(2_000), 100)
    con = duckdb.connect()
    load_views(con, lake)
    expected = _answers(con)
    pin(con, lake)
    pinned = con.execute("SELECT getvariable('tasklake_spans')").fetchone()
    assert pinned is not None
    storage = Storage(lake)
    before = {str(storage.current_generation("spans", p)) for p in PARTITIONS}
    assert compact_once(_settings(lake, compaction_grace=3_600.0), quiet=0).partitions == 2
    after = {str(storage.current_generation("spans", p)) for p in PARTITIONS}
    assert before.isdisjoint(after)
    assert {os.path.dirname(f) for f in pinned[0] if "1970" not in f} == before
    assert _answers(con) == expected  # the old generations, whole

    assert storage.collect_garbage(0.0) == 2
    for query in QUERIES:
        with pytest.raises(duckdb.Error) as failed:
            con.execute(query).fetchall()
        assert is_vanished_file_error(failed.value), failed.value
    pin(con, lake)
    assert _answers(con) == expected  # the new generations
