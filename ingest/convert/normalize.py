"""One OTLP trace request -> one Arrow record batch of ``schemas.spans.SPAN_SCHEMA`` rows.

Every span is normalized across emitter conventions into typed columns (``ingest.convert.routing``
over the tables of ``ingest.convert.conventions``), priced (``ingest.convert.price``), and
everything else is kept losslessly:

* A typed column takes the first key of its table that the span carries with a usable value;
  ``source_keys`` records that key. The attribute leaves ``attributes`` only when the column
  holds exactly its value with the expected type (string <- string, int <- int, cost <-
  double); a transformed value (an exclusive input made inclusive, a count sent as a string
  or a double, a value parsed out of JSON, a folded provider alias) stays in ``attributes``
  as sent, in their original order. The ``spans`` view rebuilds ``all_attributes`` from both.
* Tokens, usage basis, reported cost and our cost are filled on leaf model calls only
  (``is_model_call``); roll-ups on agent and workflow spans stay in their attributes.
* Input includes cached tokens and output includes reasoning, unless the emitter reports them
  apart (OpenLIT's Anthropic spans, Langfuse ``usage_details``, or parts exceeding the whole);
  ``usage_basis`` says ``inclusive`` or ``exclusive:<why>``.
* Duplicate attribute keys: the first wins, later ones are added to the dropped count, which
  saturates at the uint32 maximum of its column (``ingest.convert.columns.uint32_array``).
* Ids are lowercase hex; empty parent, trace state and status message are null; flags 0 are
  null; ``duration_ns`` is end - start.
* Never refuse: whatever ``ingest.receive.validate`` accepted becomes a row. An end before the start
  (or 0) gives ``duration_ns`` 0, an event time past ``MAX_SPAN_TIME_NS`` a null event time,
  a kind or status code beyond int8 a null column; what was sent is kept under a
  ``tasklake.`` key (``ingest.convert.notes``). A usage attribute that is not a count leaves its
  column null and the call unpriced (``usage_basis`` ``invalid:<key>``, ``ingest.convert.routing``);
  a price beyond ``cost_usd`` leaves it unpriced (``price_ref`` ``overflow:<price>``,
  ``ingest.convert.price``).

Speed: this is ingest's CPU hot path. When the compiled extension is built (and
``TASKLAKE_PURE_PYTHON`` is not set), ``ingest.convert.native.FastPath`` walks the request in C and
builds the same batch, calling back into this class for what it does not do itself; this
module stays the reference and the fallback. The Python path reads the request through
``ingest.receive.wire``'s shadow messages (attributes as raw bytes), each distinct KeyValue is
decoded and routed once and memoized, a span touches only its routed ("hot") attributes, and columns
are built from per-column lists, map columns from flat offsets + keys + values, resource and
scope columns once per block and taken per span.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import accumulate
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Status

import ingest.convert.native
from ingest.convert import conventions as cv
from ingest.convert.columns import (
    block_index,
    durations,
    empty_lists,
    hex_ids,
    int32_array,
    map_array,
    map_of,
    optional_uint32,
    small_ints,
    timestamps,
    uint32_array,
    usd_array,
)
from ingest.convert.notes import EVENT_TIME_KEY, fits_int8, span_notes, time_note, with_notes
from ingest.convert.price import Pricer
from ingest.convert.routing import Entry, Router
from ingest.receive.validate import MAX_SPAN_TIME_NS
from ingest.receive.wire import ShadowRequest, decode_keyvalue, decode_value, key_end
from schemas.attributes import STRING, encode_attributes
from schemas.settings import Settings
from schemas.spans import ATTRIBUTE_FIELDS, EVENT, LINK, SCHEMA_VERSION, SPAN_SCHEMA, TIME

if TYPE_CHECKING:
    from ingest.convert.native import FastPath

_KEY = itemgetter(0)
_TEXT = itemgetter(1)
_CODE = itemgetter(2)
_ROUTED = itemgetter(3)
_PAIR = itemgetter(7)
_MAX_ENTRIES: Final = 50_000
_MAX_CONTEXTS: Final = 10_000

#: Columns filled from attributes or derived per span (null unless set).
SPARSE_COLUMNS: Final = (*ATTRIBUTE_FIELDS, "usage_basis", "cost_source", "price_ref")
_SPARSE_TYPES: Final = {name: SPAN_SCHEMA.field(name).type for name in SPARSE_COLUMNS}
_EVENTS: Final = pa.list_(EVENT)
_LINKS: Final = pa.list_(LINK)


@dataclass(frozen=True)
class _Resource:
    entries: list[tuple[str, str]]
    types: str | None
    dropped: int
    service_name: str | None
    correlation_id: str | None
    workflow: str | None
    team: str | None
    version: str | None
    openlit: bool


@dataclass(frozen=True)
class _Scope:
    name: str | None
    version: str | None
    entries: list[tuple[str, str]]
    types: str | None
    dropped: int
    openlit: bool


def _first_text(entries: Sequence[tuple[str, str]], keys: Sequence[str]) -> str | None:
    found = dict(entries)
    for key in keys:
        value = found.get(key)
        if value:
            return value
    return None


def _dedupe(ents: list[Entry]) -> tuple[list[Entry], int]:
    """First occurrence of each key wins; the number of later duplicates."""
    seen: set[str] = set()
    out: list[Entry] = []
    for e in ents:
        if e[0] not in seen:
            seen.add(e[0])
            out.append(e)
    return out, len(ents) - len(out)


class Normalizer:
    """Turns requests into span batches. One per process: its caches are not locked.

    ``native``: use the compiled fast path (True: required, False: never, None: when built and
    not switched off by ``TASKLAKE_PURE_PYTHON``).
    """

    def __init__(
        self, settings: Settings, pricer: Pricer | None = None, *, native: bool | None = None
    ) -> None:
        self.settings = settings
        self.pricer = pricer if pricer is not None else Pricer(settings.prices)
        self.router = Router(settings)
        self._entries: dict[bytes, Entry] = {}
        self._young: dict[bytes, Entry] = {}
        self._resources: dict[bytes, _Resource] = {}
        self._scopes: dict[bytes, _Scope] = {}
        self._statuses: dict[bytes, tuple[int, str | None]] = {}
        #: serialized key prefix -> (key, its routing with the key bound)
        self._keys: dict[bytes, tuple[str, Callable[[str, str, Any], Entry]]] = {}
        self._pair_arrays: tuple[pa.Array, pa.Array] | None = None
        self._fast: FastPath | None = None
        if native is None:
            native = ingest.convert.native.wanted()
        if native:
            self._fast = ingest.convert.native.FastPath(self)

    @property
    def native(self) -> FastPath | None:
        """The compiled fast path in use, if any."""
        return self._fast

    # ------------------------------------------------------------------ entry points

    def normalize(self, request: ExportTraceServiceRequest, ingested_at_ms: int) -> pa.RecordBatch:
        """The request's spans as one batch (zero rows for an empty request)."""
        return self.normalize_bytes(request.SerializeToString(), ingested_at_ms)

    def normalize_bytes(self, data: bytes | memoryview, ingested_at_ms: int) -> pa.RecordBatch:
        """``normalize`` from the request's protobuf encoding (a WAL record as it is)."""
        if self._fast is not None:
            batch = self._fast.batch(data, ingested_at_ms)
            if batch is not None:
                return batch
        return self._batch(ShadowRequest.FromString(data), ingested_at_ms)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ memoized pieces

    def _entry(self, raw: bytes) -> Entry:
        """Decode and route one KeyValue missing from the cache (keys seen before skip a step).

        New entries go to a per-request "young" table and are promoted to the long-lived
        cache when seen a second time: values that never repeat (token counts, response ids)
        then never churn the cache. The commonest misses, a known key with a small int or a
        short string, are decoded inline.
        """
        young = self._young
        entry = young.get(raw)
        if entry is not None:
            cache = self._entries
            if len(cache) >= _MAX_ENTRIES:
                cache.clear()
            cache[raw] = entry
            return entry
        n = len(raw)
        if n > 4 and raw[0] == 0x0A and raw[1] < 0x80:
            kend = raw[1] + 2
            known = self._keys.get(raw[:kend])
            if known is not None and kend + 2 < n:
                if raw[kend] == 0x12 and raw[kend + 1] + kend + 2 == n:  # one-byte value length
                    j = kend + 2
                    tag = raw[j]
                    if tag == 0x18 and n - j == 3 and raw[j + 1] > 0x7F and raw[j + 2] < 0x80:
                        value = (raw[j + 1] & 0x7F) | (raw[j + 2] << 7)
                        entry = known[1](str(value), "i", value)
                    elif tag == 0x0A and raw[j + 1] + j + 2 == n:
                        try:
                            text = raw[j + 2 : n].decode("utf-8")
                        except UnicodeDecodeError:
                            text = None
                        if text is not None:
                            entry = known[1](text, "s", text)
                if entry is None:
                    try:
                        decoded = decode_value(raw, kend)
                    except (IndexError, ValueError, UnicodeDecodeError):
                        decoded = None
                    if decoded is not None:
                        entry = known[1](*decoded)
        if entry is None:
            key, text, code, py = decode_keyvalue(raw)
            routes = self.router.routes.get(key)
            entry = self.router.routed(key, routes, text, code, py)
            kend = key_end(raw)
            # memoize the key by its serialized prefix only when that prefix *is* the key: a
            # KeyValue may repeat its key field, and upb takes the last one
            if kend and len(self._keys) < _MAX_CONTEXTS and raw[2:kend] == key.encode():
                self._keys[raw[:kend]] = (key, partial(self.router.routed, key, routes))
        young[raw] = entry
        return entry

    def _attribute_entries(self, raws: Sequence[bytes]) -> list[Entry]:
        get = self._entries.get
        make = self._entry
        return [get(b) or make(b) for b in raws]

    def _resource(self, raw: bytes) -> _Resource:
        info = self._resources.get(raw)
        if info is None:
            res = Resource.FromString(raw)
            entries, types, dups = encode_attributes(res.attributes)
            s = self.settings
            info = _Resource(
                entries=entries,
                types=types,
                dropped=res.dropped_attributes_count + dups,
                service_name=_first_text(entries, ("service.name",)),
                correlation_id=_first_text(entries, s.correlation_keys),
                workflow=_first_text(entries, (s.workflow_resource_key,)),
                team=_first_text(entries, (s.team_resource_key,)),
                version=_first_text(entries, (s.version_resource_key,)),
                openlit=dict(entries).get(cv.OPENLIT_SDK_KEY) == cv.OPENLIT_SDK_NAME,
            )
            if len(self._resources) >= _MAX_CONTEXTS:
                self._resources.clear()
            self._resources[raw] = info
        return info

    def _scope(self, raw: bytes) -> _Scope:
        info = self._scopes.get(raw)
        if info is None:
            scope = InstrumentationScope.FromString(raw)
            entries, types, dups = encode_attributes(scope.attributes)
            info = _Scope(
                name=scope.name or None,
                version=scope.version or None,
                entries=entries,
                types=types,
                dropped=scope.dropped_attributes_count + dups,
                openlit=scope.name.startswith(cv.OPENLIT_SCOPE_PREFIX),
            )
            if len(self._scopes) >= _MAX_CONTEXTS:
                self._scopes.clear()
            self._scopes[raw] = info
        return info

    def _plain_attributes(
        self, raws: Sequence[bytes], keys: list[str], texts: list[str], note: Entry | None = None
    ) -> tuple[str | None, int]:
        """Append an event's or link's attributes (and ``note``, ``ingest.convert.notes``); return
        their type codes and the entries dropped (duplicates, or given way to the note)."""
        ents, dups = _dedupe(self._attribute_entries(raws))
        if note is not None:
            ents, gave_way = with_notes(ents, [note])
            dups += gave_way
        keys.extend(map(_KEY, ents))
        texts.extend(map(_TEXT, ents))
        codes = "".join(map(_CODE, ents))
        return (None if codes.count(STRING) == len(codes) else codes), dups

    def _exception_type(self, events: Any) -> str | None:
        for ev in events:
            if ev.name == "exception":
                for e in self._attribute_entries(ev.attributes):
                    if e[0] == "exception.type" and e[1]:
                        return e[1]
        return None

    # ------------------------------------------------------------------ the batch

    def _status(self, raw: bytes) -> tuple[int, str | None]:
        """(code, message or None) of a span's serialized Status (memoized: few distinct)."""
        found = self._statuses.get(raw)
        if found is None:
            status = Status.FromString(raw)
            found = (status.code, status.message or None)
            if len(self._statuses) >= _MAX_CONTEXTS:
                self._statuses.clear()
            self._statuses[raw] = found
        return found

    def _batch(self, req: Any, ingested_at_ms: int) -> pa.RecordBatch:
        self._young.clear()
        n = sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
        sparse: dict[str, list[Any]] = {c: [None] * n for c in SPARSE_COLUMNS}
        is_model_call = [False] * n
        cost_pico: list[tuple[int, int]] = []
        trace_ids: list[bytes] = []
        span_ids: list[bytes] = []
        parent_ids: list[bytes] = []
        trace_state: list[str | None] = []
        flags: list[int] = []
        name: list[str] = []
        kind: list[int] = []
        start: list[int] = []
        end: list[int] = []
        status_code: list[int] = [0] * n
        status_message: list[str | None] = [None] * n
        block_sizes: list[int] = []
        attr_off = [0]
        attr_ents: list[Entry] = []
        attr_types: list[str | None] = []
        attr_dropped: list[int] = []
        src_off = [0]
        src_pairs: list[int] = []
        dropped_events: list[int] = []
        dropped_links: list[int] = []
        nested: list[tuple[int, Any, Any]] = []  # (row, events, links) of spans having any
        blocks: list[tuple[_Resource, _Scope, str, str]] = []

        get_entry = self._entries.get
        make_entry = self._entry
        resolve = self.router.resolve
        price = self.pricer.price_pico
        status_of = self._status
        all_strings = STRING
        i = 0
        for rs in req.resource_spans:
            res = self._resource(rs.resource)
            for ss in rs.scope_spans:
                spans = ss.spans
                if not spans:
                    continue
                scope = self._scope(ss.scope)
                blocks.append((res, scope, rs.schema_url, ss.schema_url))
                block_sizes.append(len(spans))
                openlit_block = res.openlit or scope.openlit
                for sp in spans:
                    trace_ids.append(sp.trace_id)
                    span_ids.append(sp.span_id)
                    parent_ids.append(sp.parent_span_id)
                    trace_state.append(sp.trace_state or None)
                    flags.append(sp.flags)
                    name.append(sp.name)
                    kd = sp.kind
                    kind.append(kd)
                    st = sp.start_time_unix_nano
                    start.append(st)
                    en = sp.end_time_unix_nano
                    end.append(max(en, st))
                    sc = 0
                    raw_status = sp.status
                    if raw_status:
                        sc, status_message[i] = status_of(raw_status)
                        status_code[i] = sc
                    events = sp.events
                    links = sp.links
                    if events or links:
                        nested.append((i, events, links))
                    dropped_events.append(sp.dropped_events_count)
                    dropped_links.append(sp.dropped_links_count)

                    raws = sp.attributes
                    ents: list[Any] = [get_entry(b) or make_entry(b) for b in raws]
                    dups = 0
                    if len(set(map(_KEY, ents))) != len(ents):
                        ents, dups = _dedupe(ents)
                    hot = list(filter(_ROUTED, ents))
                    if hot:
                        best, derived, price_args, drop = resolve(hot, openlit_block)
                        for column, c in best.items():
                            sparse[column][i] = c[2]
                        src_pairs.extend(map(_PAIR, best.values()))
                        if derived:
                            for column, v in derived.items():
                                sparse[column][i] = v
                        if price_args is not None:
                            is_model_call[i] = True
                            pico, source, ref = price(
                                price_args[0], price_args[1], st, price_args[2], price_args[3]
                            )
                            if pico is not None:
                                cost_pico.append((i, pico))
                            sparse["cost_source"][i] = source
                            sparse["price_ref"][i] = ref
                        if drop:
                            ents = [e for e in ents if e[0] not in drop]
                    if en < st or not fits_int8(kd) or not fits_int8(sc):  # noted as sent
                        ents, gave_way = with_notes(ents, span_notes(st, en, kd, sc))
                        dups += gave_way
                    if sc == 2 and sparse["error_type"][i] is None and events:
                        error = self._exception_type(events)
                        if error:
                            sparse["error_type"][i] = error
                    src_off.append(len(src_pairs))
                    attr_ents.extend(ents)
                    attr_off.append(len(attr_ents))
                    codes = "".join(map(_CODE, ents))
                    attr_types.append(None if codes.count(all_strings) == len(codes) else codes)
                    attr_dropped.append(sp.dropped_attributes_count + dups)
                    i += 1

        arrays: dict[str, pa.Array] = {
            "schema_version": pa.repeat(pa.scalar(SCHEMA_VERSION, pa.int8()), n),
            "trace_id": hex_ids(trace_ids),
            "span_id": hex_ids(span_ids),
            "parent_span_id": hex_ids(parent_ids),
            "trace_state": pa.array(trace_state, pa.string()),
            "flags": optional_uint32(flags),
            "name": pa.array(name, pa.string()),
            "kind": small_ints(kind),
            "start_time": timestamps(start, TIME),
            "duration_ns": durations(start, end),
            "status_code": small_ints(status_code),
            "status_message": pa.array(status_message, pa.string()),
            "is_model_call": pa.array(is_model_call, pa.bool_()),
            "cost_usd": usd_array(n, cost_pico),
            "source_keys": self._source_keys(src_off, src_pairs),
            "attributes": map_array(
                attr_off, list(map(_KEY, attr_ents)), list(map(_TEXT, attr_ents))
            ),
            "attribute_types": pa.array(attr_types, pa.string()),
            "dropped_attributes_count": uint32_array(attr_dropped),
            "dropped_events_count": uint32_array(dropped_events),
            "dropped_links_count": uint32_array(dropped_links),
            "ingested_at": pa.repeat(pa.scalar(ingested_at_ms, pa.timestamp("ms", tz="UTC")), n),
        }
        arrays.update(self._nested(nested, n))
        for column in SPARSE_COLUMNS:
            typ = _SPARSE_TYPES[column]
            values = sparse[column]
            arrays[column] = pa.nulls(n, typ) if values.count(None) == n else pa.array(values, typ)
        arrays.update(block_columns(blocks, block_sizes))
        return pa.RecordBatch.from_arrays([arrays[f.name] for f in SPAN_SCHEMA], schema=SPAN_SCHEMA)

    def pair_arrays(self) -> tuple[pa.Array, pa.Array]:
        """(column, source key) of every pair number the router handed out, as arrays."""
        router = self.router
        if self._pair_arrays is None or len(self._pair_arrays[0]) != len(router.pair_columns):
            self._pair_arrays = (
                pa.array(router.pair_columns, pa.string()),
                pa.array(router.pair_keys, pa.string()),
            )
        return self._pair_arrays

    def _source_keys(self, offsets: list[int], pairs: list[int]) -> pa.Array:
        """The source_keys map from (column, key) pair numbers: two takes, no per-row strings."""
        columns, keys = self.pair_arrays()
        index = int32_array(pairs)
        return map_of(offsets, columns.take(index), keys.take(index))

    def _nested(self, nested: list[tuple[int, Any, Any]], n: int) -> dict[str, pa.Array]:
        """The events and links columns (few spans have any)."""
        if not nested:
            return {"events": empty_lists(_EVENTS, n), "links": empty_lists(_LINKS, n)}
        ev = _Nested(n)
        ln = _Nested(n)
        for row, events, links in nested:
            for e_ in events:
                sent = e_.time_unix_nano
                late = sent > MAX_SPAN_TIME_NS  # kept without a time, the time noted
                at = None if late else sent
                note = time_note(EVENT_TIME_KEY, sent) if late else None
                types, dups = self._plain_attributes(e_.attributes, ev.keys, ev.values, note)
                ev.add(row, (at, e_.name), types, e_.dropped_attributes_count + dups)
            for l_ in links:
                types, dups = self._plain_attributes(l_.attributes, ln.keys, ln.values)
                ln.add(
                    row,
                    (l_.trace_id.hex(), l_.span_id.hex(), l_.trace_state or None, l_.flags or None),
                    types,
                    l_.dropped_attributes_count + dups,
                )
        return {
            "events": ev.array(EVENT, [(0, TIME), (1, pa.string())])
            if ev.row_of
            else empty_lists(_EVENTS, n),
            "links": ln.array(
                LINK, [(0, pa.string()), (1, pa.string()), (2, pa.string()), (3, pa.uint32())]
            )
            if ln.row_of
            else empty_lists(_LINKS, n),
        }


