"""Small lakes written directly, for the economics tests: span rows from a few keywords, real
Delta commits of real Parquet files (``ingest.lake.append``), signals and cost entries in
their tables, and a DuckDB connection over the lake's views pinned to its newest versions.

Where the tests' lakes live is one switch: ``TASKLAKE_TEST_LAKE=local`` (the default) puts
each in a directory of the test's own; ``TASKLAKE_TEST_LAKE=s3`` puts each under a fresh
prefix on the run's one S3-compatible server (moto, ``tests.s3.shared``), its WAL and task
store in that directory (``local_dir``). Tests take lakes from ``new_lake`` and settings from
``lake_settings``, and reach files through ``list_files``/``read_parquet``, so they run on
either; a test about a local lake's files on disk is marked ``local_lake`` (skipped on S3).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import tempfile
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ingest.lake.append import append_rows
from schemas.costs import costs_table, parse_costs
from schemas.delta import Tables
from schemas.jsonitems import loads
from schemas.lake import COSTS, SIGNALS, SPANS
from schemas.location import LakeLocation
from schemas.settings import Settings
from schemas.signals import parse_signals, signals_table
from schemas.spans import SCHEMA_VERSION, SPAN_SCHEMA
from schemas.views import load_views

#: Where the tests' lakes live: ``local`` (default) or ``s3``.
LAKE_MODE_ENV = "TASKLAKE_TEST_LAKE"
LAKE_MODES = ("local", "s3")

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
_counter = itertools.count()
_MODEL_CALLS = {"chat", "text_completion", "embeddings", "generate_content"}


def hex_id(text: str, nbytes: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[: nbytes * 2]


def trace(name: str) -> str:
    return hex_id("trace:" + name, 16)


def sid(name: str) -> str:
    return hex_id("span:" + name, 8)


def at(hours: float = 0.0, *, minutes: float = 0.0, days: float = 0.0) -> datetime:
    return T0 + timedelta(hours=hours, minutes=minutes, days=days)


def ns(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1)) * 1000


def span(
    trace_name: str,
    name: str,
    *,
    parent: str | None = None,
    start: datetime = T0,
    ms: float = 1000.0,
    op: str | None = None,
    cost: str | Decimal | None = None,
    model: str | None = None,
    provider: str | None = None,
    tokens: tuple[int, int] | None = None,
    error: bool = False,
    **columns: Any,
) -> dict[str, Any]:
    """One span row: ``trace_name``/``name``/``parent`` become hex ids; ``op`` the operation
    (model calls when chat/embeddings...); ``cost`` a USD string; other span columns as is
    (correlation_id, task_id, workflow, team, workflow_version, role, resource_*)."""
    is_model_call = op in _MODEL_CALLS
    row: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "trace_id": trace(trace_name),
        "span_id": sid(name),
        "parent_span_id": sid(parent) if parent else None,
        "name": name,
        "kind": 1,
        "start_time": ns(start),
        "duration_ns": int(ms * 1_000_000),
        "status_code": 2 if error else 0,
        "operation": op,
        "is_model_call": is_model_call,
        "provider": provider if is_model_call else None,
        "request_model": model,
        "response_model": model,
        "input_tokens": tokens[0] if tokens and is_model_call else None,
        "output_tokens": tokens[1] if tokens and is_model_call else None,
        "total_tokens": sum(tokens) if tokens and is_model_call else None,
        "cost_usd": Decimal(cost) if cost is not None else None,
        "cost_source": ("override" if cost is not None else "unpriced") if is_model_call else None,
        "source_keys": [],
        "attributes": [("test.seq", str(next(_counter)))],
        "ingested_at": ns(start) // 1_000_000,
    }
    row.update(columns)
    return row


def span_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    cols = {name: [r.get(name) for r in rows] for name in SPAN_SCHEMA.names}
    return pa.Table.from_pydict(cols, schema=SPAN_SCHEMA)


# ----------------------------------------------------------------------------- where lakes live


def lake_mode() -> str:
    """``TASKLAKE_TEST_LAKE``: ``local`` (unset: the default) or ``s3``."""
    mode = os.environ.get(LAKE_MODE_ENV, "").strip().lower() or "local"
    if mode not in LAKE_MODES:
        raise ValueError(f"{LAKE_MODE_ENV}={mode!r}: use one of {', '.join(LAKE_MODES)}")
    return mode


def s3_mode() -> bool:
    return lake_mode() == "s3"


_lock = threading.Lock()
_s3_lakes: dict[Path, str] = {}  # the local directory new_lake was given -> its S3 lake
_local_dirs: dict[str, Path] = {}  # an S3 lake -> its local directory


def new_lake(base: Path, name: str = "lake") -> str:
    """A test's lake: the directory ``base/name`` — or, with ``TASKLAKE_TEST_LAKE=s3``, a
    fresh prefix on the run's S3 server, ``base/name`` then holding what stays on this
    machine (``local_dir``). The same ``base`` and ``name`` give the same lake (a receiver
    restarted over it, a helper reading it)."""
    local = Path(base).resolve() / name
    if not s3_mode():
        return str(local)
    from tests.s3 import shared

    with _lock:
        uri = _s3_lakes.get(local)
        if uri is None:
            uri = shared().lake(name)
            _s3_lakes[local] = uri
            _local_dirs[uri] = local
        return uri


def both_lakes() -> list[str]:
    """The params of a test that runs over a local and an S3 lake alike: ``["local", "s3"]``;
    with ``TASKLAKE_TEST_LAKE=s3`` only ``["s3"]`` (the default run covers the local one)."""
    return ["s3"] if s3_mode() else ["local", "s3"]


def is_local(lake: Path | str) -> bool:
    return LakeLocation.parse(lake).local


def local_dir(lake: Path | str) -> Path:
    """Where what a lake keeps on this machine lives (its WAL in ``_wal``, its task store and
    seed files in ``_store``): a local lake's own directory; an S3 lake's ``new_lake``
    directory (or, for one made elsewhere, a directory of the temporary directory)."""
    location = LakeLocation.parse(lake)
    if location.local:
        return location.path
    with _lock:
        found = _local_dirs.get(location.root)
    if found is None:
        key = location.root.split("://", 1)[1]
        found = Path(tempfile.gettempdir()) / "tasklake-test-lakes" / key
    return found


def lake_settings(lake: Path | str, **values: Any) -> Settings:
    """Settings over ``lake`` (``values`` replace defaults): an object-store lake gets its WAL
    and task store in ``local_dir`` (``wal_dir`` is required there, as for ``serve``)."""
    given: dict[str, Any] = {"lake": str(lake)}
    if not is_local(lake):
        local = local_dir(lake)
        given.update(wal_dir=str(local / "_wal"), store_dir=str(local / "_store"))
    given.update(values)
    return Settings(**given)


def lake_flags(lake: Path | str) -> list[str]:
    """``tasklake`` command-line flags naming ``lake`` (with an S3 lake's local directories)."""
    settings = lake_settings(lake)
    flags = ["--lake", str(lake)]
    if settings.wal_dir:
        flags += ["--wal-dir", settings.wal_dir, "--store-dir", settings.store_dir]
    return flags


def lake_uri(lake: Path | str, *parts: str) -> str:
    """The URI of ``parts`` under the lake (a path for a local lake)."""
    return LakeLocation.parse(lake).uri(*parts)


def _fs(uri: Path | str) -> tuple[pafs.FileSystem, str]:
    """A file or directory of a lake (path or ``s3://`` URI) as pyarrow's filesystem and path."""
    return LakeLocation.parse(uri).filesystem()


def list_files(lake: Path | str, *parts: str, suffix: str = "") -> list[str]:
    """The files under ``parts`` of the lake (recursively) whose names end with ``suffix``,
    as sorted paths relative to the lake, through the lake's filesystem (local or S3)."""
    location = LakeLocation.parse(lake)
    fs, root = location.filesystem()
    selector = pafs.FileSelector(
        location.fs_path(location.uri(*parts)), recursive=True, allow_not_found=True
    )
    return sorted(
        info.path[len(root) :].lstrip("/")
        for info in fs.get_file_info(selector)
        if info.type == pafs.FileType.File and info.base_name.endswith(suffix)
    )


def read_parquet(uri: Path | str, columns: Sequence[str] | None = None) -> pa.Table:
    """A data file of a lake (path or ``s3://`` URI), whole."""
    fs, path = _fs(uri)
    return pq.read_table(path, filesystem=fs, columns=columns)


def parquet_file(uri: Path | str) -> pq.ParquetFile:
    """A data file of a lake (path or ``s3://`` URI) opened for reading its footer and row
    groups."""
    fs, path = _fs(uri)
    return pq.ParquetFile(path, filesystem=fs)


def write_file(uri: Path | str, data: bytes) -> None:
    """Put ``data`` at ``uri`` in a lake (path or ``s3://`` URI), as another tool would."""
    fs, path = _fs(uri)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as out:
        out.write(data)


def delete_file(uri: Path | str) -> None:
    fs, path = _fs(uri)
    fs.delete_file(path)


def tables(lake: Path | str) -> Tables:
    """The lake's tables, with the seed files under the lake's local store directory."""
    return Tables(lake, seed_dir=local_dir(lake) / "_store" / "seeds")


def load(
    con: duckdb.DuckDBPyConnection, lake: Path | str, settings: Settings | None = None
) -> None:
    """Load the views on ``con`` and pin them to the lake's newest versions."""
    t = tables(lake)
    t.ensure()
    con.execute("SET TimeZone = 'UTC'")
    # tiny lakes: one thread plans and runs these queries 2-3x sooner than two
    con.execute("SET threads = 1")
    load_views(con, t, settings)
    t.pin(con)


def connect(lake: Path | str, settings: Settings | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the views loaded, pinned to the tables' newest versions."""
    con = duckdb.connect()
    load(con, lake, settings)
    return con


def write_spans(lake: Path | str, rows: Sequence[Mapping[str, Any]], file: str) -> list[str]:
    """Span rows committed to the lake in one commit (a file per day); returns their URIs."""
    files = append_rows(tables(lake), SPANS, span_table(rows), prefix=file)
    return [lake_uri(lake, SPANS, f.path) for f in files]


def write_signals(
    lake: Path | str, items: Sequence[Mapping[str, Any]], file: str, *, now: datetime | None = None
) -> None:
    """Signals as the API would store them (JSON items through ``parse_signals``), received
    ``now`` (default: the clock; a later one lets a lake hold signals from the future, as a
    lake written before max_clock_skew existed may)."""
    import json

    body = json.dumps([_jsonable(i) for i in items]).encode()
    parsed = parse_signals(body, now=None if now is None else ns(now))
    assert not parsed.rejected, parsed.rejected
    received = ns(T0 + timedelta(days=30)) // 1_000_000 + next(_counter)
    append_rows(
        tables(lake), SIGNALS, signals_table(parsed.items, received_at_ms=received), prefix=file
    )


def write_costs(lake: Path | str, items: Sequence[Mapping[str, Any]], file: str) -> None:
    import json

    parsed = parse_costs(json.dumps([_jsonable(i) for i in items]).encode())
    assert not parsed.rejected, parsed.rejected
    append_rows(tables(lake), COSTS, costs_table(parsed.items, received_at_ms=0), prefix=file)


def _jsonable(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in item.items()}


def signal(target: str, outcome: str, when: datetime, **extra: Any) -> dict[str, Any]:
    """A signal about task ``target`` (or attempt, with ``by='correlation_id'``)."""
    key = extra.pop("by", "task_id")
    return {key: target, "outcome": outcome, "occurred_at": when, **extra}


def as_json(text: str) -> Any:
    return loads(text)
