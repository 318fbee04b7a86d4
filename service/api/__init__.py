"""The REST read API: one module per URL family, each exposing ``router`` (a FastAPI
``APIRouter``). Handlers only select from the views and their macros (``service.db``; the
analyses through ``service.api.analysis``); they never compute a metric themselves."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from service.db import Database


def read_routers() -> list[APIRouter]:
    from service.api import (
        autonomy,
        compare,
        cost_per_task,
        levers,
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
    ]


def install_read_api(app: FastAPI, db: Database) -> None:
    """Mount the read API on ``app``, answering from ``db`` (kept in ``app.state.db``)."""
    app.state.db = db
    for router in read_routers():
        app.include_router(router)
