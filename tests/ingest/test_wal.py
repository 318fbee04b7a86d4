"""The write-ahead log: records survive, torn tails are cut, group commit saves fsyncs."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from ingest import diskfaults
from ingest.wal import log as wal
from ingest.wal.log import (
    HEADER_SIZE,
    KIND_TRACES,
    WalError,
    WalReader,
    WalWriter,
    list_segments,
    log_end,
    read_records,
    recover,
)


def _payload(i: int) -> bytes:
    return f"record-{i:05d}-".encode() * (1 + i % 7)


def _write(
    directory: Path, count: int, *, segment_bytes: int = 1 << 20, fsync: bool = True
) -> WalWriter:
    writer = WalWriter(directory, segment_bytes=segment_bytes, fsync=fsync)
    for first in range(0, count, 10):  # groups of 10: segments roll between groups
        futures = [
            writer.append(KIND_TRACES, _payload(i), 1000 + i)
            for i in range(first, min(count, first + 10))
        ]
        for f in futures:
            f.result(timeout=10)
    return writer


def _replay(directory: Path) -> list[tuple[int, int, bytes]]:
    end = recover(directory)
    start = list_segments(directory)[0][0] if list_segments(directory) else 0
    return [(r.kind, r.time_ms, bytes(r.payload)) for r in read_records(directory, start, end)]


def test_records_survive_reopen_across_segments(tmp_path: Path) -> None:
    writer = _write(tmp_path, 300, segment_bytes=4096)
    end = writer.position
    writer.close()
    assert len(list_segments(tmp_path)) > 3  # rolled
    got = _replay(tmp_path)
    assert got == [(KIND_TRACES, 1000 + i, _payload(i)) for i in range(300)]
    # reopening continues at the end: positions keep growing, old records stay
    again = WalWriter(tmp_path, segment_bytes=4096)
    assert again.position == end
    assert again.append(KIND_TRACES, b"more", 5).result(timeout=10) == end + HEADER_SIZE + 4
    again.close()
    assert _replay(tmp_path)[-1] == (KIND_TRACES, 5, b"more")


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_torn_tail_is_cut_at_last_good_record(tmp_path: Path, damage: str) -> None:
    _write(tmp_path, 50).close()
    (_, segment) = list_segments(tmp_path)[-1]
    data = bytearray(segment.read_bytes())
    good = _replay(tmp_path)
    last_len = HEADER_SIZE + len(_payload(49))
    if damage == "truncate":
        segment.write_bytes(bytes(data[: len(data) - last_len // 2]))  # mid-record
    else:
        data[len(data) - 3] ^= 0xFF  # a byte of the last payload: crc mismatch
        segment.write_bytes(bytes(data))
    assert recover(tmp_path) == len(data) - last_len
    assert _replay(tmp_path) == good[:-1]
    # the log is writable again after the cut, and the new record follows the good ones
    writer = WalWriter(tmp_path, segment_bytes=1 << 20)
    writer.append(KIND_TRACES, b"after", 7).result(timeout=10)
    writer.close()
    assert _replay(tmp_path) == [*good[:-1], (KIND_TRACES, 7, b"after")]


def test_a_chain_is_read_record_by_record_in_one_segment(tmp_path: Path) -> None:
    writer = WalWriter(tmp_path, segment_bytes=64)  # rolls before a group past 64 bytes
    writer.append(KIND_TRACES, b"before" * 10, 1).result(timeout=10)
    chain: list[list[bytes | memoryview]] = [[b"one"], [b"tw", memoryview(b"o")], [b"three"]]
    end = writer.append_chain(KIND_TRACES, chain, 2).result(timeout=10)
    writer.close()
    assert end == writer.position
    records = list(read_records(tmp_path, 0, end))
    assert [(bytes(r.payload), r.more) for r in records] == [
        (b"before" * 10, False),
        (b"one", True),
        (b"two", True),
        (b"three", False),
    ]
    # the chain is longer than a segment, yet in one: segments roll between groups only
    assert [base for base, _ in list_segments(tmp_path)] == [0, records[1].start]


@pytest.mark.parametrize("keep", [1, 2])
def test_a_chain_cut_short_by_a_crash_is_dropped_whole(tmp_path: Path, keep: int) -> None:
    writer = WalWriter(tmp_path, segment_bytes=1 << 20)
    before = writer.append(KIND_TRACES, b"acknowledged", 1).result(timeout=10)
    writer.append_chain(KIND_TRACES, [[b"a" * 100], [b"b" * 100], [b"c" * 100]], 2).result(10)
    writer.close()
    (_, segment) = list_segments(tmp_path)[-1]
    data = segment.read_bytes()
    segment.write_bytes(data[: before + keep * (HEADER_SIZE + 100)])  # whole records, not all
    torn = segment.read_bytes()
    assert log_end(tmp_path) == before  # where recover cuts, without cutting
    assert segment.read_bytes() == torn
    assert recover(tmp_path) == before
    assert _replay(tmp_path) == [(KIND_TRACES, 1, b"acknowledged")]


def test_corrupt_record_inside_an_older_segment_skips_to_next_segment(tmp_path: Path) -> None:
    _write(tmp_path, 200, segment_bytes=2048).close()
    segments = list_segments(tmp_path)
    _, first = segments[0]
    data = bytearray(first.read_bytes())
    data[HEADER_SIZE + 2] ^= 0xFF  # first record's payload
    first.write_bytes(bytes(data))
    got = _replay(tmp_path)
    second_base = segments[1][0]
    expected = _replay_all_from(tmp_path, second_base)
    assert got == expected and len(got) > 100


def _replay_all_from(directory: Path, start: int) -> list[tuple[int, int, bytes]]:
    end = recover(directory)
    return [(r.kind, r.time_ms, bytes(r.payload)) for r in read_records(directory, start, end)]


def test_group_commit_resolves_many_appends_with_fewer_fsyncs(tmp_path: Path) -> None:
    writer = WalWriter(tmp_path, segment_bytes=1 << 24)
    futures = []
    lock = threading.Lock()

    def client(k: int) -> None:
        for i in range(200):
            f = writer.append(KIND_TRACES, _payload(i) * 20, i)
            with lock:
                futures.append(f)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ends = sorted(f.result(timeout=30) for f in futures)
    writer.close()
    assert len(set(ends)) == 1600
    assert writer.records == 1600
    assert writer.fsyncs == writer.groups
    assert writer.fsyncs < 1600  # some appends shared an fsync
    assert len(_replay(tmp_path)) == 1600


def test_no_fsync_mode_counts_no_fsyncs(tmp_path: Path) -> None:
    writer = _write(tmp_path, 20, fsync=False)
    writer.close()
    assert writer.fsyncs == 0 and len(_replay(tmp_path)) == 20


def test_reader_follows_segments_and_committed_position(tmp_path: Path) -> None:
    committed: list[int] = []
    writer = WalWriter(tmp_path, segment_bytes=1024, on_commit=committed.append)
    reader = WalReader(tmp_path)
    pos, seen = 0, 0
    for batch in range(5):
        fs = [writer.append(KIND_TRACES, _payload(i), i) for i in range(30)]
        for f in fs:
            f.result(timeout=10)
        while pos < committed[-1]:
            chunk = reader.read(pos, committed[-1], 1 << 20)
            assert chunk is not None
            records, pos = chunk
            seen += len(records)
        assert seen == 30 * (batch + 1)
    reader.close()
    writer.close()


def test_closed_log_refuses_appends(tmp_path: Path) -> None:
    writer = WalWriter(tmp_path, segment_bytes=1 << 20)
    writer.close()
    with pytest.raises(WalError):
        writer.append(KIND_TRACES, b"x", 0)


def test_segment_creation_is_visible_to_new_readers(tmp_path: Path) -> None:
    writer = _write(tmp_path, 10, segment_bytes=64)
    writer.close()
    names = sorted(os.listdir(tmp_path))
    assert names == [p.name for _, p in list_segments(tmp_path)]
    assert all(name.endswith(".wal") for name in names)


def test_a_full_disk_refuses_appends_until_it_takes_writes_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = tmp_path / "faults"
    faults.mkdir()
    monkeypatch.setattr(diskfaults, "_DIRECTORY", str(faults))
    monkeypatch.setattr(wal, "PROBE_INTERVAL", 0.05)
    log_dir = tmp_path / "wal"
    writer = WalWriter(log_dir, segment_bytes=1 << 20)
    try:
        good = writer.append(KIND_TRACES, b"before", 1).result(timeout=10)
        (faults / "wal").touch()  # the disk fills
        with pytest.raises(WalError, match="No space left"):
            writer.append(KIND_TRACES, b"refused", 2).result(timeout=10)
        assert writer.failed is not None and "No space left" in writer.failed
        with pytest.raises(WalError):  # refused at once while full: nothing is queued
            writer.append(KIND_TRACES, b"refused too", 3)
        assert writer.position == good and writer.queued_bytes == 0
        assert sum(p.stat().st_size for _, p in list_segments(log_dir)) == good
        (faults / "wal").unlink()  # space comes back: the writer notices by itself
        for _ in range(200):
            if writer.failed is None:
                break
            threading.Event().wait(0.02)
        assert writer.failed is None and writer.recoveries == 1
        writer.append(KIND_TRACES, b"after", 4).result(timeout=10)
        assert not (log_dir / wal.PROBE_NAME).exists()
    finally:
        writer.close()
    assert [p for _, _, p in _replay(log_dir)] == [b"before", b"after"]


def test_segments_roll_early_once_the_converter_has_caught_up(tmp_path: Path) -> None:
    converted = [0]
    writer = WalWriter(
        tmp_path, segment_bytes=1 << 30, converted=lambda: converted[0], reclaim_bytes=1000
    )
    try:
        for i in range(20):  # the converter lags: one segment grows past reclaim_bytes
            writer.append(KIND_TRACES, b"x" * 200, i).result(timeout=10)
        assert len(list_segments(tmp_path)) == 1
        converted[0] = 1  # it checkpoints into the segment: the next group starts a new one
        writer.append(KIND_TRACES, b"y", 99).result(timeout=10)
        bases = [base for base, _ in list_segments(tmp_path)]
        assert len(bases) == 2 and bases[1] == 20 * (HEADER_SIZE + 200)
    finally:
        writer.close()
