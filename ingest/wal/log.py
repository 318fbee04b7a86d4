"""The write-ahead log of one lane: what makes a 200 mean "this survives kill -9".

A lane's log is a directory of segment files named by the *position* of their first byte
(``00000000000000000000.wal``); a position is a byte offset in the lane's endless stream, so
one integer says how far a reader got, across segments. A record is::

    magic (4s) | length u32 | crc32 u32 | kind u8 | time_ms u64 | payload (length bytes)

The crc covers kind, time and payload. ``time_ms`` is when the record was accepted: replay
stamps rows with the original acknowledgement time, not the time of the replay.

A large request is appended as a *chain* of records (``append_chain``): every record but the
last has the ``MORE`` bit set in its kind. A chain is written in one group and never crosses a
segment, and recovery cuts a chain that lacks its last record, so a request is in the log
whole or not at all; a reader converts (and checkpoints) a chain record by record, which
bounds the memory a converter needs to the size of one record, not of one request.

One writer thread per lane does **group commit**: it drains every waiting append, writes them
with one ``writev``, calls ``fdatasync`` once and only then resolves their futures and
publishes the new *committed* position (a converter never reads past it). A torn tail (a
partial record or a bad crc at the end of the last segment, left by a crash mid-write) is
truncated on open; corruption anywhere else is logged and skipped by readers.

When the disk refuses a write or an fsync (ENOSPC, EDQUOT, EIO), the group's records are cut
off again (``ftruncate`` to the last durable position: nothing half-written is ever
acknowledged, and after a failed fsync nothing unacknowledged is trusted either), their
requests fail, and the writer *refuses* further appends (``failed`` says why; ingest answers
503 and ``/readyz`` not ready). Every ``PROBE_INTERVAL`` it tries to recover by itself: cut
the segment back, fsync it, and write and fsync ``PROBE_BYTES`` to a scratch file. Once that
works the log accepts appends again.

Space is reclaimed without needing a whole segment's worth per lane: besides rolling past
``segment_bytes``, the writer rolls as soon as the current segment holds ``reclaim_bytes`` and
the converter has checkpointed into it, so the converter deletes it (segments wholly below its
checkpoint) once it has converted the rest. A lane that keeps up thus holds a few MiB of log,
not 64; one that lags holds its backlog (which the disk must hold anyway) plus at most the
converted part of the segment it is in.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import struct
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from ingest import diskfaults

log = logging.getLogger(__name__)

MAGIC = b"TLW1"
HEADER = struct.Struct("<4sIIBQ")
HEADER_SIZE = HEADER.size  # 21
SEGMENT_SUFFIX = ".wal"

#: Record kinds; a converter maps a kind to a handler (``ingest.convert.lane.HANDLERS``).
KIND_TRACES = 1  # an ExportTraceServiceRequest, as received
KIND_SIGNALS = 2  # validated completion signals, Arrow IPC (``ingest.wal.records``)
KIND_COSTS = 3  # validated cost entries, Arrow IPC (``ingest.wal.records``)

#: Kind bit: another record of the same chain follows (see the module docstring).
MORE = 0x80

#: A record's payload, whole or as pieces written back to back.
Buffer = bytes | memoryview
Pieces = Sequence[Buffer]

#: How often a writer that refuses appends tries the disk again, and how much it writes then.
PROBE_INTERVAL = 1.0
PROBE_BYTES = 1024 * 1024
PROBE_NAME = "probe.tmp"
#: Roll early (see the module docstring) once the current segment holds this much.
RECLAIM_BYTES = 4 * 1024 * 1024

_IOV_MAX = 512
_MAX_GROUP_BYTES = 32 * 1024 * 1024


class WalError(Exception):
    """The log cannot be written (disk full, fsync failed) or the lane is closed."""


@dataclass(frozen=True)
class Record:
    kind: int  # without the MORE bit
    time_ms: int
    payload: memoryview
    start: int  # position of the record's first byte
    end: int  # position just past it
    more: bool = False  # another record of its chain follows


def segment_name(base: int) -> str:
    return f"{base:020d}{SEGMENT_SUFFIX}"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """(base position, path) of every segment, oldest first."""
    out: list[tuple[int, Path]] = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return out
    for entry in entries:
        name = entry.name
        if name.endswith(SEGMENT_SUFFIX) and name[: -len(SEGMENT_SUFFIX)].isdigit():
            out.append((int(name[: -len(SEGMENT_SUFFIX)]), Path(entry.path)))
    out.sort()
    return out


def encode_record(kind: int, time_ms: int, payload: Buffer | Pieces) -> tuple[bytes, int]:
    """Header bytes for ``payload`` (whole or in pieces) and the record's total size."""
    pieces = [payload] if isinstance(payload, bytes | memoryview) else payload
    head = struct.pack("<BQ", kind, time_ms)
    crc = zlib.crc32(head)
    length = 0
    for piece in pieces:
        crc = zlib.crc32(piece, crc)
        length += len(piece)
    return HEADER.pack(MAGIC, length, crc, kind, time_ms), HEADER_SIZE + length


