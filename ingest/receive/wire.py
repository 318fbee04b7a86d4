"""Reading OTLP trace requests fast: wire-compatible "shadow" messages and KeyValue decoding.

Walking attributes through upb's Python objects costs ~0.8 us per attribute (a wrapper per
KeyValue, another per AnyValue, WhichOneof, a str per field), which alone caps normalization
near 80k spans/s. The shadow messages below parse the same bytes as the OTLP messages, but
declare the span's ``attributes`` (and its status, a resource or a scope) as raw ``bytes``: upb
hands them over as a list of ``bytes`` in one C call. Each KeyValue's bytes are then decoded
once and memoized (most attribute key/value pairs repeat across spans), and a miss is decoded by
a small parser for the canonical encodings of strings, ints, doubles and bools, falling back to
upb and ``schemas.attributes.encode_value`` for everything else. Results equal ``encode_value``
exactly (tests compare them over every AnyValue kind).
"""

from __future__ import annotations

import math
import struct
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from schemas.attributes import encode_value

_F = descriptor_pb2.FieldDescriptorProto
_OPT = _F.LABEL_OPTIONAL
_REP = _F.LABEL_REPEATED
_PKG = "tasklake.wire"

# (number, name, type, label, message type) per field; numbers and wire types equal OTLP's.
_MESSAGES: dict[str, list[tuple[int, str, int, int, str | None]]] = {
    "Event": [
        (1, "time_unix_nano", _F.TYPE_FIXED64, _OPT, None),
        (2, "name", _F.TYPE_STRING, _OPT, None),
        (3, "attributes", _F.TYPE_BYTES, _REP, None),
        (4, "dropped_attributes_count", _F.TYPE_UINT32, _OPT, None),
    ],
    "Link": [
        (1, "trace_id", _F.TYPE_BYTES, _OPT, None),
        (2, "span_id", _F.TYPE_BYTES, _OPT, None),
        (3, "trace_state", _F.TYPE_STRING, _OPT, None),
        (4, "attributes", _F.TYPE_BYTES, _REP, None),
        (5, "dropped_attributes_count", _F.TYPE_UINT32, _OPT, None),
        (6, "flags", _F.TYPE_FIXED32, _OPT, None),
    ],
    "Span": [
        (1, "trace_id", _F.TYPE_BYTES, _OPT, None),
        (2, "span_id", _F.TYPE_BYTES, _OPT, None),
        (3, "trace_state", _F.TYPE_STRING, _OPT, None),
        (4, "parent_span_id", _F.TYPE_BYTES, _OPT, None),
        (5, "name", _F.TYPE_STRING, _OPT, None),
        (6, "kind", _F.TYPE_INT32, _OPT, None),
        (7, "start_time_unix_nano", _F.TYPE_FIXED64, _OPT, None),
        (8, "end_time_unix_nano", _F.TYPE_FIXED64, _OPT, None),
        (9, "attributes", _F.TYPE_BYTES, _REP, None),
        (10, "dropped_attributes_count", _F.TYPE_UINT32, _OPT, None),
        (11, "events", _F.TYPE_MESSAGE, _REP, "Event"),
        (12, "dropped_events_count", _F.TYPE_UINT32, _OPT, None),
        (13, "links", _F.TYPE_MESSAGE, _REP, "Link"),
        (14, "dropped_links_count", _F.TYPE_UINT32, _OPT, None),
        (15, "status", _F.TYPE_BYTES, _OPT, None),
        (16, "flags", _F.TYPE_FIXED32, _OPT, None),
    ],
    "ScopeSpans": [
        (1, "scope", _F.TYPE_BYTES, _OPT, None),
        (2, "spans", _F.TYPE_MESSAGE, _REP, "Span"),
        (3, "schema_url", _F.TYPE_STRING, _OPT, None),
    ],
    "ResourceSpans": [
        (1, "resource", _F.TYPE_BYTES, _OPT, None),
        (2, "scope_spans", _F.TYPE_MESSAGE, _REP, "ScopeSpans"),
        (3, "schema_url", _F.TYPE_STRING, _OPT, None),
    ],
    "Request": [(1, "resource_spans", _F.TYPE_MESSAGE, _REP, "ResourceSpans")],
}


