"""Shared by the normalization tests: load cases, read batches, rebuild what was sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from ingest.receive.otlp_json import parse_traces_json
from ingest.receive.wire import double_text
from schemas.attributes import encode_attributes

CASES = Path(__file__).parent / "cases"
TOKEN_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "total_tokens",
)


def load_case(name: str) -> ExportTraceServiceRequest:
    return parse_traces_json((CASES / f"{name}.json").read_bytes())


def _int_times(typ: pa.DataType) -> pa.DataType:
    """``typ`` with every timestamp replaced by int64 (nanoseconds stay exact in Python)."""
    if pa.types.is_timestamp(typ):
        return pa.int64()
    if pa.types.is_list(typ):
        return pa.list_(_int_times(typ.value_type))
    if pa.types.is_struct(typ):
        return pa.struct([pa.field(f.name, _int_times(f.type)) for f in typ])
    return typ


def rows(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    """Rows as dicts, timestamps as integers."""
    schema = pa.schema([pa.field(f.name, _int_times(f.type)) for f in batch.schema])
    return pa.Table.from_batches([batch]).cast(schema).to_pylist()  # type: ignore[no-any-return]


def spans_of(request: ExportTraceServiceRequest) -> list[Span]:
    return [sp for rs in request.resource_spans for ss in rs.scope_spans for sp in ss.spans]


def sent_attributes(span: Any) -> dict[str, tuple[str, str]]:
    """key -> (text, type code) of what was sent, as ``schemas.attributes`` encodes it."""
    entries, codes, _ = encode_attributes(span.attributes)
    codes = codes or "s" * len(entries)
    return {k: (v, c) for (k, v), c in zip(entries, codes, strict=True)}


def rebuilt_attributes(row: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """The span's attributes rebuilt from ``attributes`` + ``source_keys`` + typed columns."""
    kept = row["attributes"] or []
    codes = row["attribute_types"] or "s" * len(kept)
    assert len(codes) == len(kept)
    out = {k: (v, c) for (k, v), c in zip(kept, codes, strict=True)}
    moved: dict[str, tuple[str, str]] = {}
    for column, key in row["source_keys"] or []:
        if key in out:
            continue
        value = row[column]
        if column in TOKEN_COLUMNS:
            entry = (str(value), "i")
        elif column == "reported_cost_usd":
            entry = (double_text(value), "d")
        else:
            entry = (value, "s")
        assert moved.setdefault(key, entry) == entry, f"{key} moved to two different values"
    out.update(moved)
    return out