def parse_records(buf: memoryview, base: int) -> tuple[list[Record], int, str | None]:
    """Complete, valid records at the start of ``buf`` (which begins at position ``base``).

    Returns the records, how many bytes they cover, and why parsing stopped early (``None``
    when it stopped only because the buffer ended, possibly mid-record).
    """
    records: list[Record] = []
    off = 0
    n = len(buf)
    unpack = HEADER.unpack_from
    while n - off >= HEADER_SIZE:
        magic, length, crc, kind, time_ms = unpack(buf, off)
        if magic != MAGIC:
            return records, off, f"bad magic at position {base + off}"
        end = off + HEADER_SIZE + length
        if end > n:
            break
        payload = buf[off + HEADER_SIZE : end]
        if zlib.crc32(payload, zlib.crc32(buf[off + 12 : off + HEADER_SIZE])) != crc:
            return records, off, f"bad crc at position {base + off}"
        records.append(
            Record(kind & ~MORE, time_ms, payload, base + off, base + end, bool(kind & MORE))
        )
        off = end
    return records, off, None


def _chains_end(records: list[Record], base: int) -> int:
    """Position just past the last record that ends a chain (``base`` if none does)."""
    end = base
    for record in records:
        if not record.more:
            end = record.end
    return end


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class _Tail:
    """The last segment of a log as a crash left it."""

    base: int
    path: Path
    size: int  # bytes in the file
    good: int  # bytes up to the end of its last complete chain
    why: str | None  # why parsing stopped before the end (None: a partial record, or none)


def _tail(directory: Path) -> _Tail | None:
    """Only the last segment can be torn by a crash (a segment is complete and fsynced before
    the next one is created), so only it is scanned. A chain missing its last record is torn
    too."""
    segments = list_segments(directory)
    if not segments:
        return None
    base, path = segments[-1]
    data = path.read_bytes()
    records, _, why = parse_records(memoryview(data), base)
    return _Tail(base, path, len(data), _chains_end(records, base) - base, why)


def log_end(directory: Path) -> int:
    """The end position of the log's last complete chain, without changing anything: where
    ``recover`` would cut a torn tail (for readers of a log no writer holds)."""
    tail = _tail(directory)
    return 0 if tail is None else tail.base + tail.good


def recover(directory: Path) -> int:
    """Truncate a torn tail of the last segment; return the end position of the log."""
    directory.mkdir(parents=True, exist_ok=True)
    tail = _tail(directory)
    if tail is None:
        return 0
    base, path, good, why = tail.base, tail.path, tail.good, tail.why
    if good < tail.size:
        log.warning(
            "WAL %s: torn tail, dropping %d bytes after position %d (%s)",
            path,
            tail.size - good,
            base + good,
            why or "partial record",
        )
        with open(path, "r+b") as fh:
            fh.truncate(good)
            os.fsync(fh.fileno())
    return base + good


def read_records(
    directory: Path, start: int, stop: int, *, max_bytes: int = 16 * 1024 * 1024
) -> Iterator[Record]:
    """Records from ``start`` to ``stop`` (both record boundaries), read in chunks.

    A corrupt record inside a segment is logged and the rest of that segment skipped: the
    next segment starts at a known position, so later records are still found.
    """
    reader = WalReader(directory)
    try:
        pos = start
        while pos < stop:
            chunk = reader.read(pos, stop, max_bytes)
            if chunk is None:
                return
            records, next_pos = chunk
            if not records and next_pos == pos:
                return  # the log ends before ``stop``
            yield from records
            pos = next_pos
    finally:
        reader.close()


