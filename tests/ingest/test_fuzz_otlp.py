"""Property: a 200 means stored. Whatever OTLP request arrives (protobuf or OTLP/JSON), every
span validation accepts converts without raising, on both normalizer paths, into rows that
write to Parquet and read back through the ``spans`` view; every span it refuses has a reason.

Example counts come from the hypothesis profile (``tests/ingest/conftest.py``): a bounded
number in ``make test``, many more with ``make fuzz``.
"""

from __future__ import annotations

import itertools
import re
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import ingest.convert.native
from ingest.convert.normalize import Normalizer
from ingest.lake.append import append_rows
from ingest.lake.parquet import conform
from ingest.receive.otlp_json import parse_traces_json, to_otlp_json
from ingest.receive.validate import validate_traces
from schemas.lake import SPANS
from schemas.settings import PriceOverride, Settings
from schemas.spans import SPAN_SCHEMA
from tests.fuzzing import examples
from tests.ingest.otlp_strategies import requests
from tests.lakes import load, new_lake, tables

#: An override with a price that overflows the cost column on large counts, and genai-prices.
SETTINGS = Settings(
    prices=(PriceOverride(model="acme-large*", input=Decimal(1_000_000), output=Decimal(3)),)
)
PYTHON = Normalizer(SETTINGS, native=False)
NATIVE = Normalizer(SETTINGS, native=True) if ingest.convert.native.available() else None
_FILES = itertools.count()

pytestmark = pytest.mark.fuzz


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="tasklake-fuzz-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    yield connection
    connection.close()


def _span_count(request: ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


def _store_and_read(batch: pa.RecordBatch, root: Path, con: duckdb.DuckDBPyConnection) -> int:
    """Write ``batch`` as the converter does (a file per day partition) and read every column
    of every row back through the ``spans`` view; the number of rows read."""
    lake = new_lake(root, f"lake-{next(_FILES)}")
    table = conform(pa.Table.from_batches([batch]), SPAN_SCHEMA)
    if not append_rows(tables(lake), SPANS, table, prefix="case"):
        return 0
    load(con, lake)
    read = con.execute("SELECT * FROM spans").fetchall()
    con.execute("SELECT all_attributes, end_time, events, links FROM spans").fetchall()
    return len(read)


def _accepted_convert_and_read(
    request: ExportTraceServiceRequest, root: Path, con: duckdb.DuckDBPyConnection
) -> None:
    sent = _span_count(request)
    all_valid = ingest.convert.native.count_valid_spans(request.SerializeToString())
    accepted, rejected, message = validate_traces(request)
    # the C check says "all N valid" only when validation accepts all N
    assert all_valid is None or (all_valid == accepted and rejected == 0)
    assert accepted + rejected == sent == _span_count(request) + rejected
    # every refused span is counted under a reason: "<n> span(s): <why>; ..."
    assert sum(int(n) for n in re.findall(r"(?:^|; )(\d+) span\(s\): ", message)) == rejected
    assert (rejected == 0) == (message == "")
    body = request.SerializeToString()
    batch = PYTHON.normalize_bytes(body, 1_772_442_100_000)
    assert batch.num_rows == accepted
    batch.validate(full=True)
    if NATIVE is not None:
        native = NATIVE.normalize_bytes(body, 1_772_442_100_000)
        assert native.equals(batch), "the native path must give the reference's rows"
    # the spans view counts a span once however often it was sent (same trace and span id)
    distinct = len(
        set(zip(batch["trace_id"].to_pylist(), batch["span_id"].to_pylist(), strict=True))
    )
    assert _store_and_read(batch, root, con) == distinct


@settings(max_examples=examples(100))
@given(request=requests())
def test_protobuf_accepted_spans_are_stored_and_readable(
    request: ExportTraceServiceRequest, workdir: Path, con: duckdb.DuckDBPyConnection
) -> None:
    decoded = ExportTraceServiceRequest.FromString(request.SerializeToString())
    _accepted_convert_and_read(decoded, workdir, con)


@settings(max_examples=examples(100))
@given(request=requests())
def test_otlp_json_decodes_to_the_same_request_and_is_stored(
    request: ExportTraceServiceRequest, workdir: Path, con: duckdb.DuckDBPyConnection
) -> None:
    decoded = parse_traces_json(to_otlp_json(request))
    assert decoded.SerializeToString() == request.SerializeToString()
    _accepted_convert_and_read(decoded, workdir, con)