def _build() -> descriptor_pool.DescriptorPool:
    proto = descriptor_pb2.FileDescriptorProto(
        name="tasklake_wire.proto", package=_PKG, syntax="proto3"
    )
    for name, fields in _MESSAGES.items():
        msg = proto.message_type.add(name=name)
        for number, fname, ftype, label, tname in fields:
            field = msg.field.add(name=fname, number=number, type=ftype, label=label)
            if tname:
                field.type_name = f".{_PKG}.{tname}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return pool


_POOL = _build()
#: Parses ``ExportTraceServiceRequest`` bytes; resource, scope and attributes stay raw bytes.
ShadowRequest: type[Message] = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName(f"{_PKG}.Request")
)
#: Parses one ``Span`` the same way (the native fast path hands over spans with events/links).
ShadowSpan: type[Message] = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName(f"{_PKG}.Span")
)

_DOUBLE = struct.Struct("<d")
_TWO_63 = 1 << 63
_TWO_64 = 1 << 64

#: (key, text, type code, python value) of one KeyValue. The python value is the str, int,
#: float or bool sent (None for arrays, kvlists, bytes and empty values).
Decoded = tuple[str, str, str, Any]


def double_text(x: float) -> str:
    """Text of a double exactly as ``schemas.attributes`` writes it."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return repr(x)


def _varint(b: bytes, i: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        c = b[i]
        i += 1
        result |= (c & 0x7F) << shift
        if c < 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


#: (text, type code, python value) of a KeyValue's value.
Value = tuple[str, str, Any]


def key_end(b: bytes) -> int:
    """Where the key of a canonical serialized KeyValue ends (0: not canonical, long key)."""
    if len(b) > 1 and b[0] == 0x0A and b[1] < 0x80:
        return b[1] + 2
    return 0


def decode_value(b: bytes, kend: int) -> Value | None:
    """The value field after a key ending at ``kend``, for a plain string/int/double/bool.

    None for other kinds or non-canonical layouts (the caller then lets upb decide); may raise
    IndexError/ValueError/UnicodeDecodeError on bytes it does not understand.
    """
    n = len(b)
    if b[kend] != 0x12:
        return None
    vlen = b[kend + 1]
    j = kend + 2
    if vlen > 0x7F:
        vlen, j = _varint(b, kend + 1)
    if j + vlen != n or vlen < 2:
        return None
    tag = b[j]
    if tag == 0x0A:  # string_value
        slen = b[j + 1]
        k = j + 2
        if slen > 0x7F:
            slen, k = _varint(b, j + 1)
        if k + slen != n:
            return None
        text = b[k:n].decode("utf-8")
        return text, "s", text
    if tag == 0x18:  # int_value
        if vlen == 2:
            value = b[j + 1]
            if value > 0x7F:
                return None
        elif vlen == 3:  # the usual token count: two varint bytes
            low = b[j + 1]
            high = b[j + 2]
            if low < 0x80 or high > 0x7F:
                return None
            value = (low & 0x7F) | (high << 7)
        else:
            value, k = _varint(b, j + 1)
            if k != n:
                return None
            if value >= _TWO_63:
                value -= _TWO_64
        return str(value), "i", value
    if tag == 0x21 and vlen == 9:  # double_value
        (x,) = _DOUBLE.unpack_from(b, j + 1)
        return double_text(x), "d", x
    if tag == 0x10 and vlen == 2 and b[j + 1] < 2:  # bool_value
        flag = b[j + 1] == 1
        return ("true" if flag else "false"), "b", flag
    return None


def _fast(b: bytes) -> Decoded | None:
    kend = key_end(b)
    if not kend:
        return None
    value = decode_value(b, kend)
    if value is None:
        return None
    return b[2:kend].decode("utf-8"), *value


_PLAIN_KINDS = {"string_value": 0, "int_value": 0, "double_value": 0, "bool_value": 0}


def decode_keyvalue(b: bytes) -> Decoded:
    """One serialized KeyValue -> (key, text, code, python value)."""
    try:
        fast = _fast(b)
    except (IndexError, ValueError, UnicodeDecodeError):
        fast = None
    if fast is not None:
        return fast
    kv = KeyValue.FromString(b)
    value = kv.value
    text, code = encode_value(value)
    kind = value.WhichOneof("value")
    py = getattr(value, kind) if kind in _PLAIN_KINDS else None
    return kv.key, text, code, py
