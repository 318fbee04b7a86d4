"""Answers as JSON or CSV, with money exact: a Decimal is written with all its digits, never
through a float."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pyarrow as pa
from starlette.responses import Response


def _decimal_text(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _seconds(value: Any) -> float:
    """An Arrow month-day-nano interval (how DuckDB INTERVALs arrive) in seconds."""
    months, days, nanos = int(value.months), int(value.days), int(value.nanoseconds)
    return float(months * 30 * 86_400 + days * 86_400) + nanos / 1e9


def plain(value: Any) -> Any:
    """A JSON/CSV-ready scalar: datetimes in RFC 3339 UTC, dates ISO, intervals in seconds."""
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if hasattr(value, "nanoseconds") and hasattr(value, "months"):
        return _seconds(value)
    return value


def _encode(value: Any, out: list[str]) -> None:
    value = plain(value)
    if isinstance(value, Decimal):
        out.append(_decimal_text(value))
    elif isinstance(value, bool) or value is None:
        out.append("true" if value is True else "false" if value is False else "null")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(repr(value) if math.isfinite(value) else "null")
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (k, v) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(json.dumps(str(k), ensure_ascii=False))
            out.append(":")
            _encode(v, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _encode(v, out)
        out.append("]")
    else:
        out.append(json.dumps(str(value), ensure_ascii=False))


def dumps(value: Any) -> str:
    out: list[str] = []
    _encode(value, out)
    return "".join(out)


def json_response(value: Any, status: int = 200) -> Response:
    return Response(dumps(value), status_code=status, media_type="application/json")


def _csv_cell(value: Any) -> str:
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list | tuple):
        return dumps(value)
    return str(value)


def csv_response(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], filename: str
) -> Response:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in columns])
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": content_disposition(f"{filename}.csv")},
    )


#: What the ASCII fallback of a file name keeps; anything else (quotes, backslashes, CR/LF,
#: control characters, path separators, non-ASCII) becomes "_".
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._+-]")
#: Longest file name offered (a header stays small whatever the length of a task id).
MAX_FILENAME = 200


def content_disposition(filename: str, disposition: str = "inline") -> str:
    """A ``Content-Disposition`` value for any ``filename`` (RFC 6266): a plain ASCII
    ``filename="..."`` fallback with every unsafe character replaced, and the exact name as
    ``filename*=UTF-8''<percent-encoded>``. Task ids hold quotes, CR/LF, slashes and emoji;
    none of them can break the header or name a path."""
    if len(filename) > MAX_FILENAME:  # keep the extension of a name cut short
        stem, dot, ext = filename.rpartition(".")
        filename = stem[: MAX_FILENAME - len(ext) - 1] + dot + ext if dot else filename
        filename = filename[:MAX_FILENAME]
    fallback = _UNSAFE_FILENAME.sub("_", filename) or "download"
    exact = quote(filename, safe="")
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{exact}"


def _plain_column(column: pa.ChunkedArray) -> list[Any]:
    """A column's values for JSON/CSV; a MAP as an object (Arrow gives key-value pairs)."""
    values: list[Any] = column.to_pylist()
    if pa.types.is_map(column.type):
        return [None if v is None else {str(k): x for k, x in v} for v in values]
    return values


def arrow_rows(table: pa.Table) -> list[list[Any]]:
    """The rows of ``table`` as lists, in column order (names may repeat in a query)."""
    columns = [_plain_column(c) for c in table.columns]
    return [list(row) for row in zip(*columns, strict=True)] if columns else []


def csv_table_response(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], filename: str, **headers: str
) -> Response:
    """Rows as lists under a header of ``columns``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(v) for v in row])
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": content_disposition(f"{filename}.csv"), **headers},
    )


ARROW_STREAM = "application/vnd.apache.arrow.stream"


def arrow_response(table: pa.Table, **headers: str) -> Response:
    """``table`` in the Arrow IPC stream format."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return Response(sink.getvalue().to_pybytes(), media_type=ARROW_STREAM, headers=headers)