class _Nested:
    """Flat builder of a list<struct> column (events, links): scalar fields + attribute map."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.row_of: list[int] = []
        self.scalars: list[tuple[Any, ...]] = []
        self.attr_off = [0]
        self.keys: list[str] = []
        self.values: list[str] = []
        self.types: list[str | None] = []
        self.dropped: list[int] = []

    def add(self, row: int, scalars: tuple[Any, ...], types: str | None, dropped: int) -> None:
        self.row_of.append(row)
        self.scalars.append(scalars)
        self.attr_off.append(len(self.keys))
        self.types.append(types)
        self.dropped.append(dropped)

    def array(self, struct: pa.StructType, scalar_types: list[tuple[int, pa.DataType]]) -> pa.Array:
        children: list[pa.Array] = []
        for index, typ in scalar_types:
            column = [s[index] for s in self.scalars]
            if pa.types.is_timestamp(typ):
                if None in column:  # an event time noted out of range
                    children.append(pa.array(column, pa.int64()).cast(typ))
                else:
                    children.append(timestamps(column, typ))
            else:
                children.append(pa.array(column, typ))
        children.append(map_array(self.attr_off, self.keys, self.values))
        children.append(pa.array(self.types, pa.string()))
        children.append(uint32_array(self.dropped))
        values = pa.StructArray.from_arrays(children, fields=list(struct))
        counts = [0] * self.rows
        for row in self.row_of:
            counts[row] += 1
        return pa.ListArray.from_arrays(
            int32_array(list(accumulate(counts, initial=0))), values, type=pa.list_(struct)
        )


def block_columns(
    blocks: list[tuple[_Resource, _Scope, str, str]], sizes: list[int]
) -> dict[str, pa.Array]:
    """Resource and scope columns: one value per (resource, scope) block, repeated per span."""
    res_off = [0]
    res_keys: list[str] = []
    res_vals: list[str] = []
    sc_off = [0]
    sc_keys: list[str] = []
    sc_vals: list[str] = []
    for res, scope, _, _ in blocks:
        res_keys.extend(k for k, _ in res.entries)
        res_vals.extend(v for _, v in res.entries)
        res_off.append(len(res_keys))
        sc_keys.extend(k for k, _ in scope.entries)
        sc_vals.extend(v for _, v in scope.entries)
        sc_off.append(len(sc_keys))
    resources = [b[0] for b in blocks]
    scopes = [b[1] for b in blocks]
    per_block: dict[str, pa.Array] = {
        "service_name": pa.array([r.service_name for r in resources], pa.string()),
        "resource_correlation_id": pa.array([r.correlation_id for r in resources], pa.string()),
        "resource_workflow": pa.array([r.workflow for r in resources], pa.string()),
        "resource_team": pa.array([r.team for r in resources], pa.string()),
        "resource_version": pa.array([r.version for r in resources], pa.string()),
        "resource_attributes": map_array(res_off, res_keys, res_vals),
        "resource_attribute_types": pa.array([r.types for r in resources], pa.string()),
        "resource_dropped_attributes_count": uint32_array([r.dropped for r in resources]),
        "resource_schema_url": pa.array([b[2] or None for b in blocks], pa.string()),
        "scope_name": pa.array([s.name for s in scopes], pa.string()),
        "scope_version": pa.array([s.version for s in scopes], pa.string()),
        "scope_attributes": map_array(sc_off, sc_keys, sc_vals),
        "scope_attribute_types": pa.array([s.types for s in scopes], pa.string()),
        "scope_dropped_attributes_count": uint32_array([s.dropped for s in scopes]),
        "scope_schema_url": pa.array([b[3] or None for b in blocks], pa.string()),
    }
    index = block_index(sizes)
    return {name: arr.take(index) for name, arr in per_block.items()}
