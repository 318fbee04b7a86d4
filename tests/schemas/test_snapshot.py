"""Pinned listings: one generation per partition, read by the views until pinned again."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ingest.storage import Storage
from schemas.lake import ensure_lake, seed_file
from schemas.snapshot import pin, snapshot, unpin, variable
from schemas.views import load_views
from tests.swaps import merge_after_first_read, publish

PARTITION = "date=2026-01-05"


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    ensure_lake(tmp_path / "lake")
    return Storage(tmp_path / "lake")


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
        publish(storage, PARTITION, name, 2)
    old = storage.current_generation("spans", PARTITION)
    with merge_after_first_read(monkeypatch, storage, PARTITION) as swapped:
        listed = snapshot(storage.root)[variable("spans")]
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
    publish(storage, PARTITION, "a", 3)
    pin(con, storage.root)
    publish(storage, PARTITION, "b", 2)
    assert _count(con) == 3  # the snapshot
    pin(con, storage.root)
    assert _count(con) == 5
    publish(storage, PARTITION, "c", 1)
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
