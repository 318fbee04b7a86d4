"""Arrow arrays from flat Python lists, the cheap way.

``pa.array`` converts Python ints one object at a time (~50 ns each); the ``array`` module
packs them in C, and ``pa.Array.from_buffers`` wraps the result without a copy. String columns
still go through ``pa.array`` (its ASCII path is a memcpy per value).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from schemas.spans import ATTR_MAP, USD

_MAX_INT64: Final = (1 << 63) - 1
#: Largest uint32: a dropped count (as sent, plus the duplicate keys we dropped) saturates here.
MAX_UINT32: Final = (1 << 32) - 1


def _packed(typ: pa.DataType, code: str, values: Sequence[int]) -> pa.Array:
    data = array(code, values)
    return pa.Array.from_buffers(typ, len(data), [None, pa.py_buffer(data)])


def int32_array(values: Sequence[int]) -> pa.Array:
    """int32 array of values that fit."""
    return _packed(pa.int32(), "i", values)


def uint32_array(values: Sequence[int]) -> pa.Array:
    """uint32 array; values past the uint32 range saturate at ``MAX_UINT32``.

    OTLP dropped counts are uint32, but we add the duplicate keys we dropped to them: a count
    sent as 4294967295 plus one duplicate must stay a (saturated) count, never overflow. This
    is the one place the Python path saturates; the native one does it in ``_fastpath.c``.
    """
    try:
        return _packed(pa.uint32(), "I", values)
    except OverflowError:
        return _packed(pa.uint32(), "I", [min(v, MAX_UINT32) for v in values])


def int64_array(values: Sequence[int]) -> pa.Array:
    """int64 array; values beyond the int64 range are clamped to it."""
    try:
        return _packed(pa.int64(), "q", values)
    except OverflowError:
        return _packed(pa.int64(), "q", [max(min(v, _MAX_INT64), -_MAX_INT64 - 1) for v in values])


def optional_uint32(values: Sequence[int]) -> pa.Array:
    """uint32 array where 0 means "not set" (span and link flags)."""
    if 0 in values:
        return pa.array([v or None for v in values], pa.uint32())
    return uint32_array(values)


def map_of(offsets: Sequence[int], keys: pa.Array, values: pa.Array) -> pa.Array:
    """map<string, string> rows from flat offsets (n + 1 of them) and key/value arrays."""
    return pa.MapArray.from_arrays(int32_array(offsets), keys, values, type=ATTR_MAP)


def map_array(offsets: Sequence[int], keys: Sequence[str], values: Sequence[str]) -> pa.Array:
    """map<string, string> rows from flat offsets (n + 1 of them), keys and values."""
    return map_of(offsets, pa.array(keys, pa.string()), pa.array(values, pa.string()))


def usd_array(n: int, pico: Sequence[tuple[int, int]]) -> pa.Array:
    """``decimal128(18, 12)`` of ``n`` rows, null but for (row, integer 1e-12 USD) pairs.

    The unscaled decimal is the integer itself: 16 little-endian bytes, high word 0 for the
    non-negative values below 10^18 the pricer produces.
    """
    words = array("q", bytes(16 * n))
    valid = bytearray((n + 7) // 8)
    for row, value in pico:
        words[2 * row] = value
        valid[row >> 3] |= 1 << (row & 7)
    return pa.Array.from_buffers(
        USD, n, [pa.py_buffer(valid), pa.py_buffer(words)], null_count=n - len(pico)
    )


def timestamps(values: Sequence[int], typ: pa.DataType) -> pa.Array:
    """Integer epoch values as a timestamp array of ``typ`` (clamped to the int64 range)."""
    return int64_array(values).view(typ)


def hex_ids(ids: list[bytes]) -> pa.Array:
    """Lowercase hex strings of raw ids; empty ids are null."""
    return pa.array([i.hex() if i else None for i in ids], pa.string())


def small_ints(values: Sequence[int]) -> pa.Array:
    """int8 column (span kind, status code); values that do not fit are null."""
    if not values or (min(values) >= -128 and max(values) <= 127):
        return _packed(pa.int8(), "b", values)
    return pa.array([v if -128 <= v <= 127 else None for v in values], pa.int8())


def durations(start: Sequence[int], end: Sequence[int]) -> pa.Array:
    """end - start in ns (the normalizer has already raised an end before its start)."""
    return pc.subtract(int64_array(end), int64_array(start))


def block_index(counts: Sequence[int]) -> pa.Array:
    """int32 index repeating block ``i`` ``counts[i]`` times (for ``take``)."""
    data = array("i")
    for block, count in enumerate(counts):
        data.extend(array("i", (block,)) * count)
    return pa.Array.from_buffers(pa.int32(), len(data), [None, pa.py_buffer(data)])


_EMPTY_LISTS: dict[tuple[pa.DataType, int], pa.Array] = {}


def empty_lists(typ: pa.ListType, n: int) -> pa.Array:
    """``n`` empty lists of ``typ`` (immutable, so one array serves every batch of n rows)."""
    key = (typ, n)
    found = _EMPTY_LISTS.get(key)
    if found is None:
        values = pa.array([], typ.value_type)
        found = pa.ListArray.from_arrays(int32_array([0] * (n + 1)), values, type=typ)
        if len(_EMPTY_LISTS) > 64:
            _EMPTY_LISTS.clear()
        _EMPTY_LISTS[key] = found
    return found
