"""Small helpers every benchmark shares: percentiles, process memory, and the figures measured
before the lake moved to Delta tables (README, Performance, 2026-12), printed beside today's.

``BEFORE`` holds the old layout's figures (generation directories, roll-up companions) under the
names today's benchmarks report, so ``make bench`` prints both and their ratio.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

#: figure name -> value measured on the old Parquet layout (same machine, same workloads).
BEFORE: dict[str, float] = {
    "burst_acked_spans_per_s": 154_000.0,
    "burst_acked_spans_per_s_per_core": 77_000.0,
    "sustained_visible_spans_per_s": 120_000.0,
    "sustained_visible_spans_per_s_per_core": 60_000.0,
    "p50_ms_at_half_burst_rate": 10.0,
    "p99_ms_at_half_burst_rate": 25.0,
    "server_and_converters_rss_mib_peak": 696.0,
    "compaction_rss_mib_peak": 375.0,
    "bytes_per_span_after_compaction": 39.8,
    "bytes_per_span": 39.8,
    "cost_per_task_s": 0.13,
    "cost_per_task_after_ingest_s": 0.95,
    "task_drilldown_s": 0.13,
    "task_drilldown_p90_s": 0.16,
    "cost_per_task_by_workflow_role_s": 1.1,
    "cost_full_by_workflow_team_month_s": 2.4,
    "store_build_s": 120.0,
    "store_restart_s": 1.0,
    "pin_ms": 7.0,
    # issue 8: a query under a steady 4k spans/s ingest (old layout, synchronous refresh)
    "cost_per_task_p50_s": 1.0,
    "cost_per_task_p99_s": 7.7,
}


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def rss_mib(pid: int | None = None, field: str = "VmRSS") -> float:
    """A process's resident memory (``VmHWM``: its peak) in MiB."""
    with open(f"/proc/{pid or os.getpid()}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


class Progress(dict[str, float]):
    """Figures that are printed as soon as they are measured: a long benchmark that fails
    late still leaves what it measured (``make bench`` prints them all again at the end)."""

    def __setitem__(self, key: str, value: float) -> None:
        super().__setitem__(key, value)
        print(f"  . {key} {value:.3f}", flush=True)

    def update(self, *args: Any, **kwargs: float) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value
