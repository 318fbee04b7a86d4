"""Liveness, readiness and Prometheus self-metrics.

``/healthz`` answers 200 whenever the process serves HTTP (the server only starts listening
once recovery is done); ``/readyz`` asks the ingest side whether it accepts data right now:
503 with the reasons while it refuses writes (recovering, a full write-ahead log disk,
shutting down), else 200, with warnings for trouble that does not refuse data yet (a
converter that cannot publish to a full lake); ``/metrics`` exposes the ingest counters and
gauges in the Prometheus text format. ``/healthz`` is open; ``/readyz`` needs any valid token
and ``/metrics`` the admin scope, unless the client is in ``probe_networks``
(``service.access``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from service.access import Access, needs

Stat = float | int | Mapping[str, float | int]


class Readiness(Protocol):
    @property
    def ready(self) -> bool: ...

    @property
    def reasons(self) -> Sequence[str]: ...

    @property
    def warnings(self) -> Sequence[str]: ...


class StatusSource(Protocol):
    """What the ingest runtime tells the read side about itself."""

    def readiness(self) -> Readiness: ...

    def stats(self) -> Mapping[str, Stat]: ...


def _metric_name(key: str) -> str:
    return "tasklake_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)


class _StatsCollector(Collector):
    def __init__(self, source: StatusSource) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        for key, value in sorted(self._source.stats().items()):
            name = _metric_name(key)
            if isinstance(value, Mapping):
                family = GaugeMetricFamily(name, key, labels=["lane"])
                for label, v in sorted(value.items()):
                    family.add_metric([str(label)], float(v))
                yield family
            elif isinstance(value, int | float) and not isinstance(value, bool):
                yield GaugeMetricFamily(name, key, value=float(value))


def health_router(source: StatusSource) -> APIRouter:
    router = APIRouter()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatsCollector(source))

    @router.get("/healthz", include_in_schema=False, dependencies=[needs(Access.OPEN)])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", include_in_schema=False, dependencies=[needs(Access.PROBE)])
    def readyz() -> JSONResponse:
        state = source.readiness()
        warnings = list(state.warnings)
        if state.ready:
            return JSONResponse({"status": "ready", "warnings": warnings})
        reasons = list(state.reasons)
        return JSONResponse(
            {
                "error": {"status": 503, "message": "not ready: " + "; ".join(reasons)},
                "reasons": reasons,
                "warnings": warnings,
            },
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @router.get("/metrics", include_in_schema=False, dependencies=[needs(Access.METRICS)])
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(
            generate_latest(registry).decode(), media_type="text/plain; version=0.0.4"
        )

    return router
