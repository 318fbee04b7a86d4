"""Every route declares who may call it, and the gatekeeper holds each one to it.

``ROUTES`` is the table of every route the server has and the access it must declare: a
route added without one (or not listed here) fails ``test_every_route_is_in_the_table``, and
the gatekeeper refuses it at run time (``test_an_undeclared_route_answers_nobody``). Then
each route is called over real HTTP with no token, a token without the scope, and one with
it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi import APIRouter

from ingest.otlp_http import otlp_routes
from ingest.write_api import write_routes
from schemas.settings import Settings
from service.access import Access, app_routes, declared_access
from service.app import create_app
from service.db import Database
from tests.ingest.receiver_harness import SinkExporter
from tests.service.access_env import LEGACY, Ready, access_settings, bearer
from tests.service.conftest import serve_app

#: Every route of the server: (path, methods) -> the access it declares.
ROUTES: dict[tuple[str, str], Access] = {
    ("/v1/traces", "*"): Access.INGEST,
    ("/v1/logs", "*"): Access.INGEST,
    ("/v1/{rest:path}", "*"): Access.INGEST,
    ("/api/v1/signals", "*"): Access.INGEST,
    ("/api/v1/costs", "*"): Access.INGEST,
    ("/healthz", "GET"): Access.OPEN,
    ("/readyz", "GET"): Access.PROBE,
    ("/metrics", "GET"): Access.METRICS,
    ("/api/openapi.json", "GET"): Access.TOKEN,
    ("/api/docs", "GET"): Access.TOKEN,
    ("/docs/oauth2-redirect", "GET"): Access.TOKEN,
    ("/api/v1/cost-per-task", "GET"): Access.READ,
    ("/api/v1/tasks/{task_id:any_id}", "GET"): Access.READ,
    ("/api/v1/query", "POST"): Access.READ,
    ("/api/v1/admin/settings", "GET"): Access.ADMIN,
}

#: How each route is called: (method, path, body).
CALLS: dict[str, tuple[str, str, Any]] = {
    "/v1/traces": ("POST", "/v1/traces", {}),
    "/v1/logs": ("POST", "/v1/logs", {}),
    "/v1/{rest:path}": ("POST", "/v1/metrics", {}),
    "/api/v1/signals": ("POST", "/api/v1/signals", []),
    "/api/v1/costs": ("POST", "/api/v1/costs", []),
    "/healthz": ("GET", "/healthz", None),
    "/readyz": ("GET", "/readyz", None),
    "/metrics": ("GET", "/metrics", None),
    "/api/openapi.json": ("GET", "/api/openapi.json", None),
    "/api/docs": ("GET", "/api/docs", None),
    "/docs/oauth2-redirect": ("GET", "/docs/oauth2-redirect", None),
    "/api/v1/cost-per-task": ("GET", "/api/v1/cost-per-task", None),
    "/api/v1/tasks/{task_id:any_id}": ("GET", "/api/v1/tasks/S1", None),
    "/api/v1/query": ("POST", "/api/v1/query", {"sql": "SELECT 1"}),
    "/api/v1/admin/settings": ("GET", "/api/v1/admin/settings", None),
}

#: A token that may, and one that may not, call a route of each access.
ALLOWED = {
    Access.INGEST: ("gateway", "reader"),
    Access.TOKEN: ("gateway", None),
    Access.PROBE: ("gateway", None),
    Access.READ: ("reader", "gateway"),
    Access.ADMIN: ("admin", "reader"),
    Access.METRICS: ("admin", "reader"),
}


def _app(settings: Settings, db: Database) -> Any:
    sink = SinkExporter()
    routes = [*otlp_routes(sink, settings), *write_routes(sink, settings)]
    return create_app(settings, status=Ready(), db=db, ingest_routes=routes)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    settings = access_settings(tmp_path_factory.mktemp("routes") / "lake")
    db = Database(settings, store=False)
    app = _app(settings, db)
    try:
        with serve_app(app) as base:
            yield base, app
    finally:
        db.close()


def _key(route: Any) -> tuple[str, str]:
    methods = getattr(route, "methods", None)
    return route.path, ",".join(sorted(methods - {"HEAD"})) if methods else "*"


def test_every_route_is_in_the_table(server: tuple[str, Any]) -> None:
    _, app = server
    declared = {}
    for route in app_routes(app.router):
        accesses = declared_access(route)
        assert len(accesses) == 1, f"{_key(route)} declares {sorted(accesses)}"
        declared[_key(route)] = next(iter(accesses))
    assert declared == ROUTES


def _call(base: str, route: str, who: str | None) -> requests.Response:
    method, path, body = CALLS[route]
    headers = bearer(who) if who else {}
    return requests.request(method, base + path, json=body, headers=headers, timeout=60)


@pytest.mark.parametrize("route", sorted(path for path, _ in ROUTES))
def test_each_route_takes_whom_it_declares(server: tuple[str, Any], route: str) -> None:
    base, _ = server
    access = next(a for (p, _), a in ROUTES.items() if p == route)
    if access is Access.OPEN:
        assert _call(base, route, None).status_code == 200
        return
    anonymous = _call(base, route, None)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="tasklake"'
    assert _call(base, route, "nobody-knows-this").status_code == 403
    may, may_not = ALLOWED[access]
    assert _call(base, route, may).status_code not in (401, 403)
    assert _call(base, route, "legacy").status_code not in (401, 403)  # full access
    if may_not is not None:
        refused = _call(base, route, may_not)
        assert refused.status_code == 403, refused.text
        assert "scope" in refused.text


def test_an_undeclared_route_answers_nobody(tmp_path: Path) -> None:
    settings = access_settings(tmp_path / "lake")
    db = Database(settings, store=False)
    app = _app(settings, db)
    sneaky = APIRouter()

    @sneaky.get("/api/v1/sneaky")
    def leak() -> dict[str, str]:
        return {"secret": "every team's rows"}

    app.include_router(sneaky)  # not through install_read_api: no scope
    try:
        route = next(r for r in app_routes(app.router) if r.path == "/api/v1/sneaky")
        assert declared_access(route) == frozenset()  # what the table test would catch
        with serve_app(app) as base:
            for who in (None, "reader", "admin", "legacy"):
                resp = requests.get(base + "/api/v1/sneaky", headers=bearer(who) if who else {})
                assert resp.status_code == 403, resp.text
                assert "secret" not in resp.text and "declares no access" in resp.text
            unknown = requests.get(base + "/nothing/here", headers=bearer("reader"))
            assert unknown.status_code == 404
            assert unknown.json()["error"]["status"] == 404
    finally:
        db.close()


def test_probe_networks_and_auth_off(tmp_path: Path) -> None:
    probes = access_settings(tmp_path / "a", probe_networks=("127.0.0.0/8",))
    db = Database(probes, store=False)
    try:
        with serve_app(create_app(probes, status=Ready(), db=db)) as base:
            assert requests.get(base + "/metrics").status_code == 200
            assert requests.get(base + "/readyz").status_code == 200
            assert requests.get(base + "/api/v1/cost-per-task").status_code == 401
            query = requests.post(base + "/api/v1/query", json={"sql": "SELECT 1"})
            assert query.status_code == 401
    finally:
        db.close()
    open_settings = Settings(lake=str(tmp_path / "b"))
    db = Database(open_settings, store=False)
    try:
        with serve_app(create_app(open_settings, status=Ready(), db=db)) as base:
            assert requests.get(base + "/metrics").status_code == 200
            answer = requests.post(base + "/api/v1/query", json={"sql": "SELECT 41 + 1"})
            assert answer.json()["rows"] == [[42]]
    finally:
        db.close()


def test_audit_lines_name_tokens_never_secrets(
    server: tuple[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    base, _ = server
    with caplog.at_level(logging.INFO, logger="tasklake.audit"):
        ok = requests.post(
            base + "/api/v1/query", json={"sql": "SELECT 7 AS n"}, headers=bearer("reader")
        )
        assert ok.status_code == 200
        assert requests.get(base + "/api/v1/cost-per-task", headers=bearer("gateway")).status_code
        requests.get(base + "/metrics", headers={"authorization": "Bearer wrong-secret"})
        requests.post(base + "/v1/traces", json={}, headers=bearer("gateway"))
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "tasklake.audit"]
    read = next(line for line in lines if line["route"] == "/api/v1/query")
    assert (read["event"], read["token"], read["status"], read["rows"]) == (
        "read",
        "reader",
        200,
        1,
    )
    assert read["sql"] == "SELECT 7 AS n" and read["request_id"]
    refused = [line for line in lines if line["event"] == "refused"]
    assert {line["status"] for line in refused} == {403}
    assert any("gateway" in line["reason"] for line in refused)
    assert not any(line["route"] == "/v1/traces" for line in lines)  # ingest: not audited
    text = caplog.text
    for secret in ("reader-secret", "gateway-secret", "wrong-secret", LEGACY):
        assert secret not in text
