"""The headline figures of ``make bench`` as one markdown table — figure, old, new, new/old —
printed last and written to ``bench/out/summary.md``, so README's Performance table is
updated by pasting it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from bench.figures import BEFORE

#: A figure worse than its old value by more than this needs a reason in README.
TOLERANCE = 0.10


@dataclass(frozen=True)
class Row:
    module: str
    key: str
    label: str  # ``{spans}``: the lake's size that run (``lake_spans``)
    higher_is_better: bool | None  # None: no direction (a rate set by the design)
    #: the old value's key in the same module's figures (a ratio measured in one run);
    #: None: ``BEFORE[key]``, the old layout's figure
    old_key: str | None = None


ROWS = (
    Row(
        "bench.ingest_bench",
        "burst_acked_spans_per_s_per_core",
        "durable ingest per core, spans/s acknowledged (fsynced WAL)",
        True,
    ),
    Row(
        "bench.ingest_bench",
        "sustained_visible_spans_per_s_per_core",
        "the same until visible (committed), per core",
        True,
    ),
    Row(
        "bench.ingest_bench",
        "p99_ms_at_half_burst_rate",
        "request p99 at half that load, ms",
        False,
    ),
    Row(
        "bench.ingest_bench",
        "server_and_converters_rss_mib_peak",
        "server + converters peak RSS, MiB",
        False,
    ),
    Row(
        "bench.ingest_bench",
        "bytes_per_span_after_compaction",
        "bytes per span after compaction",
        False,
    ),
    Row(
        "bench.storage_bench",
        "bytes_per_span",
        "bytes per span after compaction (storage bench: in process, 512k spans)",
        False,
    ),
    Row(
        "bench.ingest_bench", "commits_per_s_per_receiver", "commits per second per receiver", None
    ),
    Row(
        "bench.ingest_bench",
        "two_receivers_acked_spans_per_s",
        "two receivers, one lake: combined spans/s acknowledged",
        True,
    ),
    Row(
        "bench.ingest_bench",
        "two_receivers_visible_spans_per_s",
        "two receivers: combined spans/s visible",
        True,
    ),
    Row(
        "bench.ingest_bench",
        "s3_acked_spans_per_s",
        "S3-compatible lake (moto): spans/s acknowledged",
        True,
    ),
    Row(
        "bench.ingest_bench",
        "s3_visible_spans_per_s",
        "S3-compatible lake (moto): spans/s visible",
        True,
    ),
    Row(
        "bench.economics_bench",
        "cost_per_task_s",
        "cost-per-task by workflow, team, month at {spans} spans, s",
        False,
    ),
    Row(
        "bench.economics_bench",
        "cost_per_task_after_ingest_s",
        "the same right after a span and a signal commit, s",
        False,
    ),
    Row(
        "bench.economics_bench",
        "task_drilldown_s",
        "task drill-down at {spans} spans, median s",
        False,
    ),
    Row(
        "bench.economics_bench",
        "store_build_s",
        "task store's cold build at {spans} spans, s",
        False,
    ),
    Row(
        "bench.read_under_ingest",
        "cost_per_task_p50_s",
        "cost-per-task under 4k spans/s ingest ({spans}-span lake), p50 s",
        False,
    ),
    Row("bench.read_under_ingest", "cost_per_task_p99_s", "the same, p99 s", False),
    Row(
        "bench.baseline",
        "burst_acked_spans_per_s",
        "same run vs BENCH_BASELINE: spans/s acknowledged",
        True,
        "burst_acked_spans_per_s_baseline",
    ),
    Row(
        "bench.baseline",
        "sustained_visible_spans_per_s",
        "same run vs BENCH_BASELINE: spans/s visible",
        True,
        "sustained_visible_spans_per_s_baseline",
    ),
    Row(
        "bench.baseline",
        "p99_ms_at_half_burst_rate",
        "same run vs BENCH_BASELINE: request p99, ms",
        False,
        "p99_ms_at_half_burst_rate_baseline",
    ),
    Row(
        "bench.baseline",
        "server_and_converters_rss_mib_peak",
        "same run vs BENCH_BASELINE: peak RSS, MiB",
        False,
        "server_and_converters_rss_mib_peak_baseline",
    ),
)


def _number(value: float) -> str:
    if math.isnan(value):
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def _spans(n: float | None) -> str:
    if n is None:
        return "?"
    return f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}k"


def table(results: dict[str, dict[str, float]]) -> str:
    """Markdown rows of every ``ROWS`` figure measured; a figure worse than its old value by
    more than ``TOLERANCE`` is marked."""
    lines = ["| Figure | Old | New | New/old | |", "| --- | --- | --- | --- | --- |"]
    for row in ROWS:
        figures = results.get(row.module, {})
        if row.key not in figures:
            continue
        new = figures[row.key]
        old = figures.get(row.old_key) if row.old_key else BEFORE.get(row.key)
        ratio = new / old if old else math.nan
        worse = row.higher_is_better is not None and not math.isnan(ratio)
        worse = worse and (ratio < 1 - TOLERANCE if row.higher_is_better else ratio > 1 + TOLERANCE)
        label = row.label.format(spans=_spans(figures.get("lake_spans")))
        cells = [
            label,
            _number(old) if old is not None else "–",
            _number(new),
            f"{ratio:.2f}×" if not math.isnan(ratio) else "",
            "worse >10%" if worse else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write(results: dict[str, dict[str, float]], path: Path) -> str:
    text = table(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    return text
