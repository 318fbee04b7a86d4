"""The compiled fast path of span normalization, and the switch that picks it.

``ingest.convert.normalize.Normalizer`` is the reference. ``FastPath`` runs the C extension
``ingest.convert.native._fastpath`` over a request's bytes instead, and builds the very same
``pyarrow.RecordBatch`` from the column buffers it returns. The C code does the per-span and
per-attribute work (wire walking, ids, value text, duplicate keys, first-hit-wins resolution,
usage rules, integer pricing, column buffers); everything it cannot do exactly it asks of the
normalizer it is bound to, through the callbacks below, each answer being memoized on one side
or the other: how a key routes (per distinct key), odd encodings and routes needing the
convention tables (per distinct serialized attribute), resources and scopes (per distinct
one), price plans (per provider, model and day), spans with JSON or marker attributes (whole,
per span), events and links (per span having any). A request it does not fully understand
(malformed, unknown wire types, invalid UTF-8...) comes back as None and takes the Python path,
which then gives its result or raises its error.

``TASKLAKE_PURE_PYTHON=1`` forces the Python path; which path a process uses is logged once.
"""

from __future__ import annotations

import functools
import logging
import os
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa

from ingest.convert import conventions as cv
from ingest.convert.columns import empty_lists
from ingest.convert.price import _Linear
from ingest.convert.routing import COST, STR, TOK
from ingest.receive.wire import ShadowSpan
from schemas.spans import ATTR_MAP, SCHEMA_VERSION, SPAN_SCHEMA, USD

if TYPE_CHECKING:
    from ingest.convert.normalize import Normalizer

log = logging.getLogger(__name__)

PURE_ENV: Final = "TASKLAKE_PURE_PYTHON"
#: Integer price coefficients beyond this are left to Python (the C sums stay in 128 bits).
_COEF_LIMIT: Final = 1 << 62

#: Whether the process already said which path it uses.
LOGGED: dict[str, bool] = {"done": False}


@functools.cache
def _load() -> tuple[ModuleType | None, str]:
    """(the extension, or None and why not)."""
    try:
        from ingest.convert.native import _fastpath
    except ImportError as exc:
        return None, f"extension not built ({exc})"
    return _fastpath, ""


def available() -> bool:
    """Whether the compiled extension can be imported."""
    return _load()[0] is not None


def wanted() -> bool:
    """Whether a Normalizer should use the fast path: built, and not forced off. Logs once."""
    forced_off = os.environ.get(PURE_ENV, "").strip() not in ("", "0")
    use = not forced_off and available()
    if not LOGGED["done"]:
        LOGGED["done"] = True
        if use:
            log.info("span normalization: native fast path (ingest.convert.native._fastpath)")
        else:
            reason = f"{PURE_ENV} is set" if forced_off else _load()[1]
            log.info("span normalization: pure Python (%s)", reason)
    return use


def count_valid_spans(raw: bytes | memoryview) -> int | None:
    """The receiver's check (``ingest.receive.validate``) over a request's protobuf bytes, in C.

    The number of spans when every span passes; None when some does not, the bytes hold
    something unexpected, or the extension is not built: ``validate_traces`` then decides
    (and trims the request). Saves the main process the walk over upb span objects.
    """
    module = _load()[0]
    if module is None:
        return None
    count: int | None = module.count_valid_spans(raw)
    return count


def _arrow_type(name: str) -> pa.DataType:
    return SPAN_SCHEMA.field(name).type


def _array(typ: pa.DataType, n: int, parts: tuple[Any, ...]) -> pa.Array:
    """An array from the C side's (validity or None, buffers..., null count)."""
    *buffers, nulls = parts
    return pa.Array.from_buffers(
        typ,
        n,
        [None if b is None else pa.py_buffer(b) for b in buffers],
        null_count=nulls,
    )


def _offsets(n: int, data: bytes) -> pa.Array:
    return pa.Array.from_buffers(pa.int32(), n, [None, pa.py_buffer(data)])


