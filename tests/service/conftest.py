from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from fastapi import FastAPI

from schemas.settings import Settings
from service.access import Gatekeeper
from service.api import install_read_api
from service.api.openapi import install_openapi
from service.audit import Audit
from service.db import Database
from service.errors import RequestIdMiddleware, install_error_handlers
from tests.lakes import lake_settings, new_lake
from tests.service import scenario


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve_app(app: FastAPI) -> Iterator[str]:
    """``app`` in a real uvicorn on a free port; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def serve_api(settings: Settings, *, store: bool = True) -> Iterator[str]:
    """The read API over ``settings.lake`` in a real uvicorn on a free port (answering from
    the materialized store, or from the views alone), with the server's middleware (the
    gatekeeper: with no tokens in ``settings``, everyone reads)."""
    app = FastAPI()
    install_error_handlers(app)
    db = Database(settings, store=store)
    install_read_api(app, db)
    install_openapi(app)
    app.add_middleware(Gatekeeper, router=app.router, settings=settings, audit=Audit(settings))
    app.add_middleware(RequestIdMiddleware)
    try:
        with serve_app(app) as base:
            yield base
    finally:
        db.close()


class Api:
    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.http.get(self.base + path, params=params, timeout=60)

    def json(self, path: str, **params: Any) -> Any:
        resp = self.get(path, **params)
        assert resp.status_code == 200, resp.text
        return resp.json()


@pytest.fixture(scope="module")
def scenario_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The scenario served by the API (from its materialized store; that the views answer
    the same is tests/service/test_store.py's job)."""
    lake = new_lake(tmp_path_factory.mktemp("scenario"))
    scenario.build(lake)
    with serve_api(lake_settings(lake)) as base:
        yield Api(base)


@pytest.fixture(scope="session")
def access_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lake of the access tests (tests/service/access_env.py), built once."""
    from tests.service import access_env

    lake = tmp_path_factory.mktemp("access") / "lake"
    access_env.build(lake)
    return lake


@pytest.fixture(scope="session")
def access_api(access_lake: Path) -> Iterator[Any]:
    """The whole app over the access lake, with every kind of token configured."""
    from tests.service import access_env

    with access_env.serve(access_env.access_settings(access_lake)) as base:
        yield access_env.Client(base)
