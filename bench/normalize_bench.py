"""Normalization + pricing throughput on one core, native fast path beside pure Python.

Workload: ``bench.workload`` agent traces (~15 attributes per span, GenAI conventions, no
message content), 512-span requests. Measured, per run, on the same fresh requests for both
paths (so the ratio is taken in the same run, under the same machine noise):

- ``Normalizer.normalize_bytes`` from the request bytes as a WAL record holds them, with the
  native fast path (``ingest.convert.native``) and with the pure-Python reference;
- the converter's work per span, native: normalize a flush's worth of requests, then write them
  as one zstd Parquet file (``ingest.lake.parquet.write_parquet``, flush level, no fsync);
- a calibration figure: upb decoding plus walking every attribute into a dict (the "decode +
  attribute walking" reference of DESIGN.md section 6).

The normalizers are long-lived as in a converter process: caches warm with the categorical
values of earlier requests, but every measured request is new (fresh ids, token counts,
timestamps). The machine is shared and noisy: medians over runs, and the best run beside them.

Run: ``python -m bench.normalize_bench`` (``--runs N``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import ingest.convert.native
from bench.workload import Workload, request_bytes
from ingest.convert.normalize import Normalizer
from ingest.lake.parquet import write_parquet
from schemas.settings import Settings

INGESTED_AT_MS = 1_772_442_100_000


def _walk(bodies: Sequence[bytes]) -> None:
    """The calibration loop: upb decode, every attribute's key and value into a dict."""
    for body in bodies:
        request = ExportTraceServiceRequest.FromString(body)
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    attrs = {}
                    for kv in span.attributes:
                        value = kv.value
                        kind = value.WhichOneof("value")
                        attrs[kv.key] = getattr(value, kind) if kind else None


def _normalize(normalizer: Normalizer, bodies: Sequence[bytes]) -> list[pa.RecordBatch]:
    return [normalizer.normalize_bytes(b, INGESTED_AT_MS) for b in bodies]


def _convert(normalizer: Normalizer, bodies: Sequence[bytes], out: Path) -> None:
    """What a converter does with a flush's worth of requests (minus fsync and publish)."""
    table = pa.Table.from_batches(_normalize(normalizer, bodies))
    write_parquet(table, out, fsync=False)


def _rate(spans: int, work: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    work()
    return spans / (time.perf_counter() - t0)


def run(runs: int = 7, requests_per_run: int = 6, spans_per_request: int = 512) -> dict[str, float]:
    """Spans/s per figure (medians; ``*_best`` the best run); prints them."""
    workload = Workload(spans_per_request=spans_per_request, seed=11)
    warmup = 2
    bodies = request_bytes(workload, warmup + runs * requests_per_run)
    pure = Normalizer(Settings(), native=False)
    native = Normalizer(Settings(), native=True) if ingest.convert.native.available() else None
    for body in bodies[:warmup]:
        pure.normalize_bytes(body, INGESTED_AT_MS)
        if native is not None:
            native.normalize_bytes(body, INGESTED_AT_MS)
    spans = requests_per_run * spans_per_request
    figures: dict[str, list[float]] = {"pure": [], "native": [], "converter": [], "walk": []}
    with tempfile.TemporaryDirectory(prefix="tasklake-bench-") as tmp:
        out = Path(tmp) / "flush.parquet"
        for r in range(runs):
            chunk = bodies[warmup + r * requests_per_run : warmup + (r + 1) * requests_per_run]
            figures["pure"].append(_rate(spans, partial(_normalize, pure, chunk)))
            figures["walk"].append(_rate(spans, partial(_walk, chunk)))
            if native is not None:
                figures["native"].append(_rate(spans, partial(_normalize, native, chunk)))
                figures["converter"].append(_rate(spans, partial(_convert, native, chunk, out)))
    result: dict[str, float] = {}
    for name, values in figures.items():
        if values:
            result[f"{name}_spans_per_s"] = statistics.median(values)
            result[f"{name}_best_spans_per_s"] = max(values)
    ratios = [n / p for n, p in zip(figures["native"], figures["pure"], strict=False)]
    print(
        f"normalize+price, one core, {spans_per_request}-span requests, {runs} runs of "
        f"{spans:,} spans (median, best):"
    )
    if native is not None:
        result["native_over_pure"] = statistics.median(ratios)
        print(
            f"  native fast path  {result['native_spans_per_s']:>10,.0f} spans/s "
            f"({result['native_best_spans_per_s']:,.0f})"
        )
    else:
        print("  native fast path  (extension not built)")
    print(
        f"  pure Python       {result['pure_spans_per_s']:>10,.0f} spans/s "
        f"({result['pure_best_spans_per_s']:,.0f})"
    )
    if native is not None:
        print(f"  native / pure     {result['native_over_pure']:>10.1f}x (same runs)")
        print(
            f"  converter, native normalize + Parquet write  "
            f"{result['converter_spans_per_s']:,.0f} spans/s "
            f"({result['converter_best_spans_per_s']:,.0f})"
        )
    print(f"  calibration, upb decode + attribute walk  {result['walk_spans_per_s']:,.0f} spans/s")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    run(runs=args.runs)
