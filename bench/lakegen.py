"""A realistic span lake of any size, written straight into Delta tables (no ingest, no
compaction): DuckDB generates each day's spans in one pass, the lake's own file writer
(``ingest.lake.files``) writes them with the compacted files' encodings, and a handful of
Delta commits add them (as ``ingest.lake.append`` does).

Shape (per attempt, 4-9 spans, 6.5 on average): an ``invoke_workflow`` root carrying workflow,
team, version and task id; a ``planner`` agent with its model calls; a retrieval; a
``drafter`` chat with a tool call under it; a ``verifier`` chat; a bare tool call. Spans are
priced like ingest prices them (decimal USD; about 1% of model calls unpriced).

The awkward cases the views must get right appear at realistic rates: the correlation id on
every span (60%), only on the root (30%), nowhere (trace id fallback, 7%) or on the resource
(3%); 3% of attempts spread over two traces; a quarter of tasks retried; 5% of tasks without
a task id; tasks crossing midnight; errors on tool calls. Each day is one file named like a
compacted one (``c-...``: compaction leaves it alone), sorted by ``(trace_id, start_time)``
with 100k-row row groups, except the last day, which is split into small flush-like files
like a day still being ingested.

Signals: per task, completed (most), completed then reopened inside or after the window,
failed, escalated, rework, or nothing at all (abandoned or still pending). Cost entries: a
quarter of labor, infrastructure, rework and a licence (for ``cost=full``).

``cached_lake`` keeps a generated lake under ``bench/out`` keyed by ``GENERATOR_VERSION`` and
the shape; benchmarks that write to it work on ``working_copy`` (hard links: data files are
immutable, and delta-rs replaces log files rather than rewriting them).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ingest.lake.append import append_rows, commit_files
from ingest.lake.files import FileWriter, NewFile
from ingest.lake.parquet import FLUSH_LEVEL
from schemas.costs import costs_table, parse_costs
from schemas.delta import Tables
from schemas.lake import COMPACTED_PREFIX, COSTS, SIGNALS, SPANS, TABLES

#: Bump when the generated rows or files change: cached lakes of other versions are ignored.
GENERATOR_VERSION = 3
OUT = Path(__file__).parent / "out"
SPANS_PER_ATTEMPT = 6.5
#: Days of span files per Delta commit ("a few commits": the log stays short, as after a
#: checkpoint).
DAYS_PER_COMMIT = 15
ROW_GROUP_ROWS = 100_000
#: ``tasklake.op`` of the generator's commits (the store follows them like any append).
OP = "lakegen"
#: (provider, model, input, cache_read, output) USD per million tokens; the last one unpriced.
MODELS = (
    ("openai", "gpt-4o-2024-08-06", "2.5", "1.25", "10"),
    ("openai", "gpt-4o-mini-2024-07-18", "0.15", "0.075", "0.6"),
    ("anthropic", "claude-sonnet-4-20250514", "3", "0.3", "15"),
    ("anthropic", "claude-3-5-haiku-20241022", "0.8", "0.08", "4"),
)


@dataclass(frozen=True)
class LakeShape:
    spans: int = 10_000_000
    days: int = 90
    workflows: int = 20
    teams: int = 8
    first_day: date = date(2026, 1, 1)
    fresh_files: int = 24  # small files of the last day

    @property
    def attempts(self) -> int:
        return round(self.spans / SPANS_PER_ATTEMPT)

    @property
    def name(self) -> str:
        return (
            f"lake-g{GENERATOR_VERSION}-{self.spans}-{self.days}d-{self.workflows}w-{self.teams}t"
        )


def _models_sql() -> str:
    rows = ", ".join(
        f"({i}, '{p}', '{m}', {inp}::DECIMAL(18,12), {cr}::DECIMAL(18,12), {out}::DECIMAL(18,12))"
        for i, (p, m, inp, cr, out) in enumerate(MODELS)
    )
    return f"SELECT * FROM (VALUES {rows}) t(m_no, provider, model, p_in, p_cache, p_out)"


def _attempts_sql(shape: LakeShape) -> str:
    span_us = shape.days * 86_400 * 1_000_000
    return f"""
