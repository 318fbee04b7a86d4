"""``tasklake serve``: the composition root, one process, one event loop.

Order matters: recover the lake first (so nothing is acknowledged before the write-ahead log is
whole), then start gRPC, then HTTP. If a later part fails to start, the earlier ones are
stopped; on SIGINT/SIGTERM uvicorn stops accepting, then gRPC drains, then the ingest runtime
commits every acknowledged span to the lake.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from types import FrameType

import grpc
import uvicorn

from ingest import IngestRuntime, otlp_routes, start_grpc_server, write_routes
from schemas.settings import Settings, SettingsError
from schemas.views import write_views_file
from service.api.signal_lookup import StoreSignalLookup
from service.app import create_app
from service.audit import Audit
from service.db import Database
from service.exposure import check_exposure

log = logging.getLogger("tasklake")


async def serve(settings: Settings) -> None:
    exposure = check_exposure(settings)
    if exposure is not None:
        log.warning("tasklake: %s", exposure)
    audit = Audit(settings)
    audit.settings_loaded(settings)
    runtime = IngestRuntime(settings)
    await asyncio.to_thread(runtime.start)
    write_views_file(settings.location, settings)
    grpc_server: grpc.aio.Server | None = None
    db: Database | None = None
    try:
        if settings.grpc_port:
            grpc_server = await start_grpc_server(runtime.exporter, settings, runtime.admission)
        db = Database(settings)  # its store builds and follows the lake in the background
        lookup = StoreSignalLookup(db)
        app = create_app(
            settings,
            status=runtime,
            db=db,
            ingest_routes=[
                # one memory budget for every receiver of the process
                *otlp_routes(runtime.exporter, settings, runtime.admission),
                *write_routes(runtime.exporter, settings, runtime.admission, lookup, lookup),
            ],
            audit=audit,
        )
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.http_port,
            http="httptools",
            loop="none",
            lifespan="off",
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=10,
        )
        server = uvicorn.Server(config)
        _state["serving"] = True
        log.warning(
            "tasklake: lake %s; OTLP/HTTP + API on http://%s:%d; OTLP/gRPC on %s",
            settings.lake,
            settings.host,
            settings.http_port,
            f"{settings.host}:{settings.grpc_port}" if grpc_server else "off",
        )
        await server.serve()
        if not server.started:
            raise SystemExit(f"could not listen on {settings.host}:{settings.http_port}")
    finally:
        if grpc_server is not None:
            await grpc_server.stop(grace=5)
        await asyncio.to_thread(runtime.stop, 60.0)
        if db is not None:
            db.close()


_state = {"serving": False}


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """uvicorn catches SIGINT/SIGTERM while it serves and raises the signal again once it has
    stopped; with this handler in place that second delivery returns quietly, so the ingest
    runtime still drains every acknowledged span. Before serving, a signal stops start-up."""
    if not _state["serving"]:
        raise KeyboardInterrupt


def run(settings: Settings) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        check_exposure(settings)
    except SettingsError as exc:
        print(f"tasklake: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"tasklake: {exc}", file=sys.stderr)
        return 1
    return 0
