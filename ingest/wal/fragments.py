"""Cut a large request into WAL records of at most ``FRAGMENT_BYTES``, without copying it.

A 64 MiB request appended as one record made each converter read and normalize 64 MiB at once
(measured: a converter grew from 145 to ~500 MiB and kept most of it). Cut into a chain
(``ingest.wal.log.WalWriter.append_chain``), the request is still durable all or nothing, but a
converter holds one fragment at a time and can publish between fragments.

Traces are cut on the protobuf wire: an ``ExportTraceServiceRequest`` is the concatenation
of its ``resource_spans`` fields, so whole ``ResourceSpans`` are grouped into fragments; one
too large on its own is cut into several ``ResourceSpans`` with the same resource (and every
other field) and a share of its ``ScopeSpans``, which are cut the same way by ``spans``. Every
fragment is thus a valid request whose spans normalize exactly as they did in the whole one
(a span's row depends on its own fields, its resource and its scope only). Fragments are
lists of ``memoryview`` slices of the original bytes plus a few new length prefixes: nothing
is copied. A body that is not well-formed protobuf on this level is left whole.

Signal and cost-entry rows are cut by rows.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from ingest.receive.otlp_json import _varint
from ingest.receive.wire import _varint as read_varint
from ingest.wal.log import Buffer, Pieces

#: Largest WAL record a request is cut into (a single larger span stays whole).
FRAGMENT_BYTES = 4 * 1024 * 1024

#: The repeated field cut at each level: Request.resource_spans (1) -> ResourceSpans.scope_spans
#: (2) -> ScopeSpans.spans (2).
_TRACE_PATH = (1, 2, 2)
_LEN = 2


class _Malformed(Exception):
    pass


def split_traces(payload: Buffer, limit: int = FRAGMENT_BYTES) -> list[Pieces]:
    """``payload`` (an ``ExportTraceServiceRequest``) as records of at most ``limit`` bytes
    each, where the request allows it."""
    if len(payload) <= limit:
        return [[payload]]
    view = memoryview(payload)
    try:
        return list(_split(view, 0, len(view), 0, limit))
    except _Malformed:
        return [[payload]]


def split_rows(rows: pa.Table, limit: int = FRAGMENT_BYTES) -> list[pa.Table]:
    """``rows`` in slices of about ``limit`` bytes (zero-copy slices of the same table)."""
    if rows.nbytes <= limit or rows.num_rows <= 1:
        return [rows]
    per_slice = max(1, rows.num_rows * limit // rows.nbytes)
    return [rows.slice(i, per_slice) for i in range(0, rows.num_rows, per_slice)]


def _split(view: memoryview, start: int, end: int, depth: int, limit: int) -> Iterator[Pieces]:
    """Encodings of the message at ``view[start:end]``, each with every field but the cut one
    and a share of the cut one's entries, of at most ``limit`` bytes where possible."""
    number = _TRACE_PATH[depth]
    head: list[Buffer] = []
    entries: list[tuple[int, int, int]] = []  # (field start, value start, end)
    for field_number, wire_type, field_start, value_start, field_end in _fields(view, start, end):
        if field_number == number and wire_type == _LEN:
            entries.append((field_start, value_start, field_end))
        else:
            head.append(view[field_start:field_end])
    head_size = sum(len(b) for b in head)
    piece: list[Buffer] = list(head)
    size, count, made = head_size, 0, 0
    for field_start, value_start, field_end in entries:
        n = field_end - field_start
        # cut an entry too large on its own, unless the fields every piece repeats are large
        if head_size + n > limit and depth + 1 < len(_TRACE_PATH) and head_size <= limit // 4:
            if count:
                yield piece
                made += 1
                piece, size, count = list(head), head_size, 0
            for sub in _split(view, value_start, field_end, depth + 1, limit - head_size - 16):
                length = sum(len(b) for b in sub)
                yield [*head, _tag(number) + _varint(length), *sub]
                made += 1
            continue
        if count and size + n > limit:
            yield piece
            made += 1
            piece, size, count = list(head), head_size, 0
        piece.append(view[field_start:field_end])
        size += n
        count += 1
    if count or not made:
        yield piece


def _fields(view: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
    """(field number, wire type, field start, value start, field end) of each field."""
    pos = start
    while pos < end:
        field_start = pos
        key, pos = _read_varint(view, pos, end)
        wire_type = key & 7
        if wire_type == 0:
            _, pos = _read_varint(view, pos, end)
            value_start = field_start
        elif wire_type == 1:
            value_start, pos = pos, pos + 8
        elif wire_type == 5:
            value_start, pos = pos, pos + 4
        elif wire_type == _LEN:
            length, value_start = _read_varint(view, pos, end)
            pos = value_start + length
        else:  # groups: never in OTLP
            raise _Malformed
        if pos > end:
            raise _Malformed
        yield key >> 3, wire_type, field_start, value_start, pos


def _read_varint(view: memoryview, pos: int, end: int) -> tuple[int, int]:
    try:
        value, after = read_varint(view, pos)  # type: ignore[arg-type]  # any buffer
    except (ValueError, IndexError):
        raise _Malformed from None
    if after > end:
        raise _Malformed
    return value, after


def _tag(number: int) -> bytes:
    return _varint(number << 3 | _LEN)
