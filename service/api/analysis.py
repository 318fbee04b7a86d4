"""What the analysis routes share: calling one macro of ``schemas/views`` (or the task store's
twin of it, rendered from the same file) with named arguments, and the frame of an answer.

The routes (``compare``, ``trends``, ``levers``, ``autonomy``, ``reasons``, ``time_saved``)
only check parameters, select from their macro and shape its rows; every figure is the SQL's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from starlette.responses import Response

from service.api.params import Filters
from service.api.render import csv_response, json_response, plain
from service.db import Database

#: A macro argument: its SQL type and value (None: left to the macro's default).
Arg = tuple[str, Any]


def filter_args(f: Filters, **extra: Arg) -> dict[str, Arg]:
    """The macro arguments of the usual filters, then ``extra``."""
    return {
        "start_at": ("TIMESTAMPTZ", f.start),
        "end_at": ("TIMESTAMPTZ", f.end),
        "workflows": ("VARCHAR[]", f.workflows),
        "teams": ("VARCHAR[]", f.teams),
        **extra,
    }


def macro_rows(
    db: Database,
    name: str,
    args: Mapping[str, Arg],
    *,
    as_of: datetime | None = None,
    priced: bool = False,
) -> list[dict[str, Any]]:
    """``SELECT * FROM <name>(<args>)`` from the task store (its twin ``store_<name>``), or
    from the views when this database has no store; ``priced``: the macro reads
    ``model_prices`` (the store keeps it filled; without one, the lake's models are priced
    first)."""
    store = db.store_for(as_of)
    macro = f"store_{name}" if store is not None else name
    if store is None and priced:
        db.price_models()
    named, values = [], []
    for key, (sql_type, value) in args.items():
        if value is not None:
            named.append(f"{key} := ?::{sql_type}")
            values.append(value)
    sql = f"SELECT * FROM {macro}({', '.join(named)})"
    return db.rows(sql, values, as_of=as_of, snapshot=store.snapshot if store else None)


def frame(f: Filters, **fields: Any) -> dict[str, Any]:
    """The fields every analysis answer carries, then ``fields``."""
    return {"currency": "USD", "filters": f.plain(), "as_of": plain(f.as_of), **fields}


def table_answer(
    f: Filters, rows: list[dict[str, Any]], columns: Sequence[str], name: str, **fields: Any
) -> Response:
    """``rows`` as CSV (``columns``; the file ``<name>.csv``), or as JSON under ``rows`` with
    the frame and ``fields``."""
    if f.format == "csv":
        return csv_response(rows, columns, name)
    return json_response(frame(f, **fields, rows=rows))
