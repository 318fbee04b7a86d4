"""The converter: WAL records -> published Parquet, all-or-nothing flushes, recovery."""

from __future__ import annotations

import errno
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest import convert, diskfaults
from ingest.convert import (
    CHECKPOINT_POS,
    COMMITTED,
    FLUSH_ERRNO,
    FLUSH_FAILURES,
    PENDING,
    QUARANTINE_DIR,
    QUARANTINED,
    STATUS_SLOTS,
    STOP,
    Converter,
    LaneSpec,
    build_handlers,
    read_checkpoint,
    split_by_day,
)
from ingest.parquet import file_metadata
from ingest.storage import DataFile, Storage
from ingest.wal import KIND_TRACES, WalWriter, list_segments
from schemas.lake import ensure_lake
from schemas.settings import Settings
from tests.ingest.crash_driver import DRIVER_PARTITIONS, lake_span_ids, numbered_request
from tests.ingest.stub_handler import SPAN_HANDLERS, STUB_HANDLERS


def _settings(lake: Path, **kw: object) -> Settings:
    values: dict[str, object] = {"lake": str(lake), "writer_id": "t", "flush_rows": 10**6}
    values.update(kw)
    return replace(Settings(), **values)  # type: ignore[arg-type]


def _append(spec: LaneSpec, requests: list[tuple[int, int]]) -> int:
    writer = WalWriter(spec.wal_dir, segment_bytes=4096)
    for first, count in requests:
        payload = numbered_request(first, count).SerializeToString()
        writer.append(KIND_TRACES, payload, 1_700_000_000_000).result(timeout=10)
    writer.close()
    return writer.position


def _converter(settings: Settings, spec: LaneSpec, committed: int, **kw: object) -> Converter:
    status = [0] * STATUS_SLOTS
    status[COMMITTED] = committed
    conv = Converter(
        spec,
        settings,
        status,
        handlers=build_handlers(settings, kw.pop("handlers", SPAN_HANDLERS)),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )
    conv.recover()
    return conv


def _read_all(conv: Converter, end: int) -> None:
    while conv.position < end:
        conv.step(end)


def _drain(conv: Converter) -> None:
    conv.status[STOP] = 1
    conv.run()


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    ensure_lake(tmp_path / "lake")
    return tmp_path / "lake"


def test_converts_every_record_once_into_day_partitions(lake: Path) -> None:
    settings = _settings(lake)
    spec = LaneSpec(str(lake), "t", 0)
    end = _append(spec, [(i * 50, 50) for i in range(20)])
    conv = _converter(settings, spec, end)
    _drain(conv)
    assert lake_span_ids(lake) == {n: 1 for n in range(1000)}
    storage = Storage(lake)
    assert storage.partitions("spans") == [
        "date=1970-01-01",
        *DRIVER_PARTITIONS,
    ]
    assert read_checkpoint(spec.wal_dir) == end == conv.status[CHECKPOINT_POS]
    assert not (spec.wal_dir / PENDING).exists()
    assert len(list_segments(spec.wal_dir)) == 1  # segments below the checkpoint dropped
    name = storage.list_files("spans", "date=2026-02-16")[0]
    meta = file_metadata(storage.partition_path("spans", "date=2026-02-16") / name)
    assert meta["tasklake.writer"] == "t" and meta["tasklake.lane"] == "0"
    assert meta["tasklake.wal_end"] == str(end) and meta["tasklake.schema_version"] == "1"
    assert name.startswith("t-") and not list(storage.tmp_dir.iterdir())


def test_flushes_by_rows_and_publishes_as_it_goes(lake: Path) -> None:
    settings = _settings(lake, flush_rows=120)
    spec = LaneSpec(str(lake), "t", 0)
    end = _append(spec, [(i * 50, 50) for i in range(10)])
    conv = _converter(settings, spec, end)
    _read_all(conv, end)
    # 500 spans with a 120-row threshold: flushed after records 3, 6 and 9
    assert read_checkpoint(spec.wal_dir) > 0 and conv.buffered_rows == 50
    _drain(conv)
    assert sum(lake_span_ids(lake).values()) == 500


