"""OTLP/JSON <-> protobuf messages, with the OTLP deviations from proto3 JSON.

Decoding does not use ``google.protobuf.json_format.Parse``, for two reasons. It gets ids
silently wrong: trace and span ids are hex in OTLP/JSON (any case), not base64, and 32 hex
digits are also valid base64, so it stores 24 wrong bytes without complaint. And it is slow
(~370 us per agent span, 100x the protobuf path), while JSON is what browser and Node.js
exporters send by default. So the parsed JSON is encoded straight to protobuf wire bytes, driven
by the message descriptors, and upb parses those: ids (``trace_id``, ``span_id``,
``parent_span_id`` bytes fields) as hex, other bytes as base64, enums as integers or names,
int64 as string or number, doubles as numbers or ``"NaN"``/``"Infinity"``, unknown fields,
unknown enum names and nulls ignored, camelCase or proto field names. An error names the path
of the bad value.

Whatever a body holds, decoding either returns a message or raises ``BadRequest`` (a permanent
400 / INVALID_ARGUMENT with the reason): bad input must never look like a transient failure
(``ingest.receive.status`` answers 503 to anything else), or exporters would retry it forever.

Encoding (``to_otlp_json``) uses ``json_format`` and turns ids back into lowercase hex: it
serves response bodies and test fixtures, not the hot path.
"""

from __future__ import annotations

import base64
import json
import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2 as _error_details  # noqa: F401  (Any types in Status)
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from ingest.errors import BadRequest

M = TypeVar("M", bound=Message)

_KEY_VALUE_DESCRIPTOR = KeyValue.DESCRIPTOR
_ID_FIELDS = frozenset({"trace_id", "span_id", "parent_span_id"})
_ID_JSON_KEYS = frozenset({"traceId", "spanId", "parentSpanId"})
_ENUM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_ENUM: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def parse_traces_json(body: bytes) -> ExportTraceServiceRequest:
    """An OTLP/JSON traces body; an empty body is an empty request."""
    return _parse(body, ExportTraceServiceRequest)


def parse_logs_json(body: bytes) -> ExportLogsServiceRequest:
    """An OTLP/JSON logs body; an empty body is an empty request."""
    return _parse(body, ExportLogsServiceRequest)


def to_otlp_json(message: Message) -> bytes:
    """OTLP/JSON of any message: camelCase names, integer enums, hex ids, no default values."""
    data = json_format.MessageToDict(message, use_integers_for_enums=True)
    _ids_to_hex(data)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


# ----------------------------------------------------------------------------- parsing


