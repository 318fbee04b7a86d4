"""``make bench``: every benchmark, its figures printed beside the old layout's (medians over
several runs; ``make bench BENCH=<module>`` for one)."""

from __future__ import annotations

import importlib
import math
import os
import platform
import sys
import time

from bench.figures import BEFORE

#: Module, what it measures. Each module has ``run() -> dict[str, float]``.
BENCHES = (
    ("bench.normalize_bench", "normalization + pricing, one core, in process"),
    ("bench.storage_bench", "WAL acknowledgements, converter, commit, compaction, bytes at rest"),
    ("bench.ingest_bench", "real servers: spans/s, commits/s, latency, RSS; 2 receivers; S3"),
    ("bench.admission_bench", "real server: 8 concurrent 64 MiB requests, process tree memory"),
    ("bench.economics_bench", "10M-span Delta lake: store, cost-per-task, drill-down over HTTP"),
    ("bench.read_under_ingest", "cost-per-task p99 while a receiver ingests, signals, compacts"),
    ("bench.baseline", "ingest of this checkout vs BENCH_BASELINE's, interleaved (ratios)"),
)


def _line(name: str, value: float) -> str:
    old = BEFORE.get(name)
    if old is None:
        return f"  {name:48s} {value:14.2f}"
    ratio = value / old if old else math.nan
    return f"  {name:48s} {value:14.2f}   before {old:10.2f}   x{ratio:5.2f}"


def main(argv: list[str]) -> int:
    only = set(argv)
    machine = f"{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"tasklake bench — {machine}")
    print("  (before: the Parquet-directory lake's figures, README 2026-12, same machine)")
    for module, what in BENCHES:
        short = module.split(".")[-1]
        if only and short not in only and module not in only:
            continue
        print(f"\n== {short}: {what}", flush=True)
        started = time.monotonic()
        figures = importlib.import_module(module).run()
        for name, value in figures.items():
            print(_line(name, value))
        print(f"  ({time.monotonic() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
