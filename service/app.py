"""The FastAPI application: OTLP receivers, REST API, health, dashboard — one port.

The app is assembled from parts handed in by the composition root (``service.server``): the
ingest side's OTLP routes and its status source. The read side (``service.api``) only ever
talks to the lake through ``service.db``.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from starlette.routing import BaseRoute

from schemas.settings import Settings
from service.api import install_read_api
from service.api.openapi import install_openapi
from service.auth import BearerAuthMiddleware
from service.db import Database
from service.errors import RequestIdMiddleware, install_error_handlers
from service.health import StatusSource, health_router


def create_app(
    settings: Settings,
    *,
    status: StatusSource,
    db: Database,
    ingest_routes: Sequence[BaseRoute] = (),
) -> FastAPI:
    app = FastAPI(
        title="tasklake",
        summary="What your AI agents cost per completed task.",
        version="0.1.0",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    install_error_handlers(app)
    # OTLP routes first: they are the hot path and must not be shadowed.
    app.router.routes[:0] = list(ingest_routes)
    app.include_router(health_router(status))
    install_read_api(app, db)
    install_openapi(app)
    if settings.auth_tokens:
        app.add_middleware(BearerAuthMiddleware, tokens=settings.auth_tokens, prefix="/api/")
    # outermost: every answer, refusals of the auth check included, carries a request id
    app.add_middleware(RequestIdMiddleware)
    return app
