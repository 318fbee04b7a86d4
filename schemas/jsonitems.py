"""The JSON shapes shared by signals and cost entries: one object, a JSON array, or NDJSON.

A body is split into items first; each item is then validated on its own, so one bad item is
reported as ``{"index": i, "error": "..."}`` while the good ones are kept. Only a body that is
not items at all (empty, not JSON, a bare number) is refused as a whole (``BodyError``).

Numbers are parsed as ``Decimal`` (a dollar amount stays exact: ``0.1`` is one tenth), NaN and
Infinity are refused, and an object that names a field twice is refused rather than silently
keeping the last value.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar

from schemas.attributes import ARRAY, BOOL, DOUBLE, EMPTY, INT, KVLIST, STRING
from schemas.money import usd_amount

T = TypeVar("T")

NDJSON_TYPES = (
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/jsonlines",
)
MAX_ID_CHARS = 512
MAX_TEXT_CHARS = 8192


class BodyError(ValueError):
    """The request body as a whole is unusable (answer 400)."""


class ItemError(ValueError):
    """One item is invalid; the message names the field."""


@dataclass
class Parsed(Generic[T]):
    """Valid items (with their index in the body) and the errors of the others."""

    items: list[T] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"field '{key}' appears twice")
        out[key] = value
    return out


def loads(text: str) -> Any:
    return json.loads(
        text,
        parse_float=Decimal,
        parse_constant=_no_constants,
        object_pairs_hook=_unique_keys,
    )


def split_items(body: bytes, content_type: str | None = None) -> Iterator[tuple[int, Any, str]]:
    """Yield ``(index, value, error)`` per item; ``error`` is "" when the item decoded.

    A body that parses as one JSON document is an object or an array of items; otherwise, or
    when the content type says so, each non-blank line is an item (NDJSON).
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BodyError(f"body is not UTF-8: {exc}") from exc
    if not text.strip():
        raise BodyError("empty body: send a JSON object, a JSON array of objects, or NDJSON")
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime not in NDJSON_TYPES:
        try:
            doc = loads(text)
        except ValueError as exc:
            if len([ln for ln in text.splitlines() if ln.strip()]) < 2:
                raise BodyError(f"body is not valid JSON: {exc}") from exc
        else:
            if isinstance(doc, list):
                for i, value in enumerate(doc):
                    yield i, value, ""
                return
            if isinstance(doc, dict):
                yield 0, doc, ""
                return
            raise BodyError("expected a JSON object, a JSON array of objects, or NDJSON")
    index = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            yield index, loads(line), ""
        except ValueError as exc:
            yield index, None, f"invalid JSON: {exc}"
        index += 1


def parse_items(
    body: bytes, content_type: str | None, build: Callable[[Mapping[str, Any]], T]
) -> Parsed[T]:
    """Split ``body`` and ``build`` each item; an ``ItemError`` rejects that item only."""
    out: Parsed[T] = Parsed()
    for index, value, decode_error in split_items(body, content_type):
        error = decode_error
        if not error and not isinstance(value, dict):
            error = f"expected a JSON object, got {_json_type(value)}"
        if not error:
            try:
                out.items.append(build(value))
                out.indexes.append(index)
                continue
            except ItemError as exc:
                error = str(exc)
        out.rejected.append({"index": index, "error": error})
    return out


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


# ----------------------------------------------------------------------------- fields


def check_fields(item: Mapping[str, Any], known: Sequence[str]) -> None:
    unknown = sorted(set(item) - set(known))
    if unknown:
        raise ItemError(
            f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}"
            f" (known: {', '.join(known)})"
        )


def opt_text(item: Mapping[str, Any], key: str, limit: int = MAX_TEXT_CHARS) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ItemError(f"{key}: expected a string, got {_json_type(value)}")
    if not value.strip():
        raise ItemError(f"{key}: must not be empty")
    if len(value) > limit:
        raise ItemError(f"{key}: longer than {limit} characters")
    return value


def opt_id(item: Mapping[str, Any], key: str) -> str | None:
    return opt_text(item, key, MAX_ID_CHARS)


def choice(item: Mapping[str, Any], key: str, allowed: Sequence[str]) -> str:
    value = item.get(key)
    if value is None:
        raise ItemError(f"{key}: required, one of {', '.join(allowed)}")
    if not isinstance(value, str) or value.strip().lower() not in allowed:
        raise ItemError(f"{key}: expected one of {', '.join(allowed)}, got {value!r}")
    return value.strip().lower()


def opt_usd(item: Mapping[str, Any], key: str, *, required: bool = False) -> Decimal | None:
    """A dollar amount in the one range every amount shares (``schemas.money.usd_amount``)."""
    value = item.get(key)
    if value is None:
        if required:
            raise ItemError(f"{key}: required (a number of US dollars)")
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise ItemError(f"{key}: expected a number, got {_json_type(value)}")
    try:
        amount = Decimal(value) if not isinstance(value, Decimal) else value
    except InvalidOperation as exc:
        raise ItemError(f"{key}: expected a number, got {value!r}") from exc
    try:
        return usd_amount(amount)
    except ValueError as exc:
        raise ItemError(f"{key}: {exc}") from exc