def test_flushes_by_bytes_before_rows(lake: Path) -> None:
    spec = LaneSpec(str(lake), "t", 0)
    end = _append(spec, [(i * 50, 50) for i in range(10)])
    probe = _converter(_settings(lake), spec, end)
    _read_all(probe, end)
    per_record = probe.buffered_bytes // 10  # what one 50-span record takes in memory
    conv = _converter(_settings(lake, flush_bytes=per_record * 5 // 2), spec, end)
    _read_all(conv, end)
    # 10 records, ~2.5 records' bytes allowed: flushed after records 3, 6 and 9
    assert read_checkpoint(spec.wal_dir) > 0 and conv.buffered_rows == 50
    _drain(conv)
    assert sum(lake_span_ids(lake).values()) == 500


class _Crash(Exception):
    pass


def test_crash_inside_a_flush_is_undone_and_replayed_exactly_once(lake: Path) -> None:
    settings = _settings(lake)
    spec = LaneSpec(str(lake), "t", 0)
    end = _append(spec, [(i * 30, 30) for i in range(10)])
    conv = _converter(settings, spec, end)
    _read_all(conv, end)
    published: list[str] = []
    real_publish = conv.storage.publish

    def publish_then_die(table: str, partition: str, files: Sequence[DataFile]) -> list[Path]:
        if published:
            raise _Crash  # the process dies after the first file of the flush
        out = real_publish(table, partition, files)
        published.append(partition)
        return out

    conv.storage.publish = publish_then_die  # type: ignore[method-assign]
    with pytest.raises(_Crash):
        conv.flush()
    pending = json.loads((spec.wal_dir / PENDING).read_text())
    assert len(pending["files"]) == 3 and pending["wal_end"] == end
    assert 0 < sum(lake_span_ids(lake).values()) < 300  # one file of three is visible
    assert read_checkpoint(spec.wal_dir) == 0

    again = _converter(settings, spec, end)  # restart: withdraw, replay from the checkpoint
    assert sum(lake_span_ids(lake).values()) == 0
    _drain(again)
    assert lake_span_ids(lake) == {n: 1 for n in range(300)}


def test_crash_after_checkpoint_keeps_the_flush(lake: Path) -> None:
    settings = _settings(lake)
    spec = LaneSpec(str(lake), "t", 0)
    end = _append(spec, [(0, 40)])
    conv = _converter(settings, spec, end)
    _read_all(conv, end)
    pending_doc: dict[str, object] = {}

    real_unlink = Path.unlink

    def keep_pending(self: Path, missing_ok: bool = False) -> None:
        if self.name == PENDING:
            pending_doc.update(json.loads(self.read_text()))
            raise _Crash  # died between the checkpoint and removing pending.json
        real_unlink(self, missing_ok=missing_ok)

    Path.unlink = keep_pending  # type: ignore[method-assign]
    try:
        with pytest.raises(_Crash):
            conv.flush()
    finally:
        Path.unlink = real_unlink  # type: ignore[method-assign]
    assert (spec.wal_dir / PENDING).exists() and read_checkpoint(spec.wal_dir) == end
    again = _converter(settings, spec, end)
    _drain(again)
    assert lake_span_ids(lake) == {n: 1 for n in range(40)}
    assert not (spec.wal_dir / PENDING).exists()


def test_a_record_that_cannot_be_converted_is_quarantined_not_lost(
    lake: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(lake)
    spec = LaneSpec(str(lake), "t", 0)
    writer = WalWriter(spec.wal_dir, segment_bytes=1 << 20)
    writer.append(KIND_TRACES, numbered_request(0, 10).SerializeToString(), 1).result()
    writer.append(KIND_TRACES, b"\xff\xff not protobuf", 1).result()
    writer.append(99, b"unknown kind", 1).result()
    writer.append(KIND_TRACES, numbered_request(10, 10).SerializeToString(), 1).result()
    writer.close()
    conv = _converter(settings, spec, writer.position, handlers=STUB_HANDLERS)
    _drain(conv)
    assert lake_span_ids(lake) == {n: 1 for n in range(20)}
    assert conv.status[QUARANTINED] == 2
    kept = sorted(p.name for p in (lake / QUARANTINE_DIR).iterdir())
    assert (
        len(kept) == 4
        and (lake / QUARANTINE_DIR / kept[0]).read_bytes() == b"\xff\xff not protobuf"
    )
    # a bug, loudly: one ERROR line per record, naming the file and the reason
    errors = [r for r in caplog.records if r.levelname == "ERROR" and "quarantined" in r.message]
    assert len(errors) == 2 and "no handler for record kind 99" in errors[1].message


def _companion(data: Path) -> dict[str, Path]:
    out = data.with_name(data.name + ".rollup")
    rows = pq.read_metadata(data).num_rows
    pq.write_table(pa.table({"rows": [rows]}), out)
    return {"_rollup": out}


def test_flush_publishes_companions_with_their_file(lake: Path) -> None:
    settings = _settings(lake)
    spec = LaneSpec(str(lake), "t", 0)
    end = _append(spec, [(0, 30)])
    _drain(_converter(settings, spec, end, companions=_companion))
    storage = Storage(lake)
    for partition in DRIVER_PARTITIONS:
        (name,) = storage.list_files("spans", partition)
        rollup = storage.partition_path("spans", partition) / "_rollup" / name
        assert pq.read_table(rollup).column("rows").to_pylist() == [10]


def test_split_by_day() -> None:
    day = 86_400 * 10**9
    t = pa.table({"start_time": pa.array([day * 3 + 5, 1, day * 3, day - 1], pa.timestamp("ns"))})
    parts = split_by_day(t, "start_time")
    assert [(p, x.num_rows) for p, x in parts] == [("date=1970-01-01", 2), ("date=1970-01-04", 2)]


def test_a_flush_the_full_lake_refuses_waits_and_publishes_once_it_has_room(
    lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = tmp_path / "faults"
    faults.mkdir()
    monkeypatch.setattr(diskfaults, "_DIRECTORY", str(faults))
    monkeypatch.setattr(convert, "FLUSH_RETRY", 0.0)
    spec = LaneSpec(str(lake), "t", 0)
    end = _append(spec, [(i * 50, 50) for i in range(10)])
    conv = _converter(_settings(lake, flush_rows=120), spec, end)
    (faults / "lake").touch()
    while conv.retry_at is None:  # reads until the first flush, which the disk refuses
        conv.step(end)
    assert conv.status[FLUSH_ERRNO] == errno.ENOSPC and conv.status[FLUSH_FAILURES] == 1
    assert conv.retry_at is not None and conv.buffered_rows == 150
    read = conv.position
    assert read < end and conv.checkpoint == 0 and lake_span_ids(lake) == {}
    assert not list(conv.storage.tmp_dir.iterdir())
    assert not conv.flush()  # still full: still buffered, nothing read further
    (faults / "lake").unlink()
    _drain(conv)
    assert conv.status[FLUSH_ERRNO] == 0 and conv.retry_at is None
    assert lake_span_ids(lake) == {n: 1 for n in range(500)}


def test_a_flush_refused_halfway_through_publishing_is_withdrawn_then_published_once(
    lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(convert, "FLUSH_RETRY", 0.0)
    spec = LaneSpec(str(lake), "t", 0)
    end = _append(spec, [(i * 50, 50) for i in range(4)])  # three day partitions: three files
    conv = _converter(_settings(lake), spec, end)
    _read_all(conv, end)
    publish = conv.storage.publish
    calls = [0]

    def second_fails(table: str, partition: str, files: Sequence[DataFile]) -> None:
        calls[0] += 1
        if calls[0] == 2:
            raise OSError(errno.EIO, "Input/output error")
        publish(table, partition, files)

    monkeypatch.setattr(conv.storage, "publish", second_fails)
    assert not conv.flush()
    assert lake_span_ids(lake) == {}  # the first file of the flush was withdrawn
    assert not (spec.wal_dir / PENDING).exists() and read_checkpoint(spec.wal_dir) == 0
    assert conv.flush()
    assert lake_span_ids(lake) == {n: 1 for n in range(200)}
