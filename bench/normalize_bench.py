"""Normalization + pricing throughput on one core: ingest's CPU hot path.

Workload: ``bench.workload`` agent traces (~15 attributes per span, GenAI conventions, no
message content), 512-span requests. Measured: spans/s of ``Normalizer.normalize`` from
decoded requests (protobuf decoding excluded, the Arrow batch produced, every model call
priced) and of ``Normalizer.normalize_bytes`` from the request bytes as a WAL record holds
them (no decoding at all). The normalizer is long-lived as in a converter process: its caches
are warm with the categorical values of earlier requests, but every measured request is new
(fresh ids, token counts, timestamps), so its unique values were never seen before.

The machine is shared and noisy, so beside the median over runs the best run is printed, and
a calibration figure on the same requests: upb decoding plus walking every attribute into a
dict (the "decode + attribute walking" reference of DESIGN.md section 6).

Run: ``python -m bench.normalize_bench``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.workload import Workload, request_bytes
from ingest.normalize import Normalizer
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


def run(runs: int = 7, requests_per_run: int = 6, spans_per_request: int = 512) -> dict[str, float]:
    """Spans/s (median and best over ``runs``); prints the figures."""
    workload = Workload(spans_per_request=spans_per_request, seed=11)
    warmup = 2
    bodies = request_bytes(workload, warmup + 2 * runs * requests_per_run)
    normalizer = Normalizer(Settings())
    for body in bodies[:warmup]:
        normalizer.normalize_bytes(body, INGESTED_AT_MS)
    rest = bodies[warmup:]
    spans = requests_per_run * spans_per_request
    from_message: list[float] = []
    from_bytes: list[float] = []
    walk: list[float] = []
    for r in range(runs):
        chunk = rest[2 * r * requests_per_run : (2 * r + 1) * requests_per_run]
        decoded = [ExportTraceServiceRequest.FromString(b) for b in chunk]
        t0 = time.perf_counter()
        for request in decoded:
            normalizer.normalize(request, INGESTED_AT_MS)
        from_message.append(spans / (time.perf_counter() - t0))
        chunk = rest[(2 * r + 1) * requests_per_run : (2 * r + 2) * requests_per_run]
        t0 = time.perf_counter()
        for body in chunk:
            normalizer.normalize_bytes(body, INGESTED_AT_MS)
        from_bytes.append(spans / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        _walk(chunk)
        walk.append(spans / (time.perf_counter() - t0))
    figures = {
        "normalize_spans_per_s": statistics.median(from_message),
        "normalize_best_spans_per_s": max(from_message),
        "normalize_bytes_spans_per_s": statistics.median(from_bytes),
        "normalize_bytes_best_spans_per_s": max(from_bytes),
        "decode_walk_spans_per_s": statistics.median(walk),
    }
    print(
        f"normalize+price, one core, {spans_per_request}-span requests, {runs} runs of "
        f"{spans:,} spans: from decoded requests {figures['normalize_spans_per_s']:,.0f} "
        f"spans/s median ({figures['normalize_best_spans_per_s']:,.0f} best); from request "
        f"bytes {figures['normalize_bytes_spans_per_s']:,.0f} median "
        f"({figures['normalize_bytes_best_spans_per_s']:,.0f} best); calibration, upb "
        f"decode + attribute walk: {figures['decode_walk_spans_per_s']:,.0f} spans/s median"
    )
    return figures


if __name__ == "__main__":
    run()
