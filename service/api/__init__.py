"""The REST read API: one module per URL family, each exposing ``router`` (a FastAPI
``APIRouter``). Handlers only select from the views and their macros (``service.db``; the
analyses through ``service.api.analysis``); they never compute a metric themselves.

Every router of ``read_routers`` is mounted needing the ``read`` scope (``service.access``):
a new read endpoint is scoped by being listed here. A handler that reads rows takes the caller
(``principal: ReadPrincipal``) and keeps a team-scoped caller to its teams' rows; until it
does, the gatekeeper refuses team-scoped tokens there. Admin endpoints go in
``admin_routers`` (the ``admin`` scope).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from service.access import Access, needs
from service.db import Database


def read_routers() -> list[APIRouter]:
    from service.api import (
        autonomy,
        compare,
        cost_per_task,
        levers,
        query,
        reasons,
        tasks,
        time_saved,
        trends,
    )

    return [
        cost_per_task.router,
        tasks.router,
        compare.router,
        trends.router,
        levers.router,
        autonomy.router,
        reasons.router,
        time_saved.router,
        query.router,
    ]


def admin_routers() -> list[APIRouter]:
    from service.api import admin

    return [admin.router]


def install_read_api(app: FastAPI, db: Database) -> None:
    """Mount the read API on ``app``, answering from ``db`` (kept in ``app.state.db``)."""
    app.state.db = db
    for router in read_routers():
        app.include_router(router, dependencies=[needs(Access.READ)])
    for router in admin_routers():
        app.include_router(router, dependencies=[needs(Access.ADMIN)])
