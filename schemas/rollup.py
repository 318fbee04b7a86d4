"""Per-file roll-ups of span files: what makes attempts of a 10M-span lake answer in a second.

Grouping every span into attempts on each query costs seconds at 10M spans. So each span file
carries two small companion files with its partial aggregates, written when the file is
published or compacted (``ingest.storage`` publishes them atomically with it):

- ``<partition>/_rollup_attempts_v1/<file>``: one row per (trace, correlation id on the span,
  resource correlation id when the span has none): counts, sums, times, and every "first
  value, root spans first" (task, workflow, team, version and their resource stand-ins) with
  the rank of the span it came from;
- ``<partition>/_rollup_breakdown_v1/<file>``: the same keys split by role, provider and
  model, for the span-level dimensions of cost per task.

Partials merge exactly (sums add, ranks compare), so the views resolve correlation ids across
files and traces from the roll-ups alone; the SQL is the one in ``rollup_*.sql``, used both
here and by the views for any span file that has no companion yet. Bump ``ROLLUP_VERSION``
(hence the directory names) when the roll-up columns change: older companions are then
ignored and recomputed on the fly until compaction rewrites them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from schemas.lake import SPANS, register_companion
from schemas.spans import ATTR_MAP  # noqa: F401  (keeps the span contract imported first)

ROLLUP_VERSION = 1
ATTEMPTS_DIR = f"_rollup_attempts_v{ROLLUP_VERSION}"
BREAKDOWN_DIR = f"_rollup_breakdown_v{ROLLUP_VERSION}"

RANK = pa.decimal128(38, 0)  # schemas/macros.sql span_rank
SUM_USD = pa.decimal128(38, 12)
AT = pa.timestamp("us", tz="UTC")

_KEY = [
    pa.field("trace_id", pa.string()),
    pa.field("correlation_id", pa.string()),
    pa.field("resource_correlation_id", pa.string()),
]
_COUNTS = [pa.field(n, pa.int64()) for n in ("spans", "model_calls")]


def _first(name: str) -> list[pa.Field]:
    return [pa.field(name, pa.string()), pa.field(f"{name}_rank", RANK)]


ATTEMPT_ROLLUP_SCHEMA = pa.schema(
    [
        *_KEY,
        *_COUNTS,
        *(pa.field(n, pa.int64()) for n in ("tool_calls", "retrievals", "errors")),
        pa.field("unpriced_spans", pa.int64()),
        pa.field("spend_usd", SUM_USD),
        *(
            pa.field(f"{kind}_tokens", pa.int64())
            for kind in ("input", "output", "cache_read", "cache_write", "reasoning", "total")
        ),
        pa.field("started_at", AT),
        pa.field("ended_at", AT),
        pa.field("first_rank", RANK),
        pa.field("first_span_id", pa.string()),
        pa.field("first_span_name", pa.string()),
        *_first("task_id"),
        *_first("workflow"),
        *_first("team"),
        *_first("version"),
        *_first("resource_workflow"),
        *_first("resource_team"),
        *_first("resource_version"),
    ]
)

BREAKDOWN_ROLLUP_SCHEMA = pa.schema(
    [
        *_KEY,
        pa.field("role", pa.string()),
        pa.field("role_parent", pa.string()),
        pa.field("role_fallback", pa.string()),
        pa.field("billable", pa.bool_()),
        pa.field("provider", pa.string()),
        pa.field("model", pa.string()),
        *_COUNTS,
        pa.field("unpriced_spans", pa.int64()),
        pa.field("spend_usd", SUM_USD),
        pa.field("input_tokens", pa.int64()),
        pa.field("output_tokens", pa.int64()),
        pa.field("total_tokens", pa.int64()),
    ]
)

#: companion subdir -> (SQL file, Arrow schema)
ROLLUPS: dict[str, tuple[str, pa.Schema]] = {
    ATTEMPTS_DIR: ("rollup_attempts", ATTEMPT_ROLLUP_SCHEMA),
    BREAKDOWN_DIR: ("rollup_breakdown", BREAKDOWN_ROLLUP_SCHEMA),
}
for _subdir, (_, _schema) in ROLLUPS.items():
    register_companion(SPANS, _subdir, _schema)


def _sql_file(name: str) -> str:
    return resources.files("schemas").joinpath(f"{name}.sql").read_text(encoding="utf-8")


def rollup_select(subdir: str, rollup_input: str, keep: tuple[str, ...] = ()) -> str:
    """The roll-up query of companion ``subdir`` over ``rollup_input`` (a relation of span
    rows with a ``filename`` column), its columns cast to the companion's Arrow schema (plus
    the ``keep`` columns of the query, e.g. ``filename``)."""
    name, schema = ROLLUPS[subdir]
    body = _sql_file(name).replace("{rollup_input}", rollup_input)
    casts = ", ".join(
        [f'"{k}"' for k in keep]
        + [f'CAST("{f.name}" AS {_duck_type(f.type)}) AS "{f.name}"' for f in schema]
    )
    return f"SELECT {casts} FROM (\n{body}\n)"


def _duck_type(t: pa.DataType) -> str:
    if pa.types.is_string(t):
        return "VARCHAR"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision}, {t.scale})"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    raise TypeError(f"no DuckDB type for {t}")


#: Span rows per DuckDB pass: a larger file (a compacted one) is rolled up in passes over
#: disjoint sets of traces, so the role walk and the aggregate states (neither of which DuckDB
#: spills) stay bounded whatever the file size. 50k rows: compacting 512k rows peaked at
#: ~490 MiB instead of ~710 MiB in one pass, for ~25% more hook time.
ROLLUP_PASS_ROWS = 50_000


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(
        config={
            "threads": 1,
            "memory_limit": "384MB",
            "preserve_insertion_order": False,  # the output is sorted anyway
        }
    )
    con.execute(_sql_file("macros"))
    return con


def _quote(path: Path) -> str:
    return "'" + path.as_posix().replace("'", "''") + "'"


def build_rollup(span_file: Path, out: Path, subdir: str = ATTEMPTS_DIR) -> None:
    """Write the ``subdir`` roll-up of one span file to ``out``.

    Roll-up rows never mix traces, so passes over disjoint trace sets (by hash) give the same
    rows as one pass over the file. Each pass is its own statement: DuckDB keeps a query's
    materialized CTEs until the query ends, so one UNION ALL of passes would not save memory."""
    passes = -(-pq.ParquetFile(span_file).metadata.num_rows // ROLLUP_PASS_ROWS) or 1
    source = f"read_parquet({_quote(span_file)}, filename = true, union_by_name = true)"
    con = _connect()
    try:
        for i in range(passes):
            rows = source
            if passes > 1:
                rows = f"(SELECT * FROM {source} WHERE hash(trace_id) % {passes} = {i})"
            verb = "CREATE TEMP TABLE rolled AS" if i == 0 else "INSERT INTO rolled"
            con.execute(f"{verb} {rollup_select(subdir, rows)}")
        con.execute(
            f"COPY (SELECT * FROM rolled ORDER BY trace_id) TO {_quote(out)} "
            "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 16384)"
        )
    finally:
        con.close()


def build_rollups(span_file: Path, tmp_dir: Path | None = None) -> dict[str, Path]:
    """Every companion of ``span_file``, written beside it (or in ``tmp_dir``): the hook
    ingest calls on each file it compacts (``compaction_hook``; converters could take it by
    import path, ``companion_hook="schemas.rollup:build_rollups"``). Files of other tables
    get none."""
    if not _is_span_file(span_file):
        return {}
    where = tmp_dir if tmp_dir is not None else span_file.parent
    out: dict[str, Path] = {}
    for subdir in ROLLUPS:
        target = where / f".{span_file.stem}.{subdir}.{os.getpid()}.parquet"
        build_rollup(span_file, target, subdir)
        out[subdir] = target
    return out


def _is_span_file(path: Path) -> bool:
    names = set(pq.read_schema(path).names)
    return {"trace_id", "span_id", "parent_span_id", "start_time"} <= names


def rollup_hook(tmp_dir: Path | None = None) -> Callable[[Path], dict[str, Path]]:
    """``build_rollups`` as the companion hook ``Callable[[Path], dict[str, Path]]``."""
    return lambda span_file: build_rollups(span_file, tmp_dir)
