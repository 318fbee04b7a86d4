"""Compaction: lossless, sorted, atomic for concurrent readers, respectful of pending files."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.compact import compact_once
from ingest.parquet import write_parquet
from ingest.storage import DataFile, Storage
from schemas.lake import ensure_lake, is_vanished_file_error
from schemas.settings import Settings
from schemas.views import load_views
from tests.ingest.spanrows import DAY_NS, span_rows

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
    at once: every answer equals the answer before compaction (a query that listed a file
    merged away meanwhile fails with 'No such file' and is retried)."""
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
        load_views(mine, lake)
        while not stop.is_set():
            try:
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
            stats = [compact_once(settings)]
            other = threading.Thread(
                target=lambda s=settings, out=stats: out.append(compact_once(s))
            )
            other.start()
            stats.append(compact_once(settings))
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
