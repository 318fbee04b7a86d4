"""Decode a large OTLP/JSON body one span (or log record) at a time.

``json.loads`` of a 64 MiB OTLP/JSON body builds ~500 MiB of dicts and strings before the first
byte of protobuf is encoded (measured: the server grew by 700 MiB for one such request, more
than the whole process tree may take). Here only the containers are walked by hand — the
request, its ``resourceSpans``, their ``scopeSpans``, their ``spans`` (``resourceLogs`` /
``scopeLogs`` / ``logRecords`` for logs) — and each span is decoded by the json module's own
scanner at its position, encoded to protobuf by ``ingest.receive.otlp_json``'s encoder and dropped,
so at most one span's dicts exist at a time. Every other member is decoded whole and encoded as
``otlp_json`` does. The result is the same message, field for field.

Anything the walk does not expect (a container that is not an array, invalid JSON, a body that
is not UTF-8) falls back to ``otlp_json``'s whole-body parser, so malformed input gets the very
same answer as before. Bodies up to ``STREAM_ABOVE`` always take that parser.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TypeVar, cast

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ingest.errors import BadRequest
from ingest.receive.otlp_json import (
    _BadValue,
    _encode_message,
    _Field,
    _schema,
    _varint,
    parse_logs_json,
    parse_traces_json,
)

M = TypeVar("M", bound=Message)

#: Bodies larger than this are walked; smaller ones go through ``json.loads`` whole.
STREAM_ABOVE = 1 << 20

#: The repeated field walked at each level, by JSON name, per request type.
_CONTAINERS: dict[str, tuple[str, ...]] = {
    ExportTraceServiceRequest.DESCRIPTOR.full_name: ("resourceSpans", "scopeSpans", "spans"),
    ExportLogsServiceRequest.DESCRIPTOR.full_name: ("resourceLogs", "scopeLogs", "logRecords"),
}
_WS = re.compile(r"[ \t\n\r]*")
#: (text, position) -> (the JSON value there, the position after it): the json module's scanner
_SCAN: Callable[[str, int], tuple[object, int]] = json.JSONDecoder().raw_decode
_SCAN_STRING: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]


class _Fallback(Exception):
    """The walk met something it leaves to the whole-body parser."""


def decode_traces_json(body: bytes) -> ExportTraceServiceRequest:
    """An OTLP/JSON traces body, walked span by span when it is large."""
    if len(body) <= STREAM_ABOVE:
        return parse_traces_json(body)
    return _decode(body, ExportTraceServiceRequest, parse_traces_json)


def decode_logs_json(body: bytes) -> ExportLogsServiceRequest:
    """An OTLP/JSON logs body, walked record by record when it is large."""
    if len(body) <= STREAM_ABOVE:
        return parse_logs_json(body)
    return _decode(body, ExportLogsServiceRequest, parse_logs_json)


def _decode(body: bytes, message_type: type[M], whole: Callable[[bytes], M]) -> M:
    descriptor = cast(Descriptor, message_type.DESCRIPTOR)
    try:
        text = body.decode("utf-8")
        pieces, end = _walk_message(text, 0, descriptor, _CONTAINERS[descriptor.full_name], 0)
        if _skip(text, end) != len(text):
            raise _Fallback  # trailing data: let json.loads name it
    except (_Fallback, UnicodeDecodeError, ValueError, StopIteration, IndexError):
        return whole(body)
    except _BadValue as exc:
        where = "".join(reversed(exc.path)).lstrip(".")
        raise BadRequest(f"OTLP/JSON {where}: {exc.problem}") from None
    except RecursionError:
        raise BadRequest("OTLP/JSON body is nested too deeply") from None
    del text
    wire = b"".join(pieces)
    del pieces
    try:
        return message_type.FromString(wire)
    except (DecodeError, RecursionError):
        raise BadRequest("OTLP/JSON body is nested too deeply or malformed") from None


def _skip(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    assert match is not None  # the pattern matches the empty string
    return match.end()


def _expect(text: str, pos: int, char: str) -> int:
    if text[pos : pos + 1] != char:
        raise _Fallback
    return pos + 1


def _walk_message(
    text: str, pos: int, descriptor: Descriptor, path: tuple[str, ...], depth: int
) -> tuple[list[bytes], int]:
    """Wire pieces of the object at ``pos`` (a message of ``descriptor``) and the position after
    it. The container field of this level (``path[depth]``) is walked entry by entry; the rest
    is decoded whole and encoded by ``otlp_json``, so unknown keys, nulls and errors behave the
    same. A key given twice counts once, the last time, as with ``json.loads``."""
    schema = _schema(descriptor)
    rest: dict[str, object] = {}
    walked: dict[str, list[bytes]] = {}
    pos = _skip(text, _expect(text, _skip(text, pos), "{"))
    if text[pos : pos + 1] == "}":
        return [], pos + 1
    while True:
        key, pos = _SCAN_STRING(text, _expect(text, pos, '"'))
        pos = _skip(text, _expect(text, _skip(text, pos), ":"))
        field = schema.get(key)
        rest.pop(key, None)
        walked.pop(key, None)
        if field is not None and field.json_name == path[depth] and text[pos : pos + 1] == "[":
            child = descriptor.fields_by_camelcase_name[field.json_name].message_type
            assert child is not None
            walked[key], pos = _walk_entries(text, pos, field, child, path=path, depth=depth)
        else:
            rest[key], pos = _SCAN(text, pos)
        pos = _skip(text, pos)
        if text[pos : pos + 1] != ",":
            break
        pos = _skip(text, pos + 1)
    pos = _expect(text, pos, "}")
    pieces = [_encode_message(schema, rest)]
    for entries in walked.values():
        pieces.extend(entries)
    return pieces, pos


def _walk_entries(
    text: str, pos: int, field: _Field, child: Descriptor, *, path: tuple[str, ...], depth: int
) -> tuple[list[bytes], int]:
    """The tagged wire bytes of every entry (a ``child``) of the array at ``pos``, and the
    position after the array."""
    out: list[bytes] = []
    leaf = depth + 1 == len(path)
    pos = _skip(text, pos + 1)
    if text[pos : pos + 1] == "]":
        return out, pos + 1
    index = 0
    while True:
        try:
            if leaf:  # one span: decoded, encoded, dropped
                item, pos = _SCAN(text, pos)
                if item is not None:
                    out.append(field.tag)
                    out.append(field.encode(item))
            elif text.startswith("null", pos):
                pos += 4
            else:
                pieces, pos = _walk_message(text, pos, child, path, depth + 1)
                out.append(field.tag)
                out.append(_varint(sum(len(p) for p in pieces)))
                out.extend(pieces)
        except _BadValue as exc:
            exc.path.append(f".{field.json_name}[{index}]")
            raise
        index += 1
        pos = _skip(text, pos)
        if text[pos : pos + 1] != ",":
            return out, _expect(text, pos, "]")
        pos = _skip(text, pos + 1)
