"""Attribute values as text plus a one-letter type code: lossless, and readable from SQL.

A map column holds each value as text (``attributes['gen_ai.request.temperature']`` is
``'0.7'``, castable in SQL); its sibling ``*_types`` string holds one code per map entry, in
entry order, and is null when every entry is a string — the common case costs nothing.

======  ==========================================================  ======================
code    OTLP AnyValue                                               text
======  ==========================================================  ======================
``s``   string_value                                                as is
``b``   bool_value                                                  ``true`` / ``false``
``i``   int_value                                                   decimal
``d``   double_value                                                shortest repr; ``NaN``,
                                                                    ``Infinity``, ``-Infinity``
``y``   bytes_value                                                 base64
``a``   array_value of plain values                                 JSON array
``m``   kvlist_value of plain values, unique keys                   JSON object
``j``   any other array / kvlist (bytes, empty values, NaN inside)  OTLP/JSON AnyValue
``n``   no value set                                                empty string
======  ==========================================================  ======================

"Plain" means strings, bools, ints, finite doubles and nested plain arrays/kvlists: JSON keeps
their types apart (``1`` vs ``1.0``). Everything else falls back to the OTLP/JSON form, so no
value is ever lost.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    KeyValue,
    KeyValueList,
)

STRING, BOOL, INT, DOUBLE, BYTES, ARRAY, KVLIST, OTLP_JSON, EMPTY = "sbidyamjn"


class _NotPlain(Exception):
    pass


def _double_text(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return repr(x)


def _plain(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        x = value.double_value
        if not math.isfinite(x):
            raise _NotPlain
        return x
    if kind == "array_value":
        return [_plain(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        out: dict[str, Any] = {}
        for kv in value.kvlist_value.values:
            if kv.key in out:
                raise _NotPlain
            out[kv.key] = _plain(kv.value)
        return out
    raise _NotPlain  # bytes or empty


def _otlp_json(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return {"stringValue": value.string_value}
    if kind == "bool_value":
        return {"boolValue": value.bool_value}
    if kind == "int_value":
        return {"intValue": str(value.int_value)}
    if kind == "double_value":
        x = value.double_value
        return {"doubleValue": x if math.isfinite(x) else _double_text(x)}
    if kind == "bytes_value":
        return {"bytesValue": base64.b64encode(value.bytes_value).decode("ascii")}
    if kind == "array_value":
        return {"arrayValue": {"values": [_otlp_json(v) for v in value.array_value.values]}}
    if kind == "kvlist_value":
        return {
            "kvlistValue": {
                "values": [
                    {"key": kv.key, "value": _otlp_json(kv.value)}
                    for kv in value.kvlist_value.values
                ]
            }
        }
    return {}


def _compact_json(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode_value(value: AnyValue) -> tuple[str, str]:
    """(text, code) of one AnyValue. Reference implementation; ingest's hot path matches it."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value, STRING
    if kind == "int_value":
        return str(value.int_value), INT
    if kind == "double_value":
        return _double_text(value.double_value), DOUBLE
    if kind == "bool_value":
        return ("true" if value.bool_value else "false"), BOOL
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii"), BYTES
    if kind in ("array_value", "kvlist_value"):
        try:
            return _compact_json(_plain(value)), ARRAY if kind == "array_value" else KVLIST
        except _NotPlain:
            return _compact_json(_otlp_json(value)), OTLP_JSON
    return "", EMPTY


def encode_attributes(
    kvs: Iterable[KeyValue], skip: frozenset[str] = frozenset()
) -> tuple[list[tuple[str, str]], str | None, int]:
    """Map entries, type codes (None when all strings) and the number of duplicate keys dropped.

    The first occurrence of a key wins; later duplicates are counted so that
    ``dropped_attributes_count`` stays honest.
    """
    entries: list[tuple[str, str]] = []
    codes: list[str] = []
    seen: set[str] = set()
    duplicates = 0
    for kv in kvs:
        key = kv.key
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        if key in skip:
            continue
        text, code = encode_value(kv.value)
        entries.append((key, text))
        codes.append(code)
    joined = "".join(codes)
    return entries, (None if joined.count(STRING) == len(joined) else joined), duplicates