def opt_number(item: Mapping[str, Any], key: str) -> float | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ItemError(f"{key}: expected a number, got {_json_type(value)}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ItemError(f"{key}: expected a finite, non-negative number")
    return number


# ----------------------------------------------------------------------------- time

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$"
)
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def rfc3339_ns(text: str, *, allow_date: bool = False) -> int:
    """Nanoseconds since the epoch of an RFC 3339 timestamp (with offset); keeps nanoseconds.

    With ``allow_date``, a plain ``YYYY-MM-DD`` means midnight UTC.
    """
    m = _RFC3339.match(text)
    if m is None:
        d = _DATE.match(text) if allow_date else None
        if d is None:
            want = "a date (2026-01-31) or " if allow_date else ""
            raise ValueError(f"expected {want}an RFC 3339 time like 2026-01-31T14:05:00Z")
        try:
            day = date(int(d.group(1)), int(d.group(2)), int(d.group(3)))
        except ValueError as exc:
            raise ValueError(f"not a date: {exc}") from exc
        ns = (day - _EPOCH.date()).days * 86_400 * 10**9
        if not 0 <= ns < 2**63:
            raise ValueError("out of range (1970-01-01 .. 2262-04-11)")
        return ns
    year, month, day_, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    frac = (m.group(7) or "").ljust(9, "0")
    zone = m.group(8)
    offset = 0
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        hh, mm = int(zone[1:3]), int(zone[4:6])
        if hh > 23 or mm > 59:
            raise ValueError(f"invalid UTC offset {zone}")
        offset = sign * (hh * 3600 + mm * 60)
    try:
        moment = datetime(year, month, day_, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"not a valid time: {exc}") from exc
    seconds = (moment - _EPOCH) // timedelta(seconds=1) - offset
    ns = seconds * 10**9 + int(frac)
    if not 0 <= ns < 2**63:
        raise ValueError("out of range (1970-01-01 .. 2262-04-11, nanoseconds since 1970)")
    return ns


#: Every accepted time lies in [1970-01-01, 2262-01-01): nanoseconds since the epoch in an
#: int64, with room left for the windows the views add to them (reopen, abandon_after).
TIME_END_NS = (date(2262, 1, 1) - _EPOCH.date()).days * 86_400 * 10**9


def check_time(ns: int, key: str, *, not_after: int = TIME_END_NS - 1) -> int:
    """The one bound check of every accepted time (signals, log records, cost periods):
    not before 1970, not from 2262 on, and not after ``not_after`` (a signal: the receiver's
    clock plus ``max_clock_skew``)."""
    if ns < 0:
        raise ItemError(f"{key}: before 1970-01-01T00:00:00Z")
    if ns > min(not_after, TIME_END_NS):
        if not_after < TIME_END_NS - 1:
            raise ItemError(
                f"{key}: in the future ({ns_to_iso(ns)} is after the receiver's clock plus"
                f" max_clock_skew, {ns_to_iso(not_after)})"
            )
        raise ItemError(f"{key}: from 2262-01-01 on, got {ns_to_iso(ns)}")
    return ns


def opt_time(
    item: Mapping[str, Any],
    key: str,
    default_ns: int | None,
    *,
    allow_date: bool = False,
    not_after: int = TIME_END_NS - 1,
) -> int:
    """An RFC 3339 time (or a date, with ``allow_date``) within ``check_time``'s bounds."""
    value = item.get(key)
    if value is None:
        if default_ns is None:
            raise ItemError(f"{key}: required (RFC 3339, e.g. 2026-01-31T14:05:00Z)")
        return default_ns
    if not isinstance(value, str):
        raise ItemError(f"{key}: expected an RFC 3339 string, got {_json_type(value)}")
    try:
        ns = rfc3339_ns(value.strip(), allow_date=allow_date)
    except ValueError as exc:
        raise ItemError(f"{key}: {exc}, got {value!r}") from exc
    return check_time(ns, key, not_after=not_after)


def ns_to_iso(ns: int) -> str:
    seconds, frac = divmod(ns, 10**9)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:09d}Z" if frac else f"{base}Z"


def now_ns() -> int:
    return time.time_ns()


# ----------------------------------------------------------------------------- attributes


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):  # JSON integers arrive as int; Decimal is a fraction
        return float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def encode_json_value(value: Any) -> tuple[str, str]:
    """(text, type code) of a JSON value, with the span attributes' codes."""
    if value is None:
        return "", EMPTY
    if isinstance(value, bool):
        return ("true" if value else "false"), BOOL
    if isinstance(value, int):
        return str(value), INT
    if isinstance(value, Decimal):
        return repr(float(value)), DOUBLE
    if isinstance(value, str):
        return value, STRING
    text = json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False)
    return text, ARRAY if isinstance(value, list) else KVLIST


def opt_attributes(
    item: Mapping[str, Any], key: str = "attributes"
) -> tuple[list[tuple[str, str]], str | None]:
    value = item.get(key)
    if value is None:
        return [], None
    if not isinstance(value, dict):
        raise ItemError(f"{key}: expected an object, got {_json_type(value)}")
    entries: list[tuple[str, str]] = []
    codes: list[str] = []
    for k, v in value.items():
        text, code = encode_json_value(v)
        entries.append((k, text))
        codes.append(code)
    joined = "".join(codes)
    return entries, (None if joined == STRING * len(codes) else joined)


def content_id(prefix: str, parts: Mapping[str, Any]) -> str:
    """A stable id from an item's content: the same item sent twice gets the same id."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return f"{prefix}{hashlib.sha256(canonical.encode('utf-8')).hexdigest()[:32]}"