class WalReader:
    """Reads one lane's log incrementally: the converter's view of the WAL."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fd: int | None = None
        self._base = -1
        self._next_base: int | None = None
        self.corrupt_skipped = 0

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._base = -1

    def _open_for(self, pos: int) -> bool:
        segments = list_segments(self.directory)
        chosen = None
        nxt: int | None = None
        for i, (base, path) in enumerate(segments):
            if base <= pos:
                chosen = (base, path)
                nxt = segments[i + 1][0] if i + 1 < len(segments) else None
        if chosen is None:
            return False
        if chosen[0] != self._base:
            self.close()
            self._fd = os.open(chosen[1], os.O_RDONLY)
            self._base = chosen[0]
        self._next_base = nxt
        return True

    def read(self, pos: int, stop: int, max_bytes: int) -> tuple[list[Record], int] | None:
        """Records starting at ``pos`` and ending at or before ``stop``; the new position.

        Returns ``([], pos)`` when nothing complete is available yet, ``None`` when ``pos`` is
        in no segment (deleted below a checkpoint: a caller bug).
        """
        outside = self._fd is None or pos < self._base
        beyond = self._next_base is not None and pos >= self._next_base
        if (outside or beyond) and not self._open_for(pos):
            return None
        assert self._fd is not None
        want = min(stop - pos, max_bytes)
        data = os.pread(self._fd, want, pos - self._base)
        if not data:
            # end of this segment's file: a newer segment may start exactly here
            if not self._open_for(pos) or self._base != pos:
                return [], pos
            data = os.pread(self._fd, want, 0)
            if not data:
                return [], pos
        records, good, why = parse_records(memoryview(data), pos)
        if why is not None:
            self.corrupt_skipped += 1
            self._open_for(pos)
            nxt = self._next_base
            log.error(
                "WAL %s: %s; skipping to %s",
                self.directory,
                why,
                "the next segment" if nxt is not None else "the end",
            )
            return records, (nxt if nxt is not None else pos + good)
        if not records and len(data) == want and HEADER_SIZE <= want < stop - pos:
            # one record larger than max_bytes: read it whole
            (length,) = struct.unpack_from("<I", data, 4)
            return self.read(pos, stop, HEADER_SIZE + length)
        return records, pos + good


@dataclass
class _Append:
    """One chain of records (often of one), durable all or none."""

    kind: int
    time_ms: int
    records: Sequence[Pieces]
    size: int  # bytes on disk, headers included
    future: Future[int]


_STOP = object()


class WalWriter:
    """The single writer of one lane's log, with group commit.

    ``on_commit(position)`` is called from the writer thread after every durable write (after
    ``fdatasync`` in durable mode, after ``write`` otherwise): the runtime publishes it to
    the lane's converter through shared memory. ``converted()`` tells how far the converter
    has checkpointed (for the early roll that lets it reclaim space).
    """

    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int,
        fsync: bool = True,
        on_commit: Callable[[int], None] | None = None,
        converted: Callable[[], int] | None = None,
        reclaim_bytes: int = RECLAIM_BYTES,
    ) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.reclaim_bytes = reclaim_bytes
        self.durable = fsync
        self._on_commit = on_commit
        self._converted = converted
        self.position = recover(directory)
        self.fsyncs = 0
        self.groups = 0
        self.records = 0
        self.queued_bytes = 0
        self.failures = 0  # times the disk refused a write or an fsync
        self.recoveries = 0  # times the writer found it writable again
        self._failed: str | None = None
        self._failure = ""  # what first made it refuse appends
        self._closed = False
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Append | object] = queue.SimpleQueue()
        segments = list_segments(directory)
        if segments and self.position - segments[-1][0] < segment_bytes:
            self._base = segments[-1][0]
            self._fd = os.open(segments[-1][1], os.O_WRONLY | os.O_APPEND)
        else:
            self._base = self.position
            self._fd = self._create_segment(self.position)
        if on_commit is not None:
            on_commit(self.position)
        self._thread = threading.Thread(
            target=self._run, name=f"wal-writer-{directory.name}", daemon=True
        )
        self._thread.start()

    @property
    def committed(self) -> int:
        return self.position

    @property
    def failed(self) -> str | None:
        """Why appends are refused right now (None: they are accepted)."""
        return self._failed

    def append(self, kind: int, payload: Buffer, time_ms: int) -> Future[int]:
        """Queue a record; the future resolves to its end position once it is durable."""
        return self.append_chain(kind, [[payload]], time_ms)

    def append_chain(self, kind: int, records: Sequence[Pieces], time_ms: int) -> Future[int]:
        """Queue records of one kind that become durable, and survive a crash, all or none
        (each given as pieces written back to back); the future resolves to the end position
        of the last once they are durable."""
        if not records:
            raise ValueError("a chain has at least one record")
        size = sum(HEADER_SIZE + sum(len(p) for p in pieces) for pieces in records)
        fut: Future[int] = Future()
        with self._lock:
            if self._closed:
                raise WalError("the write-ahead log is closed")
            if self._failed is not None:
                raise WalError(self._failed)
            self.queued_bytes += size
            self._queue.put(_Append(kind, time_ms, records, size, fut))
        return fut

    def close(self, timeout: float | None = None) -> None:
        """Write everything queued, then stop the writer thread and close the segment."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join(timeout)
        if not self._thread.is_alive() and self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # ------------------------------------------------------------------ writer thread

    def _create_segment(self, base: int) -> int:
        path = self.directory / segment_name(base)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        _fsync_dir(self.directory)  # the new name must survive a crash too
        return fd

    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                item = self._queue.get(timeout=PROBE_INTERVAL if self._failed else None)
            except queue.Empty:
                self._try_recover()
                continue
            group: list[_Append] = []
            size = 0
            while True:
                if item is _STOP:
                    stopping = True
                    break
                assert isinstance(item, _Append)
                group.append(item)
                size += item.size
                if size >= _MAX_GROUP_BYTES:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if group:
                self._write_group(group, size)
            # drop the written payloads now, not when the next append arrives (a 64 MiB
            # request would otherwise stay in memory for as long as its lane is idle)
            del group, item

    def _write_group(self, group: list[_Append], size: int) -> None:
        if self._failed is not None:
            self._refuse_group(group, self._failed)
            return
        try:
            if self._should_roll():
                if self._fd >= 0:
                    os.close(self._fd)
                self._fd = -1
                self._base = self.position
                self._fd = self._create_segment(self.position)
            diskfaults.check("wal")
            buffers: list[bytes | memoryview] = []
            ends: list[int] = []
            pos = self.position
            for a in group:
                last = len(a.records) - 1
                for i, pieces in enumerate(a.records):
                    kind = a.kind | MORE if i < last else a.kind
                    head, total = encode_record(kind, a.time_ms, pieces)
                    buffers.append(head)
                    buffers.extend(pieces)
                    pos += total
                ends.append(pos)
            self._write_all(buffers, size)
        except OSError as exc:
            self._fail_group(group, f"write-ahead log write failed: {exc}")
            return
        if self.durable:
            try:
                os.fdatasync(self._fd)
            except OSError as exc:
                # the page cache state of these records is unknown: cut them off too
                self._fail_group(group, f"write-ahead log fsync failed: {exc}")
                return
            self.fsyncs += 1
        self.position = pos
        self.groups += 1
        self.records += len(group)
        with self._lock:
            self.queued_bytes -= size
        if self._on_commit is not None:
            self._on_commit(pos)
        for a, end in zip(group, ends, strict=True):
            a.future.set_result(end)

    def _write_all(self, buffers: list[bytes | memoryview], size: int) -> None:
        written = 0
        i = 0
        while i < len(buffers):
            chunk = buffers[i : i + _IOV_MAX]
            n = os.writev(self._fd, chunk)
            chunk_size = sum(len(b) for b in chunk)
            if n < chunk_size:
                # short write: finish the rest of this chunk byte-wise
                rest = b"".join(bytes(b) for b in chunk)[n:]
                while rest:
                    m = os.write(self._fd, rest)
                    rest = rest[m:]
            written += chunk_size
            i += _IOV_MAX
        assert written == size

    def _should_roll(self) -> bool:
        size = self.position - self._base
        if size >= self.segment_bytes or self._fd < 0:
            return True
        if size < self.reclaim_bytes or self._converted is None:
            return False
        return self._converted() > self._base  # the converter has checkpointed into it

    def _fail_group(self, group: list[_Append], message: str) -> None:
        """Refuse appends from now on (until ``_try_recover``), cut the group's bytes off and
        fail its requests: none of it was acknowledged."""
        log.error(
            "WAL %s: %s; refusing writes until the disk takes them again", self.directory, message
        )
        self.failures += 1
        self._failed = self._failure = message
        if self._fd >= 0:
            try:
                os.ftruncate(self._fd, self.position - self._base)
            except OSError as exc:
                self._failed = f"{message}; could not truncate back: {exc}"
        self._refuse_group(group, message)

    def _refuse_group(self, group: list[_Append], message: str) -> None:
        with self._lock:
            self.queued_bytes -= sum(a.size for a in group)
        for a in group:
            a.future.set_exception(WalError(message))

    def _try_recover(self) -> None:
        """Writable again? Cut the segment back to the last durable record, fsync it, and
        write and fsync a scratch file; only when all of that works are appends accepted."""
        probe = self.directory / PROBE_NAME
        try:
            diskfaults.check("wal")
            if self._fd < 0:
                self._base = self.position
                self._fd = self._create_segment(self.position)
            os.ftruncate(self._fd, self.position - self._base)
            os.fdatasync(self._fd)
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                self._probe_write(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            self._failed = f"{self._failure} (tried again: {exc})"
            return
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
        log.warning("WAL %s: the disk takes writes again; accepting appends", self.directory)
        self.recoveries += 1
        self._failed = None

    @staticmethod
    def _probe_write(fd: int) -> None:
        block = bytes(64 * 1024)
        written = 0
        while written < PROBE_BYTES:
            written += os.write(fd, block)
        os.fdatasync(fd)


def fsync_dir(path: Path) -> None:
    """fsync a directory so renames and new names in it are durable."""
    _fsync_dir(path)
