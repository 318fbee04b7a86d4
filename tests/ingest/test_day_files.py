"""DayFiles: rows of any day, in any order, into files per day of bounded row groups and size."""

from __future__ import annotations

from collections import Counter

from ingest.lake.day_files import DayFiles
from ingest.lake.files import FileWriter
from schemas.delta import Tables
from schemas.lake import SPANS, TABLES
from tests.lakes import (
    at,
    lake_uri,
    list_files,
    parquet_file,
    read_parquet,
    sid,
    span,
    span_table,
)


def _writer(lake: str, *, row_group_rows: int, file_rows: int) -> DayFiles:
    tables = Tables(lake)
    return DayFiles(
        FileWriter(tables.location),
        TABLES[SPANS],
        prefix="t",
        row_group_rows=row_group_rows,
        file_rows=file_rows,
    )


def test_rows_of_two_days_become_bounded_files_of_their_day(lake: str) -> None:
    out = _writer(lake, row_group_rows=4, file_rows=8)
    rows = [span("t", f"s{i}", start=at(days=i % 2)) for i in range(21)]
    for first in range(0, len(rows), 3):  # the days interleave within and across batches
        out.add(span_table(rows[first : first + 3]))
    files = out.close()
    seen: Counter[str] = Counter()
    for f in files:
        meta = parquet_file(lake_uri(lake, SPANS, f.path)).metadata
        assert meta.num_rows == f.rows <= 8
        assert all(meta.row_group(i).num_rows <= 4 for i in range(meta.num_row_groups))
        ids = read_parquet(lake_uri(lake, SPANS, f.path), ["span_id"]).column("span_id")
        want_day = {sid(f"s{i}"): at(days=i % 2).date().isoformat() for i in range(21)}
        assert {want_day[i] for i in ids.to_pylist()} == {f.day}
        seen.update(ids.to_pylist())
    assert seen == Counter(sid(f"s{i}") for i in range(21))
    assert out.rows == 21


def test_one_day_is_written_in_whole_row_groups(lake: str) -> None:
    out = _writer(lake, row_group_rows=4, file_rows=100)
    for first in range(0, 10, 3):
        out.add(span_table([span("t", f"s{i}") for i in range(first, min(first + 3, 10))]))
    (only,) = out.close()
    meta = parquet_file(lake_uri(lake, SPANS, only.path)).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [4, 4, 2]


def test_abort_leaves_no_file(lake: str) -> None:
    out = _writer(lake, row_group_rows=2, file_rows=2)
    out.add(span_table([span("t", f"s{i}") for i in range(5)]))  # two files closed, one open
    out.abort()
    assert list_files(lake, SPANS) == []
