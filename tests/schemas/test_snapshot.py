"""Pinned listings: one generation per partition, read by the views until pinned again."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.storage import DataFile, Storage
from schemas.lake import ensure_lake, seed_file
from schemas.snapshot import pin, snapshot, unpin, variable
from schemas.views import load_views

PARTITION = "date=2026-01-05"


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    ensure_lake(tmp_path / "lake")
    return Storage(tmp_path / "lake")


def _publish(storage: Storage, name: str, rows: int) -> None:
    tmp = storage.tmp_path("t")
    pq.write_table(pa.table({"span_id": [f"{name}{i}" for i in range(rows)]}), tmp)
    storage.publish("spans", PARTITION, [DataFile(tmp, f"{name}.parquet")])


def _count(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT count(*) FROM spans").fetchone()
    assert row is not None
    return int(row[0])


def test_a_snapshot_lists_one_generation_when_a_swap_lands_midway(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compactor swaps the partition right after its generation was read: the snapshot
    names the files of that generation, by their path inside it, none dropped."""
    for name in ("a", "b"):
        _publish(storage, name, 2)
    old = storage.current_generation("spans", PARTITION)
    real_scandir = os.scandir
    swapped: list[bool] = []

    def scandir_then_compact(path: Any) -> Any:
        entries = list(real_scandir(path))
        if not swapped and PARTITION in os.path.realpath(path):
            swapped.append(True)
            tmp = storage.tmp_path("t")
            pq.write_table(pa.table({"span_id": ["a0", "a1", "b0", "b1"]}), tmp)
            assert storage.replace(
                "spans", PARTITION, ["a.parquet", "b.parquet"], [DataFile(tmp, "m.parquet")]
            )
        return iter(entries)

    monkeypatch.setattr(os, "scandir", scandir_then_compact)
    listed = snapshot(storage.root)[variable("spans")]
    monkeypatch.undo()
    assert swapped and old is not None
    seed = seed_file(storage.root.resolve(), "spans")
    assert listed == sorted([str(seed), str(old / "a.parquet"), str(old / "b.parquet")])
    con = duckdb.connect()
    load_views(con, storage.root)
    con.execute(f"SET VARIABLE {variable('spans')} = ?::VARCHAR[]", [listed])
    assert _count(con) == 4  # a and b, from the generation listed


def test_pinned_views_see_new_files_when_pinned_again(storage: Storage) -> None:
    con = duckdb.connect()
    load_views(con, storage.root)
    _publish(storage, "a", 3)
    pin(con, storage.root)
    _publish(storage, "b", 2)
    assert _count(con) == 3  # the snapshot
    pin(con, storage.root)
    assert _count(con) == 5
    _publish(storage, "c", 1)
    unpin(con)
    assert _count(con) == 6  # the glob again


def test_an_empty_lake_pins_its_schema_seeds(storage: Storage) -> None:
    pinned = snapshot(storage.root)
    assert pinned[variable("spans")] == [str(seed_file(storage.root.resolve(), "spans"))]
    con = duckdb.connect()
    load_views(con, storage.root)
    pin(con, storage.root)
    assert _count(con) == 0
    assert con.execute("SELECT count(*) FROM attempts").fetchone() == (0,)
