"""``make bench``: every benchmark, its figures printed (medians over several runs)."""

from __future__ import annotations

import importlib
import os
import platform
import sys
import time

#: Module, what it measures. Each module has ``run() -> dict[str, float]``.
BENCHES = (
    ("bench.normalize_bench", "normalization + pricing, one core, in process"),
    ("bench.storage_bench", "WAL acknowledgements, converter, compaction, bytes at rest"),
    ("bench.ingest_bench", "real server: burst / sustained spans/s, latency, bytes/span, RSS"),
    ("bench.admission_bench", "real server: 8 concurrent 64 MiB requests, process tree memory"),
    ("bench.economics_bench", "10M-span lake: cost-per-task and task drill-down over HTTP"),
)


def main(argv: list[str]) -> int:
    only = set(argv)
    machine = f"{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"tasklake bench — {machine}")
    for module, what in BENCHES:
        short = module.split(".")[-1]
        if only and short not in only and module not in only:
            continue
        print(f"\n== {short}: {what}", flush=True)
        started = time.monotonic()
        figures = importlib.import_module(module).run()
        for name, value in figures.items():
            print(f"  {name:48s} {value:14.2f}")
        print(f"  ({time.monotonic() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
