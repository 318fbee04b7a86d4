"""Partition generations: atomic publish, atomic replace, companions, locking, garbage."""

from __future__ import annotations

import multiprocessing
import os
import threading
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.storage import DataFile, Storage
from schemas.lake import SEED_PARTITION, ensure_lake, table_glob

DAY = "date=2026-01-05"


def _file(storage: Storage, rows: range, name: str) -> DataFile:
    tmp = storage.tmp_path("t")
    pq.write_table(pa.table({"n": pa.array(list(rows), pa.int64())}), tmp)
    return DataFile(tmp, name)


def _with_companion(storage: Storage, data: DataFile, text: str) -> DataFile:
    tmp = storage.tmp_path("c")
    pq.write_table(pa.table({"of": [text]}), tmp)
    return DataFile(data.tmp, data.name, {"_rollup": tmp})


def _count(lake: Path) -> tuple[int, int]:
    row = duckdb.sql(
        f"SELECT count(*), coalesce(sum(n), 0) FROM read_parquet('{table_glob(lake, 't')}')"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    ensure_lake(tmp_path)
    return Storage(tmp_path)


def test_publish_creates_a_generation_behind_a_relative_symlink(storage: Storage) -> None:
    paths = storage.publish("t", DAY, [_file(storage, range(10), "a.parquet")])
    link = storage.partition_path("t", DAY)
    assert link.is_symlink() and not os.readlink(link).startswith("/")
    assert os.readlink(link).endswith("g000001")
    assert paths == [storage.current_generation("t", DAY) / "a.parquet"]  # type: ignore[operator]
    storage.publish("t", DAY, [_file(storage, range(10, 15), "b.parquet")])
    assert storage.list_files("t", DAY) == ["a.parquet", "b.parquet"]
    assert _count(storage.root) == (15, sum(range(15)))
    assert not list(storage.tmp_dir.iterdir())  # tmp files moved, nothing left behind


def test_replace_swaps_inputs_for_outputs_in_a_new_generation(storage: Storage) -> None:
    for i in range(4):
        storage.publish("t", DAY, [_file(storage, range(i * 10, i * 10 + 10), f"f{i}.parquet")])
    old = storage.current_generation("t", DAY)
    merged = _file(storage, range(0, 30), "m.parquet")
    assert storage.replace("t", DAY, ["f0.parquet", "f1.parquet", "f2.parquet"], [merged])
    new = storage.current_generation("t", DAY)
    assert new != old and new is not None and old is not None
    assert storage.list_files("t", DAY) == ["f3.parquet", "m.parquet"]
    assert _count(storage.root) == (40, sum(range(40)))
    # the old generation stays for queries that listed it, until the grace has passed
    assert sorted(os.listdir(old)) == ["f0.parquet", "f1.parquet", "f2.parquet", "f3.parquet"]
    assert storage.collect_garbage(grace=3600) == 0 and old.exists()
    assert storage.collect_garbage(grace=0) == 1 and not old.exists()
    assert _count(storage.root) == (40, sum(range(40)))


def test_replace_refuses_when_an_input_is_gone(storage: Storage) -> None:
    storage.publish("t", DAY, [_file(storage, range(3), "a.parquet")])
    out = _file(storage, range(3), "m.parquet")
    assert not storage.replace("t", DAY, ["a.parquet", "vanished.parquet"], [out])
    assert storage.list_files("t", DAY) == ["a.parquet"]
    assert out.tmp.exists()  # the caller decides what to do with its output


def test_companions_appear_and_disappear_with_their_file(storage: Storage) -> None:
    a = _with_companion(storage, _file(storage, range(5), "a.parquet"), "a")
    b = _with_companion(storage, _file(storage, range(5, 9), "b.parquet"), "b")
    storage.publish("t", DAY, [a])
    storage.publish("t", DAY, [b])
    rollups = storage.partition_path("t", DAY) / "_rollup"
    assert sorted(os.listdir(rollups)) == ["a.parquet", "b.parquet"]
    # the companion glob never sees the data glob's files and vice versa
    assert _count(storage.root) == (9, sum(range(9)))
    merged = _with_companion(storage, _file(storage, range(9), "m.parquet"), "m")
    assert storage.replace("t", DAY, ["a.parquet", "b.parquet"], [merged])
    assert sorted(os.listdir(rollups)) == ["m.parquet"]
    assert pq.read_table(rollups / "m.parquet").column("of").to_pylist() == ["m"]
    assert storage.unpublish("t", DAY, ["m.parquet"]) == 1
    assert os.listdir(rollups) == [] and storage.list_files("t", DAY) == []


def test_seed_partition_is_a_plain_directory_left_alone(storage: Storage) -> None:
    ensure_lake(storage.root)
    storage.publish("spans", SEED_PARTITION, [_file(storage, range(2), "x.parquet")])
    seed = storage.partition_path("spans", SEED_PARTITION)
    assert seed.is_dir() and not seed.is_symlink()
    assert "x.parquet" in os.listdir(seed)
    assert storage.current_generation("spans", SEED_PARTITION) is None


def test_readers_never_see_a_partial_file(storage: Storage) -> None:
    """A reader listing and reading every file while files are published only ever reads
    complete files (each holds exactly 5000 rows)."""
    stop = threading.Event()
    problems: list[str] = []
    reads = [0]

    def reader() -> None:
        while not stop.is_set():
            directory = storage.partition_path("t", DAY)
            for name in storage.list_files("t", DAY):
                try:
                    rows = pq.read_metadata(directory / name).num_rows
                except FileNotFoundError:
                    continue
                except Exception as exc:
                    problems.append(f"{name}: {exc}")
                    continue
                reads[0] += 1
                if rows != 5000:
                    problems.append(f"{name}: {rows} rows")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(40):
            storage.publish(
                "t", DAY, [_file(storage, range(i * 5000, i * 5000 + 5000), f"{i}.parquet")]
            )
    finally:
        stop.set()
        thread.join()
    assert problems == []
    assert reads[0] > 0
    assert _count(storage.root)[0] == 200_000


def _publisher(lake: str, prefix: str, count: int) -> None:
    storage = Storage(lake)
    for i in range(count):
        tmp = storage.tmp_path(prefix)
        pq.write_table(pa.table({"n": [i]}), tmp)
        storage.publish("t", DAY, [DataFile(tmp, f"{prefix}-{i}.parquet")])


def test_processes_sharing_a_lake_publish_into_one_partition(storage: Storage) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_publisher, args=(str(storage.root), f"w{k}", 25)) for k in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(storage.list_files("t", DAY)) == 75
    gens = storage.generations_path("t", DAY)
    assert [p.name for p in gens.iterdir() if p.name.startswith("g")] == ["g000001"]