# ----------------------------------------------------------------------------- decoding


def _from_plain(obj: Any) -> AnyValue:
    if isinstance(obj, bool):
        return AnyValue(bool_value=obj)
    if isinstance(obj, int):
        return AnyValue(int_value=obj)
    if isinstance(obj, float):
        return AnyValue(double_value=obj)
    if isinstance(obj, str):
        return AnyValue(string_value=obj)
    if isinstance(obj, list):
        return AnyValue(array_value=ArrayValue(values=[_from_plain(v) for v in obj]))
    if isinstance(obj, dict):
        return AnyValue(
            kvlist_value=KeyValueList(
                values=[KeyValue(key=k, value=_from_plain(v)) for k, v in obj.items()]
            )
        )
    raise ValueError(f"not a plain JSON value: {obj!r}")


def _from_otlp_json(obj: Mapping[str, Any]) -> AnyValue:
    if "stringValue" in obj:
        return AnyValue(string_value=obj["stringValue"])
    if "boolValue" in obj:
        return AnyValue(bool_value=obj["boolValue"])
    if "intValue" in obj:
        return AnyValue(int_value=int(obj["intValue"]))
    if "doubleValue" in obj:
        return AnyValue(double_value=float(obj["doubleValue"]))
    if "bytesValue" in obj:
        return AnyValue(bytes_value=base64.b64decode(obj["bytesValue"]))
    if "arrayValue" in obj:
        values = obj["arrayValue"].get("values", [])
        return AnyValue(array_value=ArrayValue(values=[_from_otlp_json(v) for v in values]))
    if "kvlistValue" in obj:
        values = obj["kvlistValue"].get("values", [])
        return AnyValue(
            kvlist_value=KeyValueList(
                values=[KeyValue(key=v["key"], value=_from_otlp_json(v["value"])) for v in values]
            )
        )
    return AnyValue()


def decode_value(text: str, code: str) -> AnyValue:
    """Inverse of ``encode_value``."""
    if code == STRING:
        return AnyValue(string_value=text)
    if code == INT:
        return AnyValue(int_value=int(text))
    if code == DOUBLE:
        return AnyValue(double_value=float(text.replace("Infinity", "inf")))
    if code == BOOL:
        return AnyValue(bool_value=text == "true")
    if code == BYTES:
        return AnyValue(bytes_value=base64.b64decode(text))
    if code in (ARRAY, KVLIST):
        return _from_plain(json.loads(text))
    if code == OTLP_JSON:
        return _from_otlp_json(json.loads(text))
    if code == EMPTY:
        return AnyValue()
    raise ValueError(f"unknown attribute type code {code!r}")


def decode_attributes(entries: Iterable[tuple[str, str]], codes: str | None) -> list[KeyValue]:
    """Inverse of ``encode_attributes`` (minus the dropped duplicates)."""
    pairs = list(entries)
    codes = codes if codes is not None else STRING * len(pairs)
    if len(codes) != len(pairs):
        raise ValueError(f"{len(pairs)} attributes but {len(codes)} type codes")
    return [
        KeyValue(key=k, value=decode_value(t, c)) for (k, t), c in zip(pairs, codes, strict=True)
    ]


def python_value(text: str, code: str) -> Any:
    """The attribute as a Python value, for JSON answers (span trees in the API)."""
    if code == STRING:
        return text
    if code == INT:
        return int(text)
    if code == DOUBLE:
        x = float(text.replace("Infinity", "inf"))
        return x if math.isfinite(x) else text
    if code == BOOL:
        return text == "true"
    if code in (ARRAY, KVLIST, OTLP_JSON):
        return json.loads(text)
    return text
