"""A compaction swap landing right after a listing read a partition's generation: the race
that made DuckDB's glob skip merged files, made deterministic for the listings of our own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.storage import DataFile, Storage


def publish(storage: Storage, partition: str, name: str, rows: int) -> None:
    """A ``spans`` file ``<name>.parquet`` of ``rows`` span ids ``<name>0``, ``<name>1``, …"""
    tmp = storage.tmp_path("t")
    pq.write_table(pa.table({"span_id": [f"{name}{i}" for i in range(rows)]}), tmp)
    storage.publish("spans", partition, [DataFile(tmp, f"{name}.parquet")])


@contextmanager
def merge_after_first_read(
    monkeypatch: pytest.MonkeyPatch, storage: Storage, partition: str
) -> Iterator[list[bool]]:
    """Inside the block, the first ``os.scandir`` of the partition's generation is followed,
    before it returns, by a compaction merging ``a.parquet`` and ``b.parquet`` into
    ``m.parquet``. Yields a list that holds True once the merge happened."""
    real_scandir = os.scandir
    swapped: list[bool] = []

    def scandir_then_merge(path: Any) -> Any:
        entries = list(real_scandir(path))
        if not swapped and partition in os.path.realpath(path):  # its files were just read
            swapped.append(True)
            tmp = storage.tmp_path("t")
            pq.write_table(pa.table({"span_id": ["a0", "a1", "b0", "b1"]}), tmp)
            merged = DataFile(tmp, "m.parquet")
            assert storage.replace("spans", partition, ["a.parquet", "b.parquet"], [merged])
        return iter(entries)

    with monkeypatch.context() as patch:
        patch.setattr(os, "scandir", scandir_then_merge)
        yield swapped