CREATE OR REPLACE TEMP TABLE gen_attempts AS
SELECT
    i AS a_no,
    (i * 4) // 5 AS t_no,
    hash(i, 'mode') % 100 AS mode_roll,
    hash(i, 'multi') % 100 < 3 AS multi,
    (4 + hash(i, 'n') % 6)::BIGINT AS n_spans,
    TIMESTAMPTZ '{shape.first_day.isoformat()} 00:00:00+00'
        + to_microseconds((i * {span_us // shape.attempts})::BIGINT
                          + (hash(i, 'jit') % 20_000_000)::BIGINT) AS t0,
    md5('trace-a' || i) AS trace1,
    md5('trace-b' || i) AS trace2,
    'att-' || lpad(i::VARCHAR, 8, '0') AS attempt,
    (hash((i * 4) // 5, 'wf') % {shape.workflows})::BIGINT AS wf,
    hash((i * 4) // 5, 'notask') % 100 < 5 AS no_task
FROM range({shape.attempts}) r(i)
"""


def _spans_sql(shape: LakeShape, day: date) -> str:
    """The spans that start on ``day`` (attempts that began up to an hour before included)."""
    half = shape.first_day + timedelta(days=shape.days // 2)
    return f"""
WITH models AS ({_models_sql()}),
a AS (
    SELECT *,
        CASE WHEN multi OR mode_roll < 60 THEN 'all' WHEN mode_roll < 90 THEN 'root'
             WHEN mode_roll < 97 THEN 'none' ELSE 'resource' END AS mode,
        'wf-' || lpad(wf::VARCHAR, 2, '0') AS workflow,
        'team-' || ((wf + (hash(t_no, 'xteam') % 10 = 0)::INT) % {shape.teams}) AS team,
        CASE WHEN wf % 2 = 0 AND t0 >= TIMESTAMPTZ '{half.isoformat()} 00:00:00+00'
             THEN 'v2' ELSE 'v1' END AS version
    FROM gen_attempts
    WHERE t0 >= TIMESTAMPTZ '{day.isoformat()} 00:00:00+00' - INTERVAL 1 HOUR
      AND t0 < TIMESTAMPTZ '{day.isoformat()} 00:00:00+00' + INTERVAL 1 DAY
),
s AS (
    SELECT a.*, j,
        CASE WHEN multi AND j >= 4 THEN trace2 ELSE trace1 END AS trace_id,
        left(md5(a_no || ':' || j), 16) AS span_id,
        CASE
            WHEN j = 0 OR (multi AND j = 4) THEN NULL
            WHEN multi AND j > 4 THEN left(md5(a_no || ':4'), 16)
            WHEN j IN (2, 8) THEN left(md5(a_no || ':1'), 16)
            WHEN j = 5 THEN left(md5(a_no || ':4'), 16)
            ELSE left(md5(a_no || ':0'), 16)
        END AS parent_span_id,
        ['invoke_workflow', 'invoke_agent', 'chat', 'retrieval', 'chat', 'execute_tool',
         'chat', 'execute_tool', 'chat'][j + 1] AS operation,
        j IN (2, 4, 6, 8) AS is_model_call,
        CASE WHEN hash(a_no, j, 'unpriced') % 100 = 0 THEN -1
             ELSE (hash(a_no, j, 'model') % {len(MODELS)})::INT END AS m_no,
        (300 + hash(a_no, j, 'in') % 6000)::BIGINT AS tin,
        (20 + hash(a_no, j, 'out') % 900)::BIGINT AS tout,
        hash(a_no, j, 'cache') % 10 < 3 AS cached,
        t0 + to_microseconds(j * 1_500_000) AS start_time,
        CASE WHEN j = 0 THEN (n_spans * 1500 + 2000)::BIGINT
             ELSE (200 + hash(a_no, j, 'dur') % 2800)::BIGINT END * 1_000_000 AS duration_ns
    FROM a, range(n_spans) r(j)
)
SELECT
    1::TINYINT AS schema_version,
    s.trace_id, s.span_id, s.parent_span_id,
    CASE WHEN j = 0 THEN workflow || ' #' || a_no
         WHEN s.is_model_call THEN 'chat ' || coalesce(m.model, 'mystery-model')
         ELSE s.operation END AS name,
    CASE WHEN j = 0 THEN 2 ELSE 1 END::TINYINT AS kind,
    s.start_time::TIMESTAMPTZ AS start_time,
    s.duration_ns,
    CASE WHEN j IN (5, 7) AND hash(a_no, j, 'err') % 100 < 3 THEN 2 ELSE 0 END::TINYINT
        AS status_code,
    'svc-' || workflow AS service_name,
    s.operation,
    s.is_model_call,
    CASE WHEN s.is_model_call THEN coalesce(m.provider, 'acme') END AS provider,
    CASE WHEN s.is_model_call THEN coalesce(m.model, 'mystery-model') END AS request_model,
    CASE WHEN s.is_model_call THEN coalesce(m.model, 'mystery-model') END AS response_model,
    CASE WHEN s.is_model_call THEN tin END AS input_tokens,
    CASE WHEN s.is_model_call THEN tout END AS output_tokens,
    CASE WHEN s.is_model_call AND cached THEN tin // 2 END AS cache_read_tokens,
    CASE WHEN s.is_model_call THEN tin + tout END AS total_tokens,
    CASE WHEN s.is_model_call THEN 'inclusive' END AS usage_basis,
    CASE WHEN s.is_model_call THEN
        ((tin - CASE WHEN cached THEN tin // 2 ELSE 0 END) * m.p_in
         + CASE WHEN cached THEN tin // 2 ELSE 0 END * m.p_cache
         + tout * m.p_out) / 1000000 END::DECIMAL(18,12) AS cost_usd,
    CASE WHEN s.is_model_call THEN
        CASE WHEN m.model IS NULL THEN 'unpriced' ELSE 'genai-prices' END END AS cost_source,
    CASE WHEN s.is_model_call AND m.model IS NOT NULL
         THEN 'genai-prices@0.2.3:' || m.provider || '/' || m.model END AS price_ref,
    CASE WHEN mode = 'all' OR (mode = 'root' AND j = 0) THEN attempt END AS correlation_id,
    CASE WHEN j = 0 AND NOT no_task THEN 'T-' || lpad(t_no::VARCHAR, 8, '0') END AS task_id,
    CASE WHEN j = 0 THEN workflow END AS workflow,
    CASE WHEN j = 0 THEN version END AS workflow_version,
    CASE WHEN j = 0 THEN team END AS team,
    CASE j WHEN 1 THEN 'planner' WHEN 4 THEN 'drafter' WHEN 6 THEN 'verifier' END AS role,
    CASE j WHEN 1 THEN 'planner' WHEN 4 THEN 'drafter' WHEN 6 THEN 'verifier' END
        AS agent_name,
    CASE WHEN s.operation = 'execute_tool' THEN ['search_kb', 'lookup_order', 'send_email']
        [(1 + hash(a_no, j, 'tool') % 3)::BIGINT] END AS tool_name,
    CASE WHEN s.operation = 'retrieval' THEN 'kb-main' END AS data_source_id,
    CASE WHEN j IN (5, 7) AND hash(a_no, j, 'err') % 100 < 3 THEN 'timeout' END AS error_type,
    'prod' AS environment,
    CASE WHEN mode = 'resource' THEN attempt END AS resource_correlation_id,
    'svc-' || workflow AS resource_workflow,
    'ns-' || team AS resource_team,
    '1.' || (hash(wf) % 5) || '.0' AS resource_version,
    MAP {{'gen_ai.operation.name': 'operation'}} AS source_keys,
    MAP {{'server.address': 'api.example.com', 'gen_ai.request.temperature': '0.2'}}
        AS attributes,
    'sd' AS attribute_types,
    MAP {{'service.name': 'svc-' || workflow, 'host.name': 'worker-' || (a_no % 8)}}
        AS resource_attributes,
    'opentelemetry.instrumentation.openai' AS scope_name,
FROM s LEFT JOIN models m ON m.m_no = s.m_no
WHERE s.start_time >= TIMESTAMPTZ '{day.isoformat()} 00:00:00+00'
  AND s.start_time < TIMESTAMPTZ '{day.isoformat()} 00:00:00+00' + INTERVAL 1 DAY
"""


def _signals_sql(shape: LakeShape) -> str:
    return """
CREATE OR REPLACE TEMP TABLE gen_signals AS
WITH t AS (
    SELECT t_no, max(t0) + INTERVAL 20 MINUTES AS t_end, bool_or(no_task) AS no_task,
           min(attempt) AS first_attempt, hash(t_no, 'fate') % 100 AS fate
    FROM gen_attempts GROUP BY t_no
),
s AS (
    SELECT t_no, k, fate, no_task, first_attempt,
        CASE
            WHEN fate < 68 THEN ['completed'][k + 1]
            WHEN fate < 74 THEN ['completed', 'reopened'][k + 1]
            WHEN fate < 76 THEN ['completed', 'reopened'][k + 1]
            WHEN fate < 84 THEN ['failed'][k + 1]
            WHEN fate < 88 THEN ['escalated'][k + 1]
            WHEN fate < 91 THEN ['completed', 'rework'][k + 1]
            WHEN fate < 93 THEN ['completed'][k + 1]
        END AS outcome,
        t_end + CASE WHEN k = 0 THEN INTERVAL 1 HOUR
                     WHEN fate < 74 THEN INTERVAL 30 HOURS ELSE INTERVAL 60 HOURS END
            AS occurred_at
    FROM t, range(2) r(k)
)
SELECT
    1::TINYINT AS schema_version,
    's-' || t_no || '-' || k AS signal_id,
    CASE WHEN NOT no_task THEN 'T-' || lpad(t_no::VARCHAR, 8, '0') END AS task_id,
    CASE WHEN no_task THEN first_attempt END AS correlation_id,
    outcome,
    occurred_at::TIMESTAMPTZ AS occurred_at,
    'generated' AS source,
    occurred_at::TIMESTAMPTZ AS received_at,
    occurred_at::DATE AS date
FROM s
WHERE outcome IS NOT NULL
UNION ALL  -- a few duplicates, as retried webhooks send them
SELECT 1::TINYINT, 's-' || t_no || '-0', 'T-' || lpad(t_no::VARCHAR, 8, '0'), NULL,
       'completed', (t_end + INTERVAL 1 HOUR)::TIMESTAMPTZ, 'generated',
       (t_end + INTERVAL 2 HOUR)::TIMESTAMPTZ, (t_end + INTERVAL 1 HOUR)::DATE
FROM t WHERE fate < 2 AND NOT no_task
"""


def _span_days(con: duckdb.DuckDBPyConnection, shape: LakeShape) -> Iterator[tuple[date, pa.Table]]:
    """Each day's spans in the lake's file form, sorted by (trace_id, start_time)."""
    spec = TABLES[SPANS]
    for i in range(shape.days):
        day = shape.first_day + timedelta(days=i)
        rows = con.execute(
            f"SELECT * FROM ({_spans_sql(shape, day)}) ORDER BY trace_id, start_time"
        ).to_arrow_table()
        yield day, spec.to_lake(rows)


def _write_day(writer: FileWriter, day: date, rows: pa.Table, fresh_files: int) -> list[NewFile]:
    """One compacted-looking file of ``day`` or, with ``fresh_files`` > 1, that many small
    flush-like files (consecutive slices in time order, flush encodings)."""
    spec = TABLES[SPANS]
    if fresh_files <= 1:
        return [
            writer.write(
                spec,
                day,
                rows,
                prefix=f"{COMPACTED_PREFIX}lakegen",
                row_group_rows=ROW_GROUP_ROWS,
                level=None,
            )
        ]
    ordered = rows.take(pc.sort_indices(rows, [(spec.time_lake_column, "ascending")]))
    size = -(-ordered.num_rows // fresh_files)
    return [
        writer.write(
            spec,
            day,
            ordered.slice(start, size),
            prefix="lakegen",
            row_group_rows=ROW_GROUP_ROWS,
            level=FLUSH_LEVEL,
        )
        for start in range(0, ordered.num_rows, size)
    ]


def _write_spans(con: duckdb.DuckDBPyConnection, tables: Tables, shape: LakeShape) -> None:
    """Every day's files, written by a second thread while DuckDB generates the next day
    (both release the GIL), committed ``DAYS_PER_COMMIT`` days at a time."""
    writer = FileWriter(tables.location)
    last = shape.first_day + timedelta(days=shape.days - 1)
    waiting: list[Future[list[NewFile]]] = []
    with ThreadPoolExecutor(1) as pool:
        for day, rows in _span_days(con, shape):
            fresh = shape.fresh_files if day == last else 1
            waiting.append(pool.submit(_write_day, writer, day, rows, fresh))
            del rows
            if len(waiting) >= DAYS_PER_COMMIT:
                commit_files(tables, SPANS, [f for w in waiting for f in w.result()], op=OP)
                waiting = []
        if waiting:
            commit_files(tables, SPANS, [f for w in waiting for f in w.result()], op=OP)


def _write_signals(con: duckdb.DuckDBPyConnection, tables: Tables, shape: LakeShape) -> None:
    con.execute(_signals_sql(shape))
    spec = TABLES[SIGNALS]
    sql = (
        "SELECT * REPLACE (date_trunc('millisecond', received_at) AS received_at)"
        " FROM gen_signals ORDER BY occurred_at"
    )
    rows = spec.to_lake(con.execute(sql).to_arrow_table())
    writer = FileWriter(tables.location)
    files = [
        writer.write(
            spec,
            day,
            part,
            prefix=f"{COMPACTED_PREFIX}lakegen",
            row_group_rows=ROW_GROUP_ROWS,
            level=None,
        )
        for day, part in spec.split_by_day(rows)
    ]
    commit_files(tables, SIGNALS, files, op=OP)


def cost_items(shape: LakeShape) -> list[dict[str, Any]]:
    """A quarter of cost entries: monthly labor per team and infrastructure per workflow, a
    yearly licence for everyone, rework for a few workflows, one entry with no spend."""
    items: list[dict[str, Any]] = []
    for month in (1, 2, 3):
        period = {"period_start": f"2026-{month:02d}-01", "period_end": f"2026-{month + 1:02d}-01"}
        for team in range(shape.teams):
            items.append(
                {"component": "labor", "amount_usd": 4000 + 250 * team, "team": f"team-{team}"}
                | period
            )
        for wf in range(shape.workflows):
            items.append(
                {"component": "infrastructure", "amount_usd": "812.50", "workflow": f"wf-{wf:02d}"}
                | period
            )
        for wf in range(0, shape.workflows, 5):
            items.append(
                {"component": "rework", "amount_usd": 1500, "workflow": f"wf-{wf:02d}"} | period
            )
    items.append(
        {
            "component": "licence",
            "amount_usd": 120000,
            "period_start": "2026-01-01",
            "period_end": "2027-01-01",
        }
    )
    items.append(
        {
            "component": "other",
            "amount_usd": 99,
            "workflow": "wf-none",
            "period_start": "2026-01-01",
            "period_end": "2026-04-01",
        }
    )
    return items


def _write_costs(tables: Tables, shape: LakeShape) -> None:
    parsed = parse_costs(json.dumps(cost_items(shape)).encode())
    assert not parsed.rejected, parsed.rejected
    append_rows(tables, COSTS, costs_table(parsed.items, received_at_ms=0), prefix="lakegen", op=OP)


def generate_lake(lake: Path, shape: LakeShape | None = None) -> Path:
    """Write spans, signals and cost entries of ``shape`` (default: 10M spans) into a fresh
    local ``lake``."""
    shape = shape or LakeShape()
    import schemas.views  # noqa: F401  (registers every table)

    if lake.exists():
        shutil.rmtree(lake)
    tables = Tables(lake)
    tables.ensure()
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        con.execute(_attempts_sql(shape))
        _write_spans(con, tables, shape)
        _write_signals(con, tables, shape)
    finally:
        con.close()
    _write_costs(tables, shape)
    return lake


def cached_lake(shape: LakeShape | None = None) -> Path:
    """The lake of ``shape`` under ``bench/out``, generated only when missing. Never write to
    it: use ``working_copy``."""
    shape = shape or LakeShape()
    lake = OUT / shape.name
    done = lake / ".complete"
    if not done.exists():
        started = time.perf_counter()
        generate_lake(lake, shape)
        seconds = time.perf_counter() - started
        print(f"  (generated {shape.spans:,} spans into {lake.name} in {seconds:.0f} s)")
        done.write_text(f"{seconds:.1f}\n")
    return lake


def generation_seconds(lake: Path) -> float:
    """How long generating the cached ``lake`` took (0: unknown)."""
    try:
        return float((lake / ".complete").read_text().strip() or 0)
    except (OSError, ValueError):
        return 0.0


def working_copy(lake: Path, dest: Path) -> Path:
    """``dest`` as a copy of ``lake`` made of hard links (seconds, no extra space), without
    the read side's store (``_store``): writers of the copy never touch the cached lake."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(
        lake,
        dest,
        copy_function=os.link,
        ignore=shutil.ignore_patterns("_store", ".complete"),
    )
    return dest


def as_of(shape: LakeShape) -> datetime:
    """A fixed "now" a week after the last span: answers do not drift with the clock."""
    end = shape.first_day + timedelta(days=shape.days + 7)
    return datetime(end.year, end.month, end.day, tzinfo=UTC)
