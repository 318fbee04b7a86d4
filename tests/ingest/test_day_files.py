"""DayFiles: rows of any day, in any order, into files per day of bounded row groups and size."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from ingest.lake.day_files import DayFiles
from ingest.lake.files import FileWriter
from schemas.delta import Tables
from schemas.lake import SPANS, TABLES
from tests.lakes import at, sid, span, span_table


def _writer(lake: Path, *, row_group_rows: int, file_rows: int) -> DayFiles:
    tables = Tables(lake)
    return DayFiles(
        FileWriter(tables.location),
        TABLES[SPANS],
        prefix="t",
        row_group_rows=row_group_rows,
        file_rows=file_rows,
    )


def test_rows_of_two_days_become_bounded_files_of_their_day(tmp_path: Path) -> None:
    out = _writer(tmp_path, row_group_rows=4, file_rows=8)
    rows = [span("t", f"s{i}", start=at(days=i % 2)) for i in range(21)]
    for first in range(0, len(rows), 3):  # the days interleave within and across batches
        out.add(span_table(rows[first : first + 3]))
    files = out.close()
    seen: Counter[str] = Counter()
    for f in files:
        meta = pq.ParquetFile(tmp_path / SPANS / f.path).metadata
        assert meta.num_rows == f.rows <= 8
        assert all(meta.row_group(i).num_rows <= 4 for i in range(meta.num_row_groups))
        ids = pq.read_table(tmp_path / SPANS / f.path, columns=["span_id"]).column("span_id")
        want_day = {sid(f"s{i}"): at(days=i % 2).date().isoformat() for i in range(21)}
        assert {want_day[i] for i in ids.to_pylist()} == {f.day}
        seen.update(ids.to_pylist())
    assert seen == Counter(sid(f"s{i}") for i in range(21))
    assert out.rows == 21


def test_one_day_is_written_in_whole_row_groups(tmp_path: Path) -> None:
    out = _writer(tmp_path, row_group_rows=4, file_rows=100)
    for first in range(0, 10, 3):
        out.add(span_table([span("t", f"s{i}") for i in range(first, min(first + 3, 10))]))
    (only,) = out.close()
    meta = pq.ParquetFile(tmp_path / SPANS / only.path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [4, 4, 2]


def test_abort_leaves_no_file(tmp_path: Path) -> None:
    out = _writer(tmp_path, row_group_rows=2, file_rows=2)
    out.add(span_table([span("t", f"s{i}") for i in range(5)]))  # two files closed, one open
    out.abort()
    assert not list((tmp_path / SPANS).rglob("*.parquet*"))
