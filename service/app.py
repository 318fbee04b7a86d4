"""The FastAPI application: OTLP receivers, REST API, health, dashboard — one port.

The app is assembled from parts handed in by the composition root (``service.server``): the
ingest side's OTLP routes and its status source. The read side (``service.api``) only ever
talks to the lake through ``service.db``. Every route declares who may call it and the
gatekeeper enforces it (``service.access``): the ingest routes check the ingest scope
themselves, the read API needs ``read``, health and metrics say what they need.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from starlette.routing import BaseRoute

from schemas.settings import Settings
from service.access import Access, Gatekeeper, declare
from service.api import install_read_api
from service.api.openapi import install_openapi
from service.audit import Audit
from service.db import Database
from service.errors import RequestIdMiddleware, install_error_handlers
from service.health import StatusSource, health_router


def create_app(
    settings: Settings,
    *,
    status: StatusSource,
    db: Database,
    ingest_routes: Sequence[BaseRoute] = (),
    audit: Audit | None = None,
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
    # the API's description: any valid token (FastAPI made these routes itself)
    for route in app.router.routes:
        if getattr(route, "path", None) in (
            app.openapi_url,
            app.docs_url,
            app.swagger_ui_oauth2_redirect_url,
        ):
            declare(route, Access.TOKEN)
    # OTLP routes first: they are the hot path and must not be shadowed. Each checks the
    # ingest scope itself, answering in its protocol's format.
    app.router.routes[:0] = [declare(route, Access.INGEST) for route in ingest_routes]
    app.include_router(health_router(status))
    install_read_api(app, db)
    install_openapi(app)
    app.add_middleware(
        Gatekeeper, router=app.router, settings=settings, audit=audit or Audit(settings)
    )
    # outermost: every answer, refusals of the gatekeeper included, carries a request id
    app.add_middleware(RequestIdMiddleware)
    return app
