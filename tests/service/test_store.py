"""The materialized store answers exactly what the views answer over the same files — after
a full build and after every kind of incremental change the lake sees."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from schemas.lake import ensure_lake
from schemas.views import load_views
from service.store import Store
from tests.lakes import at, build_companions, signal, span, write_signals, write_spans
from tests.schemas.test_rollup import random_lake, tricky_lake

FACTS = "SELECT * FROM task_facts_in(NULL, NULL)"


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    yield c
    c.close()


def _open(con: duckdb.DuckDBPyConnection, lake: Path) -> Store:
    ensure_lake(lake)
    load_views(con, lake)
    return Store(con, lake)


def assert_store_matches_views(con: duckdb.DuckDBPyConnection) -> None:
    for view, table in (
        ("attempts", "tl_store.attempts"),
        (f"({FACTS})", "tl_store.tasks"),
        ("signals", "tl_store.signals"),
    ):
        missing = con.execute(f"SELECT * FROM {view} EXCEPT ALL SELECT * FROM {table}").fetchall()
        extra = con.execute(f"SELECT * FROM {table} EXCEPT ALL SELECT * FROM {view}").fetchall()
        assert (missing, extra) == ([], []), view


def _merge(lake: Path, names: list[str], into: str) -> None:
    """What compaction does: one new file holding the rows of others, which disappear."""
    files = [next(lake.glob(f"spans/*/{n}.parquet")) for n in names]
    merged = pa.concat_tables([pq.read_table(f) for f in files])
    pq.write_table(merged, files[0].parent / f"{into}.parquet")
    for f in files:
        f.unlink()
        for companion in f.parent.glob(f"_rollup_*/{f.name}"):
            companion.unlink()


def test_every_kind_of_change(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    lake = tmp_path / "lake"
    random_lake(lake, 7, traces=50)
    held = tmp_path / "held"
    held.mkdir()
    files = sorted(lake.glob("spans/*/f*.parquet"))
    for f in files[3:]:
        shutil.move(f, held / f"{f.parent.name}__{f.name}")
    store = _open(con, lake)
    assert store.refresh().kind == "rebuild"
    assert_store_matches_views(con)
    assert store.refresh().kind == "none"

    for f in sorted(held.iterdir()):  # late files, one at a time
        day, name = f.name.split("__")
        (lake / "spans" / day).mkdir(exist_ok=True)
        shutil.move(f, lake / "spans" / day / name)
        assert store.refresh().kind == "incremental"
        assert_store_matches_views(con)

    write_signals(  # signals naming tasks and attempts, a duplicate, one for nobody yet
        lake,
        [
            signal("task1", "completed", at(70), signal_id="x1"),
            signal("task2", "failed", at(70), signal_id="x2"),
            signal("c1", "completed", at(71), signal_id="x3", by="correlation_id"),
            signal("task1", "reopened", at(80), signal_id="x4"),
            signal("nobody", "completed", at(70), signal_id="x5"),
        ],
        "sig-1",
    )
    write_signals(lake, [signal("task1", "completed", at(70), signal_id="x1")], "sig-2")
    assert store.refresh().kind == "incremental"
    assert_store_matches_views(con)

    write_spans(  # a late root that now names the correlation id of a whole trace
        lake,
        [
            span(
                "late",
                "late-root",
                start=at(1),
                correlation_id="c2",
                task_id="nobody",
                workflow="w9",
            ),
            span("late", "late-kid", parent="late-root", start=at(2), op="chat", cost="0.5"),
        ],
        "late",
        day="2026-01-02",
    )
    assert store.refresh().kind == "incremental"
    assert_store_matches_views(con)

    build_companions(lake, only=["f1", "late"])  # companions appear for existing files
    assert store.refresh().kind == "incremental"
    assert_store_matches_views(con)

    _merge(lake, ["f1", "f4"], "compacted")  # a compaction swap
    assert store.refresh().kind == "incremental"
    assert_store_matches_views(con)

    next(lake.glob("spans/*/f2.parquet")).unlink()  # retention drops a file
    assert store.refresh().kind == "incremental"
    assert_store_matches_views(con)


def test_tricky_lake(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    tricky_lake(tmp_path)
    build_companions(tmp_path, only=["b"])
    store = _open(con, tmp_path)
    store.refresh()
    assert_store_matches_views(con)


def test_covers_only_times_after_the_latest_signal(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    tricky_lake(tmp_path)
    write_signals(tmp_path, [signal("T1", "completed", at(30), signal_id="s")], "s")
    store = _open(con, tmp_path)
    assert not store.covers(None)  # not built yet
    store.refresh()
    assert store.covers(None) and store.covers(at(31))
    assert not store.covers(at(29))  # that answer needs the signals of that moment
    assert store.max_signal_at == at(30)
    assert datetime.now(UTC) > at(30)


def test_a_signal_dated_in_the_future_sends_now_to_the_views(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    tricky_lake(tmp_path)
    future = datetime(2200, 1, 1, tzinfo=UTC)
    write_signals(tmp_path, [signal("T1", "completed", future, signal_id="f")], "s")
    store = _open(con, tmp_path)
    store.refresh()
    assert not store.covers(None) and store.covers(future)