def _parse(body: bytes, message_type: type[M]) -> M:
    if not body.strip():
        return message_type()
    try:
        data = json.loads(body)
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"OTLP/JSON body is not valid UTF-8: {exc.reason} at byte {exc.start}"
        ) from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"OTLP/JSON body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise BadRequest("OTLP/JSON body is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise BadRequest(f"OTLP/JSON body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest(f"OTLP/JSON body must be an object, got {_json_type(data)}")
    try:
        wire = _encode_message(_SCHEMAS[message_type.DESCRIPTOR.full_name], data)
    except _BadValue as exc:
        where = "".join(reversed(exc.path)).lstrip(".")
        raise BadRequest(f"OTLP/JSON {where}: {exc.problem}") from None
    except RecursionError:
        raise BadRequest("OTLP/JSON body is nested too deeply") from None
    try:
        return message_type.FromString(wire)
    except (DecodeError, RecursionError):
        raise BadRequest("OTLP/JSON body is nested too deeply or malformed") from None


class _BadValue(Exception):
    """A value that cannot be encoded; ``path`` grows (innermost first) as it propagates."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path: list[str] = []


@dataclass(slots=True)
class _Field:
    json_name: str
    tag: bytes
    repeated: bool
    encode: Callable[[Any], bytes]  # the value's bytes after the tag


#: Per message type: every accepted key (JSON name and proto name) -> how to encode it.
#: Built completely at import (see the end of the module), so threads never see a partial one.
_Schema = dict[str, _Field]
_SCHEMAS: dict[str, _Schema] = {}


def _schema(descriptor: Descriptor) -> _Schema:
    schema = _SCHEMAS.get(descriptor.full_name)
    if schema is not None:
        return schema
    schema = _SCHEMAS[descriptor.full_name] = {}  # registered first: message types recurse
    for field in descriptor.fields:
        wire_type, encode = _encoder(field)
        entry = _Field(
            json_name=field.json_name,
            tag=_varint((field.number << 3) | wire_type),
            repeated=field.is_repeated,
            encode=encode,
        )
        schema[field.json_name] = schema[field.name] = entry
    return schema


def _encode_message(schema: _Schema, obj: object) -> bytes:
    if not isinstance(obj, dict):
        raise _BadValue(f"expected an object, got {_json_type(obj)}")
    parts: list[bytes] = []
    for key, value in obj.items():
        field = schema.get(key)
        if field is None or value is None:
            continue  # unknown fields and nulls are ignored, as proto3 JSON says
        if field.repeated:
            if not isinstance(value, list):
                exc = _BadValue(f"expected a list, got {_json_type(value)}")
                exc.path.append("." + field.json_name)
                raise exc
            index = 0
            try:
                for index, item in enumerate(value):  # noqa: B007 (index is read on error)
                    if item is not None:
                        parts.append(field.tag)
                        parts.append(field.encode(item))
            except _BadValue as exc:
                exc.path.append(f".{field.json_name}[{index}]")
                raise
        else:
            try:
                encoded = field.encode(value)
            except _BadValue as exc:
                exc.path.append("." + field.json_name)
                raise
            parts.append(field.tag)
            parts.append(encoded)
    return b"".join(parts)


def _encoder(field: FieldDescriptor) -> tuple[int, Callable[[Any], bytes]]:
    """(wire type, value encoder) of one field."""
    t = field.type
    if t == FieldDescriptor.TYPE_MESSAGE:
        sub = field.message_type
        assert sub is not None
        if sub.full_name == _KEY_VALUE:
            return 2, _encode_key_value
        return 2, lambda value: _length_delimited(_encode_message(_schema(sub), value))
    if t == FieldDescriptor.TYPE_STRING:
        return 2, _encode_string
    if t == FieldDescriptor.TYPE_BYTES:
        return 2, _encode_hex_id if field.name in _ID_FIELDS else _encode_base64
    if t == FieldDescriptor.TYPE_BOOL:
        return 0, _encode_bool
    if t == FieldDescriptor.TYPE_DOUBLE:
        return 1, lambda value: struct.pack("<d", _float(value))
    if t == FieldDescriptor.TYPE_FLOAT:
        return 5, lambda value: struct.pack("<f", _float(value))
    low, high = _INT_RANGES[t]
    if t == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        names = {v.name: v.number for v in field.enum_type.values}
        return 0, lambda value: _varint(_enum(value, names) & 0xFFFFFFFFFFFFFFFF)
    if t in (FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64):
        fmt = "<Q" if t == FieldDescriptor.TYPE_FIXED64 else "<q"
        return 1, lambda value: struct.pack(fmt, _int(value, low, high))
    if t in (FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_SFIXED32):
        fmt = "<I" if t == FieldDescriptor.TYPE_FIXED32 else "<i"
        return 5, lambda value: struct.pack(fmt, _int(value, low, high))
    if t in (FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64):
        return 0, lambda value: _varint(_zigzag(_int(value, low, high)))
    # int32, int64, uint32, uint64: negative numbers are 64-bit two's complement varints
    return 0, lambda value: _varint(_int(value, low, high) & 0xFFFFFFFFFFFFFFFF)


_KEY_VALUE = "opentelemetry.proto.common.v1.KeyValue"
_KEY_TAG = b"\x0a"  # KeyValue.key = 1, length-delimited
_VALUE_TAG = b"\x12"  # KeyValue.value = 2, length-delimited
_STRING_VALUE_TAG = b"\x0a"  # AnyValue.string_value = 1
_INT_VALUE_TAG = b"\x18"  # AnyValue.int_value = 3, varint
_DOUBLE_VALUE_TAG = b"\x21"  # AnyValue.double_value = 4, fixed64
_INT64 = (-(2**63), 2**63 - 1)


def _encode_key_value(obj: object) -> bytes:
    """A KeyValue, most of every request: the common shapes (a string key and a string, int or
    double value) directly, anything else through the generic encoder."""
    if type(obj) is dict and len(obj) == 2:
        key = obj.get("key")
        value = obj.get("value")
        if type(key) is str and type(value) is dict and len(value) == 1:
            ((kind, scalar),) = value.items()
            inner: bytes | None = None
            try:
                if kind == "stringValue" and type(scalar) is str:
                    inner = _STRING_VALUE_TAG + _encode_string(scalar)
                elif kind == "intValue" and type(scalar) in (str, int):
                    inner = _INT_VALUE_TAG + _varint(_int(scalar, *_INT64) & 0xFFFFFFFFFFFFFFFF)
                elif kind == "doubleValue" and type(scalar) is float:
                    inner = _DOUBLE_VALUE_TAG + struct.pack("<d", scalar)
                if inner is not None:
                    body = _KEY_TAG + _encode_string(key) + _VALUE_TAG
                    body += _varint(len(inner)) + inner
                    return _varint(len(body)) + body
            except _BadValue:
                pass  # the generic encoder reports it with its full path
    return _length_delimited(_encode_message(_schema(_KEY_VALUE_DESCRIPTOR), obj))


_SMALL_VARINTS = [bytes((n,)) for n in range(128)]


def _varint(n: int) -> bytes:
    if n < 128:
        return _SMALL_VARINTS[n]
    out = bytearray()
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63) if n < 0 else n << 1


def _length_delimited(data: bytes) -> bytes:
    return _varint(len(data)) + data


def _encode_string(value: object) -> bytes:
    if not isinstance(value, str):
        raise _BadValue(f"expected a string, got {_json_type(value)}")
    try:
        return _length_delimited(value.encode())
    except UnicodeEncodeError:
        raise _BadValue("string is not valid Unicode (lone surrogate)") from None


def _encode_hex_id(value: object) -> bytes:
    if not isinstance(value, str):
        raise _BadValue(f"expected a hex string, got {_json_type(value)}")
    if not _HEX.fullmatch(value):
        raise _BadValue(f"not an even-length hex string: {value[:80]!r}")
    return _length_delimited(bytes.fromhex(value))


def _encode_base64(value: object) -> bytes:
    if not isinstance(value, str):
        raise _BadValue(f"expected a base64 string, got {_json_type(value)}")
    text = value.rstrip("=")
    altchars = b"-_" if ("-" in text or "_" in text) else None
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), altchars, validate=True)
    except ValueError:  # binascii.Error, or characters beyond ASCII
        raise _BadValue(f"not base64: {value[:80]!r}") from None
    return _length_delimited(data)


def _encode_bool(value: object) -> bytes:
    if not isinstance(value, bool):
        raise _BadValue(f"expected true or false, got {_json_type(value)}")
    return _SMALL_VARINTS[value]


def _int(value: object, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise _BadValue(f"expected an integer, got {_json_type(value)}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value)
        except ValueError:
            try:
                as_float = float(value)  # "1e9" is an integer in proto3 JSON
            except ValueError:
                raise _BadValue(f"expected an integer, got {value[:80]!r}") from None
            if not as_float.is_integer():
                raise _BadValue(f"expected an integer, got {value[:80]!r}") from None
            number = int(as_float)
    else:
        raise _BadValue(f"expected an integer, got {_json_type(value)}")
    if not low <= number <= high:
        raise _BadValue(f"integer {number} out of range [{low}, {high}]")
    return number


def _enum(value: object, names: dict[str, int]) -> int:
    if isinstance(value, str) and _ENUM_NAME.fullmatch(value):
        return names.get(value, 0)  # an unknown name is ignored like an unknown field
    return _int(value, -(2**31), 2**31 - 1)


def _float(value: object) -> float:
    if isinstance(value, bool):
        raise _BadValue(f"expected a number, got {_json_type(value)}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value)
        if special is not None:
            return special
        try:
            return float(value)
        except ValueError:
            pass
    raise _BadValue(f"expected a number, got {_json_type(value)}")


def _json_type(value: object) -> str:
    if isinstance(value, str):
        return f"the string {value[:80]!r}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value}"
    return "an array" if isinstance(value, list) else "an object"


for _request_type in (ExportTraceServiceRequest, ExportLogsServiceRequest):
    _schema(_request_type.DESCRIPTOR)


# ----------------------------------------------------------------------------- rendering


def _ids_to_hex(node: object) -> None:
    """Rewrite every id field of a MessageToDict tree from base64 to hex.

    Safe to do by key anywhere: attribute keys are values (``{"key": ..., "value": ...}``),
    never dict keys, so only message fields can be named ``traceId``/``spanId``/``parentSpanId``.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_JSON_KEYS and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            else:
                _ids_to_hex(value)
    elif isinstance(node, list):
        for item in node:
            _ids_to_hex(item)
