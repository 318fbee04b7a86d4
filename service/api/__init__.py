"""The REST read API: one module per URL family, each exposing ``router`` (a FastAPI
``APIRouter``). Handlers only select from the views (``service.db``); they never compute a
metric themselves."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from service.db import Database


def read_routers() -> list[APIRouter]:
    from service.api import cost_per_task, task_list, tasks

    # the list before the drill-down: /api/v1/tasks is not a task id
    return [cost_per_task.router, task_list.router, tasks.router]


def install_read_api(app: FastAPI, db: Database) -> None:
    """Mount the read API on ``app``, answering from ``db`` (kept in ``app.state.db``)."""
    app.state.db = db
    for router in read_routers():
        app.include_router(router)
