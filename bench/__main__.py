"""``make bench``: every benchmark, its figures printed beside the old layout's (medians over
several runs; ``make bench BENCH=<module>`` for one), then one summary table (markdown, also in
``bench/out/summary.md``). ``BENCH_QUICK=1``: smaller sizes and fewer runs, a smoke run whose
figures are not comparable with the old ones."""

from __future__ import annotations

import importlib
import math
import os
import platform
import sys
import time
import traceback
from typing import Any

from bench.figures import BEFORE
from bench.lakegen import OUT
from bench.summary import write

#: Module, what it measures. Each module has ``run(**kwargs) -> dict[str, float]``.
BENCHES = (
    ("bench.normalize_bench", "normalization + pricing, one core, in process"),
    ("bench.storage_bench", "WAL acknowledgements, converter, commit, compaction, bytes at rest"),
    ("bench.ingest_bench", "real servers: spans/s, commits/s, latency, RSS; 2 receivers; S3"),
    ("bench.admission_bench", "real server: 8 concurrent 64 MiB requests, process tree memory"),
    ("bench.economics_bench", "10M-span Delta lake: store, cost-per-task, drill-down over HTTP"),
    ("bench.read_under_ingest", "cost-per-task p99 while a receiver ingests, signals, compacts"),
    ("bench.baseline", "ingest of this checkout vs BENCH_BASELINE's, interleaved (ratios)"),
)

#: ``BENCH_QUICK=1``: every benchmark on small sizes (a lake of a few 100k spans, one ingest
#: round of 5 s): proves ``make bench`` works end to end in minutes.
QUICK: dict[str, dict[str, Any]] = {
    "bench.normalize_bench": {"runs": 3},
    "bench.ingest_bench": {"runs": 1, "seconds": 5.0},
    "bench.economics_bench": {"runs": 3, "drilldowns": 10, "spans": 500_000},
    "bench.read_under_ingest": {"seconds": 20.0, "probe_seconds": 10.0, "spans": 300_000},
    "bench.baseline": {"rounds": 1, "seconds": 5.0},
}


def _line(name: str, value: float) -> str:
    old = BEFORE.get(name)
    if old is None:
        return f"  {name:48s} {value:14.2f}"
    ratio = value / old if old else math.nan
    return f"  {name:48s} {value:14.2f}   before {old:10.2f}   x{ratio:5.2f}"


def main(argv: list[str]) -> int:
    only = set(argv)
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    machine = f"{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    load = ", load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    print(f"tasklake bench — {machine}{load}{' — QUICK (smoke run)' if quick else ''}")
    print("  (before: the Parquet-directory lake's figures, README 2026-12, same machine)")
    results: dict[str, dict[str, float]] = {}
    failed = []
    for module, what in BENCHES:
        short = module.split(".")[-1]
        if only and short not in only and module not in only:
            continue
        print(f"\n== {short}: {what}", flush=True)
        started = time.monotonic()
        try:
            figures = importlib.import_module(module).run(
                **(QUICK.get(module, {}) if quick else {})
            )
        except Exception:  # the other benchmarks still run; the exit status says it failed
            traceback.print_exc()
            failed.append(short)
            continue
        results[module] = figures
        for name, value in figures.items():
            print(_line(name, value))
        print(f"  ({time.monotonic() - started:.0f} s)", flush=True)
    print(f"\n== summary ({'QUICK: small sizes, ' if quick else ''}{OUT / 'summary.md'})\n")
    print(write(results, OUT / "summary.md"))
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
