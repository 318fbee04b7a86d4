"""Ingest against a baseline checkout, interleaved: ratios measured in one run.

On a shared machine absolute figures move with the neighbours' load, so "before" numbers from
another day cannot tell a regression from a busy host. This runs one ingest round of another
checkout of tasklake (``BENCH_BASELINE=/path``, e.g. ``git archive main | tar -x -C /tmp/base``
with its native extension built) and one of this checkout, alternately, ``rounds`` times, each
in a fresh process, and reports the medians of both and their ratio (this / baseline).

The baseline's ``bench/ingest_bench.py`` must have ``_write_cache(n)`` and
``_one_run(cache, clients, seconds)`` (main's, before the Delta lake); ours is
``bench.ingest_bench._local_run``. Skipped (no figures) when ``BENCH_BASELINE`` is unset.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
COMPARED = (
    "burst_acked_spans_per_s",
    "sustained_visible_spans_per_s",
    "p50_ms_at_half_burst_rate",
    "p99_ms_at_half_burst_rate",
    "server_and_converters_rss_mib_peak",
)
_OURS = (
    "import json; from bench.ingest_bench import _local_run; from bench.load import write_cache;"
    " print('FIGURES', json.dumps(_local_run(write_cache(1000), 4, {seconds})))"
)
_THEIRS = (
    "import json; from bench.ingest_bench import _one_run, _write_cache;"
    " print('FIGURES', json.dumps(_one_run(_write_cache(1000), 4, {seconds})))"
)


def _round(checkout: Path, code: str) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=1200,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("FIGURES "))
    figures: dict[str, float] = json.loads(line.split(" ", 1)[1])
    return figures


def run(rounds: int = 3, seconds: float = 10.0) -> dict[str, float]:
    base = os.environ.get("BENCH_BASELINE")
    if not base:
        print("  (BENCH_BASELINE unset: no baseline checkout to compare with)")
        return {}
    ours: list[dict[str, float]] = []
    theirs: list[dict[str, float]] = []
    for _ in range(rounds):
        theirs.append(_round(Path(base), _THEIRS.format(seconds=seconds)))
        ours.append(_round(HERE, _OURS.format(seconds=seconds)))
    out: dict[str, float] = {}
    for key in COMPARED:
        a = statistics.median(r[key] for r in ours)
        b = statistics.median(r[key] for r in theirs)
        out[f"{key}_baseline"] = b
        out[key] = a
        out[f"{key}_ratio"] = a / b if b else float("nan")
    return out


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:48s} {value:12.2f}")
