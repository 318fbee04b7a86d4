"""The converter and the committer: WAL records -> data files and manifests -> one Delta
commit each, exactly once across crashes at every step."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

from ingest import diskfaults
from ingest.convert import lane as convert
from ingest.convert.lane import (
    CHECKPOINT_POS,
    COMMITTED,
    FLUSH_ERRNO,
    FLUSH_FAILURES,
    PUBLISHED_POS,
    QUARANTINE_DIR,
    QUARANTINED,
    STATUS_SLOTS,
    STOP,
    Converter,
    LaneSpec,
    build_handlers,
    lane_committed,
    read_checkpoint,
)
from ingest.lake.committer import Committer, LaneOutbox
from ingest.lake.manifest import read_manifests
from ingest.wal.log import KIND_TRACES, WalWriter, list_segments
from schemas.lake import SPANS
from schemas.settings import Settings
from tests.ingest.crash_driver import DRIVER_PARTITIONS, lake_span_ids, numbered_request
from tests.ingest.stub_handler import SPAN_HANDLERS, STUB_HANDLERS
from tests.lakes import (
    delete_file,
    lake_settings,
    lake_uri,
    list_files,
    local_dir,
    parquet_file,
    tables,
)


def _settings(lake: str, **kw: object) -> Settings:
    values: dict[str, object] = {"writer_id": "t", "flush_rows": 10**6}
    values.update(kw)
    return lake_settings(lake, **values)


def _spec(lake: str) -> LaneSpec:
    return LaneSpec(str(local_dir(lake) / "_wal"), "t", 0)


def _append(spec: LaneSpec, requests: list[tuple[int, int]]) -> int:
    writer = WalWriter(spec.wal_dir, segment_bytes=4096)
    for first, count in requests:
        payload = numbered_request(first, count).SerializeToString()
        writer.append(KIND_TRACES, payload, 1_700_000_000_000).result(timeout=10)
    writer.close()
    return writer.position


def _converter(settings: Settings, spec: LaneSpec, committed: int, **kw: Any) -> Converter:
    status = [0] * STATUS_SLOTS
    status[COMMITTED] = committed
    conv = Converter(
        spec,
        settings,
        status,
        handlers=build_handlers(settings, kw.pop("handlers", SPAN_HANDLERS)),
        **kw,
    )
    conv.recover()
    return conv


def _committer(lake: str, spec: LaneSpec, status: list[int] | None = None) -> Committer:
    lane_status = status if status is not None else [0] * STATUS_SLOTS

    def committed(app_id: str, position: int, rows: int, files: int) -> None:
        assert app_id == spec.name
        lane_committed(spec.wal_dir, lane_status, position, rows, files)

    return Committer(
        tables(lake), [LaneOutbox(spec.name, spec.wal_dir)], writer_id="t", on_committed=committed
    )


def _read_all(conv: Converter, end: int) -> None:
    while conv.position < end:
        conv.step(end)


def _drain(conv: Converter) -> None:
    conv.status[STOP] = 1
    conv.run()


def test_converts_every_record_once_into_day_partitions(lake: str) -> None:
    settings = _settings(lake)
    spec = _spec(lake)
    end = _append(spec, [(i * 50, 50) for i in range(20)])
    conv = _converter(settings, spec, end)
    _drain(conv)
    assert conv.status[PUBLISHED_POS] == end and len(read_manifests(spec.wal_dir)) == 1
    assert lake_span_ids(lake) == {}  # written, not committed yet: nobody sees them
    status = [0] * STATUS_SLOTS
    assert _committer(lake, spec, status).commit_round() == 1
    assert lake_span_ids(lake) == {n: 1 for n in range(1000)}
    files = tables(lake).version_of(SPANS).files
    assert sorted({f"date={f.day}" for f in files}) == list(DRIVER_PARTITIONS)
    assert read_checkpoint(spec.wal_dir) == end == status[CHECKPOINT_POS]
    assert read_manifests(spec.wal_dir) == []
    assert len(list_segments(spec.wal_dir)) == 1  # segments below the checkpoint dropped
    raw = parquet_file(files[0].uri).schema_arrow.metadata or {}
    meta = {k.decode(): v.decode() for k, v in raw.items()}
    assert meta["tasklake.writer"] == "t" and meta["tasklake.lane"] == "0"
    assert meta["tasklake.wal_end"] == str(end) and meta["tasklake.schema_version"] == "1"
    assert files[0].path.split("/")[-1].startswith("t-0-")
    # one commit for the whole flush, carrying the lane's WAL end
    assert tables(lake).current(SPANS).transaction_version("t-0") == end


def test_flushes_by_rows_and_writes_a_manifest_each_time(lake: str) -> None:
    settings = _settings(lake, flush_rows=120)
    spec = _spec(lake)
    end = _append(spec, [(i * 50, 50) for i in range(10)])
    conv = _converter(settings, spec, end)
    _read_all(conv, end)
    # 500 spans with a 120-row threshold: flushed after records 3, 6 and 9
    assert len(read_manifests(spec.wal_dir)) == 3 and conv.buffered_rows == 50
    _drain(conv)
    _committer(lake, spec).commit_round()
    assert sum(lake_span_ids(lake).values()) == 500
    assert tables(lake).version_of(SPANS).version == 1  # four manifests, one commit


def test_flushes_by_bytes_before_rows(lake: str) -> None:
    spec = _spec(lake)
    end = _append(spec, [(i * 50, 50) for i in range(10)])
    probe = _converter(_settings(lake), spec, end)
    _read_all(probe, end)
    per_record = probe.buffered_bytes // 10  # what one 50-span record takes in memory
    conv = _converter(_settings(lake, flush_bytes=per_record * 5 // 2), spec, end)
    _read_all(conv, end)
    # 10 records, ~2.5 records' bytes allowed: flushed after records 3, 6 and 9
    assert len(read_manifests(spec.wal_dir)) == 3 and conv.buffered_rows == 50
    _drain(conv)
    _committer(lake, spec).commit_round()
    assert sum(lake_span_ids(lake).values()) == 500


class _Crash(Exception):
    pass


def test_a_crash_inside_a_flush_leaves_nothing_visible_and_replays_once(lake: str) -> None:
    settings = _settings(lake)
    spec = _spec(lake)
    end = _append(spec, [(i * 30, 30) for i in range(10)])
    conv = _converter(settings, spec, end)
    _read_all(conv, end)
    real_write = conv.writer.write
    written: list[str] = []

    def write_then_die(*args: Any, **kw: Any) -> Any:
        if written:
            raise _Crash  # the process dies after the first file of the flush
        out = real_write(*args, **kw)
        written.append(out.path)
        return out

    conv.writer.write = write_then_die  # type: ignore[method-assign]
    with pytest.raises(_Crash):
        conv.flush()
    assert read_manifests(spec.wal_dir) == []  # no manifest: the file is an orphan
    _committer(lake, spec).recover()
    assert sum(lake_span_ids(lake).values()) == 0 and read_checkpoint(spec.wal_dir) == 0

    again = _converter(settings, spec, end)  # restart: convert again from the checkpoint
    _drain(again)
    _committer(lake, spec).commit_round()
    assert lake_span_ids(lake) == {n: 1 for n in range(300)}


def test_a_crash_after_the_manifest_commits_it_once(lake: str) -> None:
    settings = _settings(lake)
    spec = _spec(lake)
    end = _append(spec, [(0, 40)])
    _drain(_converter(settings, spec, end))  # the manifest is written; the server dies
    again = _converter(settings, spec, end)  # restart: resumes after the manifest
    assert again.position == end
    committer = _committer(lake, spec)
    committer.recover()
    _drain(again)
    committer.commit_round()
    assert lake_span_ids(lake) == {n: 1 for n in range(40)}


def test_a_crash_after_the_commit_does_not_commit_again(
    lake: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(lake)
    spec = _spec(lake)
    end = _append(spec, [(0, 40)])
    _drain(_converter(settings, spec, end))
    committer = _committer(lake, spec)

    def die(*args: Any) -> None:
        raise _Crash  # committed to the log, died before the manifest was removed

    monkeypatch.setattr("ingest.lake.committer.remove_manifests", die)
    with pytest.raises(_Crash):
        committer.commit_round()
    monkeypatch.undo()
    assert len(read_manifests(spec.wal_dir)) == 1 and lake_span_ids(lake) == {
        n: 1 for n in range(40)
    }
    _committer(lake, spec).recover()  # the log's transaction says: already committed
    assert lake_span_ids(lake) == {n: 1 for n in range(40)}
    assert read_manifests(spec.wal_dir) == [] and read_checkpoint(spec.wal_dir) == end


def test_a_manifest_whose_files_are_gone_is_converted_again(lake: str) -> None:
    """A receiver down longer than vacuum_retention: a vacuum may have removed the files of
    its uncommitted flush. The WAL still holds the records: they are converted again."""
    settings = _settings(lake)
    spec = _spec(lake)
    end = _append(spec, [(0, 40)])
    _drain(_converter(settings, spec, end))
    (manifest,) = read_manifests(spec.wal_dir)
    for f in manifest.files:
        delete_file(lake_uri(lake, SPANS, f.path))
    _committer(lake, spec).recover()
    assert read_manifests(spec.wal_dir) == []
    again = _converter(settings, spec, end)
    assert again.position == 0
    _drain(again)
    _committer(lake, spec).commit_round()
    assert lake_span_ids(lake) == {n: 1 for n in range(40)}


def test_a_record_that_cannot_be_converted_is_quarantined_not_lost(
    lake: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(lake)
    spec = _spec(lake)
    writer = WalWriter(spec.wal_dir, segment_bytes=1 << 20)
    writer.append(KIND_TRACES, numbered_request(0, 10).SerializeToString(), 1).result()
    writer.append(KIND_TRACES, b"\xff\xff not protobuf", 1).result()
    writer.append(99, b"unknown kind", 1).result()
    writer.append(KIND_TRACES, numbered_request(10, 10).SerializeToString(), 1).result()
    writer.close()
    conv = _converter(settings, spec, writer.position, handlers=STUB_HANDLERS)
    _drain(conv)
    _committer(lake, spec).commit_round()
    assert lake_span_ids(lake) == {n: 1 for n in range(20)}
    assert conv.status[QUARANTINED] == 2
    quarantine = Path(spec.wal_root) / QUARANTINE_DIR
    kept = sorted(p.name for p in quarantine.iterdir())
    assert len(kept) == 4 and (quarantine / kept[0]).read_bytes() == b"\xff\xff not protobuf"
    # a bug, loudly: one ERROR line per record, naming the file and the reason
    errors = [r for r in caplog.records if r.levelname == "ERROR" and "quarantined" in r.message]
    assert len(errors) == 2 and "no handler for record kind 99" in errors[1].message


def test_a_flush_the_full_lake_refuses_waits_and_writes_once_it_has_room(
    lake: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = tmp_path / "faults"
    faults.mkdir()
    monkeypatch.setattr(diskfaults, "_DIRECTORY", str(faults))
    monkeypatch.setattr(convert, "FLUSH_RETRY", 0.0)
    spec = _spec(lake)
    end = _append(spec, [(i * 50, 50) for i in range(10)])
    conv = _converter(_settings(lake, flush_rows=120), spec, end)
    (faults / "lake").touch()
    while conv.retry_at is None:  # reads until the first flush, which the disk refuses
        conv.step(end)
    assert conv.status[FLUSH_ERRNO] == errno.ENOSPC and conv.status[FLUSH_FAILURES] == 1
    assert conv.retry_at is not None and conv.buffered_rows == 150
    assert conv.position < end and conv.published == 0
    assert read_manifests(spec.wal_dir) == []
    assert not conv.flush()  # still full: still buffered, nothing read further
    (faults / "lake").unlink()
    _drain(conv)
    assert conv.status[FLUSH_ERRNO] == 0 and conv.retry_at is None
    _committer(lake, spec).commit_round()
    assert lake_span_ids(lake) == {n: 1 for n in range(500)}


def test_a_flush_refused_halfway_leaves_no_file_and_is_written_once(
    lake: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(convert, "FLUSH_RETRY", 0.0)
    spec = _spec(lake)
    end = _append(spec, [(i * 50, 50) for i in range(4)])  # three day partitions: three files
    conv = _converter(_settings(lake), spec, end)
    _read_all(conv, end)
    write = conv.writer.write
    calls = [0]

    def second_fails(*args: Any, **kw: Any) -> Any:
        calls[0] += 1
        if calls[0] == 2:
            raise OSError(errno.EIO, "Input/output error")
        return write(*args, **kw)

    monkeypatch.setattr(conv.writer, "write", second_fails)
    assert not conv.flush()
    assert read_manifests(spec.wal_dir) == []
    left = list_files(lake, SPANS, suffix=".parquet")
    assert left == []  # the file written before the refusal was deleted
    assert conv.flush()
    _committer(lake, spec).commit_round()
    assert lake_span_ids(lake) == {n: 1 for n in range(200)}


@pytest.mark.parametrize("dies", ["in_the_checkpoint", "removing_the_manifests"])
def test_a_restart_never_converts_again_what_a_table_holds(
    lake: str, monkeypatch: pytest.MonkeyPatch, dies: str
) -> None:
    """The committer dies after a commit, at either step after it; the restarted converter
    flushes at other boundaries (a flush could straddle what was committed): still once."""
    settings = _settings(lake)
    spec = _spec(lake)
    end = _append(spec, [(i * 50, 50) for i in range(6)])
    _drain(_converter(settings, spec, end))
    committer = _committer(lake, spec)

    def die(*args: Any) -> None:
        raise _Crash

    if dies == "in_the_checkpoint":
        monkeypatch.setattr(committer, "on_committed", die)
    else:
        monkeypatch.setattr("ingest.lake.committer.remove_manifests", die)
    with pytest.raises(_Crash):
        committer.commit_round()
    monkeypatch.undo()
    more = _append(spec, [(300 + i * 50, 50) for i in range(4)])
    again = _converter(_settings(lake, flush_rows=70), spec, more)
    assert again.position >= end  # after the manifest, or after the checkpoint: not below
    _drain(again)
    _committer(lake, spec).recover()
    assert lake_span_ids(lake) == {n: 1 for n in range(500)}