#: Columns the C side returns as (validity, buffers..., null count), with their Arrow types.
_FLAT: Final = tuple(
    (name, _arrow_type(name))
    for name in (
        "trace_id",
        "span_id",
        "parent_span_id",
        "trace_state",
        "name",
        "status_message",
        "flags",
        "kind",
        "status_code",
        "start_time",
        "duration_ns",
        "cost_usd",
        "attribute_types",
        "dropped_attributes_count",
        "dropped_events_count",
        "dropped_links_count",
    )
)
_EVENTS: Final = _arrow_type("events")
_LINKS: Final = _arrow_type("links")
_INGESTED: Final = _arrow_type("ingested_at")
_CODES: Final = {"string": "s", "int64": "i", "double": "d"}
#: Routes the C side applies itself (by how they read their attribute), with its numbers.
_NATIVE_ROUTES: Final = {STR: 0, TOK: 1, COST: 2}
assert _arrow_type("cost_usd") == USD


class FastPath:
    """The C normalizer bound to one ``Normalizer``'s router, pricer and caches."""

    def __init__(self, normalizer: Normalizer) -> None:
        from ingest.convert.normalize import SPARSE_COLUMNS, block_columns

        module, why_not = _load()
        if module is None:
            raise RuntimeError(f"native fast path unavailable: {why_not}")
        self._n = normalizer
        self._block_columns = block_columns
        self._columns = SPARSE_COLUMNS
        self._index = {name: i for i, name in enumerate(SPARSE_COLUMNS)}
        self._sparse_types = [_arrow_type(c) for c in SPARSE_COLUMNS]
        columns = tuple(
            (c, _CODES[str(t)]) for c, t in zip(SPARSE_COLUMNS, self._sparse_types, strict=True)
        )
        self._state = module.FastState(
            resource=normalizer._resource,
            scope=normalizer._scope,
            entry=self._entry,
            key=self._key,
            resolve=self._resolve,
            plan=self._plan,
            price=normalizer.pricer.price_pico,
            exception_type=self._exception_type,
            columns=columns,
            model_ops=frozenset(cv.MODEL_CALL_OPERATIONS),
            openlit_exclusive=frozenset(cv.OPENLIT_EXCLUSIVE_PROVIDERS),
        )

    # ------------------------------------------------------------------ the batch

    def batch(self, data: bytes | memoryview, ingested_at_ms: int) -> pa.RecordBatch | None:
        """The request's spans as ``Normalizer.normalize_bytes`` makes them; None: use it."""
        n = self._n
        n._young.clear()
        out = self._state.normalize(data)
        if out is None:
            return None
        rows: int = out["rows"]
        arrays: dict[str, pa.Array] = {name: _array(t, rows, out[name]) for name, t in _FLAT}
        arrays["schema_version"] = pa.repeat(pa.scalar(SCHEMA_VERSION, pa.int8()), rows)
        arrays["is_model_call"] = pa.Array.from_buffers(
            pa.bool_(), rows, [None, pa.py_buffer(out["is_model_call"])]
        )
        for name, typ, parts in zip(self._columns, self._sparse_types, out["sparse"], strict=True):
            arrays[name] = _array(typ, rows, parts)
        source_columns, source_keys = n.pair_arrays()
        pairs = out["source_pairs"]
        index = _offsets(len(pairs) // 4, pairs)
        arrays["source_keys"] = pa.MapArray.from_arrays(
            _offsets(rows + 1, out["source_offsets"]),
            source_columns.take(index),
            source_keys.take(index),
            type=ATTR_MAP,
        )
        keys = out["attribute_keys"]
        values = out["attribute_values"]
        entries = len(keys[1]) // 4 - 1
        arrays["attributes"] = pa.MapArray.from_arrays(
            _offsets(rows + 1, out["attribute_offsets"]),
            _array(pa.string(), entries, keys),
            _array(pa.string(), entries, values),
            type=ATTR_MAP,
        )
        nested = out["nested"]
        if nested:
            spans: list[tuple[int, Any]] = [
                (row, ShadowSpan.FromString(raw)) for row, raw in nested
            ]
            arrays.update(n._nested([(row, sp.events, sp.links) for row, sp in spans], rows))
        else:
            arrays["events"] = empty_lists(_EVENTS, rows)
            arrays["links"] = empty_lists(_LINKS, rows)
        arrays["ingested_at"] = pa.repeat(pa.scalar(ingested_at_ms, _INGESTED), rows)
        arrays.update(self._block_columns(out["blocks"], out["sizes"]))
        return pa.RecordBatch.from_arrays([arrays[f.name] for f in SPAN_SCHEMA], schema=SPAN_SCHEMA)

    def stats(self) -> dict[str, Any]:
        """The C side's counters (requests taken natively, fallbacks, callbacks made)."""
        stats: dict[str, Any] = self._state.stats()
        return stats

    def reset(self) -> None:
        """Drop the C side's caches (keys, values, plans)."""
        self._state.reset()

    # ------------------------------------------------------------------ callbacks

    def _entry(self, raw: bytes) -> Any:
        """The normalizer's Entry of one serialized KeyValue (decoded and routed by Python)."""
        n = self._n
        return n._entries.get(raw) or n._entry(raw)

    def _key(self, key: str) -> tuple[tuple[tuple[int, int, int, int], ...] | None, int] | None:
        """How ``key`` routes: None (cold), else (native routes or None, response-model pair).

        Native routes are (column index, rank, how, pair) with how 0 text (``STR``), 1 token
        count (``TOK``), 2 cost (``COST``); a key with any other route (operation, provider,
        JSON, markers) is routed by Python per distinct value.
        """
        router = self._n.router
        routes = router.routes.get(key)
        if routes is None:
            return None
        resp = (
            router.pair("response_model", key)
            if any(column == "request_model" for column, _, _, _ in routes)
            else -1
        )
        native: list[tuple[int, int, int, int]] = []
        for column, rank, how, _extra in routes:
            kind = _NATIVE_ROUTES.get(how)
            if kind is None or column == "operation":
                return None, resp
            native.append((self._index[column], rank, kind, router.pair(column, key)))
        return tuple(native), resp

    def _resolve(
        self, raws: list[bytes], openlit: bool, start_ns: int
    ) -> tuple[list[tuple[int, Any]], list[int], Any, set[str]]:
        """A span whose attributes need Python: ``Router.resolve`` and the price, as
        ``Normalizer._batch`` applies them."""
        n = self._n
        hot = [n._entries.get(b) or n._entry(b) for b in raws]
        best, derived, price_args, drop = n.router.resolve(hot, openlit)
        index = self._index
        values = [(index[column], c[2]) for column, c in best.items()]
        if derived:
            values.extend((index[column], v) for column, v in derived.items())
        pairs = [c[7] for c in best.values()]
        priced = None
        if price_args is not None:
            priced = n.pricer.price_pico(
                price_args[0], price_args[1], start_ns, price_args[2], price_args[3]
            )
        return values, pairs, priced, drop

    def _plan(self, provider: str | None, model: str, day: int) -> Any:
        """The price plan of (provider, model, UTC day): None (no price), a linear plan in
        integers (C computes it), or anything else (C asks ``price_pico`` per call)."""
        plan = self._n.pricer.plan(provider, model, day)
        if plan is None:
            return None
        if isinstance(plan, _Linear):
            numbers = [*plan.starts, *(c for band in plan.bands for c in band)]
            if all(type(x) is int and -_COEF_LIMIT < x < _COEF_LIMIT for x in numbers):
                return ("linear", plan.starts, plan.bands, plan.source, plan.ref)
        return "python"

    def _exception_type(self, span: bytes) -> str | None:
        parsed: Any = ShadowSpan.FromString(span)
        return self._n._exception_type(parsed.events)
