"""Every route declares who may call it, and the gatekeeper holds each one to it.

``ROUTES`` is the table of every route the server has, the access it must declare and, for
read routes, whether it keeps a team-scoped token to its teams' rows. A route added without
a declaration (or not listed here) fails ``test_every_route_is_in_the_table`` with the line to
add, and the gatekeeper refuses it at run time (``test_an_undeclared_route_answers_nobody``).
Then each route is called over real HTTP with no token, a token without the scope, one with
it, and a team-scoped one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import requests
from fastapi import APIRouter

from ingest.receive.otlp_http import otlp_routes
from ingest.receive.write_api import write_routes
from schemas.settings import Settings
from service.access import Access, app_routes, declared_access, keeps_teams, needs
from service.app import create_app
from service.db import Database
from tests.ingest.receiver_harness import SinkExporter
from tests.service.access_env import LEGACY, Ready, access_settings, bearer
from tests.service.conftest import serve_app


class Declared(NamedTuple):
    """What a route declares: its access and (read routes) whether a team-scoped token may
    call it, seeing only its teams' rows (the handler takes ``principal: ReadPrincipal``)."""

    access: Access
    teams: bool = False

    def __repr__(self) -> str:
        teams = ", teams=True" if self.teams else ""
        return f"Declared(Access.{self.access.name}{teams})"


#: Every route of the server: (path, methods) -> what it declares.
ROUTES: dict[tuple[str, str], Declared] = {
    ("/v1/traces", "*"): Declared(Access.INGEST),
    ("/v1/logs", "*"): Declared(Access.INGEST),
    ("/v1/{rest:path}", "*"): Declared(Access.INGEST),
    ("/api/v1/signals", "*"): Declared(Access.INGEST),
    ("/api/v1/costs", "*"): Declared(Access.INGEST),
    ("/healthz", "GET"): Declared(Access.OPEN),
    ("/readyz", "GET"): Declared(Access.PROBE),
    ("/metrics", "GET"): Declared(Access.METRICS),
    ("/api/openapi.json", "GET"): Declared(Access.TOKEN),
    ("/api/docs", "GET"): Declared(Access.TOKEN),
    ("/docs/oauth2-redirect", "GET"): Declared(Access.TOKEN),
    ("/api/v1/cost-per-task", "GET"): Declared(Access.READ, teams=True),
    ("/api/v1/tasks/{task_id:any_id}", "GET"): Declared(Access.READ, teams=True),
    ("/api/v1/query", "POST"): Declared(Access.READ, teams=True),
    ("/api/v1/compare", "GET"): Declared(Access.READ, teams=True),
    ("/api/v1/trends", "GET"): Declared(Access.READ, teams=True),
    ("/api/v1/levers", "GET"): Declared(Access.READ, teams=True),
    ("/api/v1/autonomy", "GET"): Declared(Access.READ, teams=True),
    ("/api/v1/reasons", "GET"): Declared(Access.READ, teams=True),
    ("/api/v1/time-saved", "GET"): Declared(Access.READ, teams=True),
    ("/api/v1/admin/settings", "GET"): Declared(Access.ADMIN),
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
    "/api/v1/compare": ("GET", "/api/v1/compare?workflow=w&a=version:v1&b=version:v2", None),
    "/api/v1/trends": ("GET", "/api/v1/trends?workflow=w", None),
    "/api/v1/levers": ("GET", "/api/v1/levers?workflow=w", None),
    "/api/v1/autonomy": ("GET", "/api/v1/autonomy", None),
    "/api/v1/reasons": ("GET", "/api/v1/reasons", None),
    "/api/v1/time-saved": ("GET", "/api/v1/time-saved", None),
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


def _declared(route: Any) -> Declared | None:
    accesses = declared_access(route)
    if len(accesses) != 1:
        return None
    return Declared(next(iter(accesses)), keeps_teams(route))


_HOW = """    Declare it (service/access.py): a read endpoint: put its router in
    service.api.read_routers (scope read); an admin one: admin_routers (scope admin); a page or
    asset holding no data: dependencies=[needs(Access.OPEN)] or declare(route, Access.OPEN).
    Then add it to ROUTES and CALLS (this test says the line once it is declared)."""
_TEAMS = """    It is a read route whose handler does not take `principal: ReadPrincipal`, so the
    gatekeeper refuses team-scoped tokens there (403). If it answers rows of tasks, attempts,
    spans, signals or costs, or anything computed from them, make the handler take
    `principal: ReadPrincipal` and keep to principal.teams (service.access.team_filter,
    Principal.sees, or service.sql for SQL); then it declares teams=True: add it to
    tests/service/test_access_leaks.py too."""


def table_problems(routes: list[Any]) -> list[str]:
    """What the app's routes and ``ROUTES``/``CALLS`` disagree on, each said with what to
    change (the message the next person adding a route reads)."""
    problems = []
    seen: dict[tuple[str, str], Declared | None] = {}
    for route in routes:
        key = _key(route)
        found = seen[key] = _declared(route)
        accesses = sorted(str(a) for a in declared_access(route))
        if found is None:
            what = f"declares {accesses}" if accesses else "declares no access"
            problems.append(f"{key} {what}: the gatekeeper refuses everyone there.\n{_HOW}")
            continue
        if key not in ROUTES:
            line = f"NEW ROUTE {key}: it declares {found!r}. Add to ROUTES:\n"
            line += f"        {key!r}: {found!r},\n"
            method = key[1].split(",")[0].replace("*", "POST")
            line += "    and to CALLS (a real path for path parameters, a body for POST):\n"
            line += f"        {key[0]!r}: ({method!r}, {key[0]!r}, None),"
            if found.access is Access.READ and not found.teams:
                line += "\n" + _TEAMS
            problems.append(line)
        elif ROUTES[key] != found:
            problems.append(
                f"CHANGED {key}: ROUTES says {ROUTES[key]!r}, the app declares {found!r}."
                " If that is intended, update ROUTES."
            )
    for key in ROUTES.keys() - seen.keys():
        problems.append(f"GONE {key}: in ROUTES, not in the app: remove it from ROUTES and CALLS.")
    for path in {p for p, _ in ROUTES} - CALLS.keys():
        problems.append(f"CALLS has no way to call {path!r}: add (method, path, body).")
    return problems


def test_every_route_is_in_the_table(server: tuple[str, Any]) -> None:
    _, app = server
    problems = table_problems(app_routes(app.router))
    assert not problems, "\n\n".join(
        ["Every route must be classified (tests/service/test_access_routes.py):", *problems]
    )


def _call(base: str, route: str, who: str | None) -> requests.Response:
    method, path, body = CALLS[route]
    headers = bearer(who) if who else {}
    return requests.request(method, base + path, json=body, headers=headers, timeout=60)


@pytest.mark.parametrize("route", sorted(path for path, _ in ROUTES))
def test_each_route_takes_whom_it_declares(server: tuple[str, Any], route: str) -> None:
    base, _ = server
    access, teams = next(d for (p, _), d in ROUTES.items() if p == route)
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
    if access is Access.READ:
        team_scoped = _call(base, route, "cx-reader")
        if teams:
            assert team_scoped.status_code not in (401, 403), team_scoped.text
        else:
            assert team_scoped.status_code == 403 and "limited to teams" in team_scoped.text


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
        assert declared_access(route) == frozenset()
        (problem,) = table_problems(app_routes(app.router))  # what the table test says
        assert "('/api/v1/sneaky', 'GET') declares no access" in problem
        assert "service.api.read_routers" in problem and "Access.OPEN" in problem
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


def test_a_read_route_keeps_teams_or_refuses_them(tmp_path: Path) -> None:
    """A read route mounted as ``install_read_api`` mounts them, whose handler does not take
    the caller: team-scoped tokens are refused, and the table test says what to do."""
    settings = access_settings(tmp_path / "lake")
    db = Database(settings, store=False)
    app = _app(settings, db)
    compare = APIRouter()

    @compare.get("/api/v1/example")
    def every_team() -> dict[str, str]:
        return {"rows": "every team's"}

    app.include_router(compare, dependencies=[needs(Access.READ)])
    try:
        (problem,) = table_problems(app_routes(app.router))
        assert problem.startswith("NEW ROUTE ('/api/v1/example', 'GET')")
        assert "('/api/v1/example', 'GET'): Declared(Access.READ)," in problem
        assert "principal: ReadPrincipal" in problem and "test_access_leaks.py" in problem
        with serve_app(app) as base:
            for who in ("reader", "legacy"):
                resp = requests.get(base + "/api/v1/example", headers=bearer(who))
                assert resp.status_code == 200, resp.text
            for who in ("cx-reader", "fin-reader"):
                resp = requests.get(base + "/api/v1/example", headers=bearer(who))
                assert resp.status_code == 403 and "every team" not in resp.text
                assert "limited to teams" in resp.json()["error"]["message"]
            resp = requests.get(base + "/api/v1/example", headers=bearer("admin"))
            assert resp.status_code == 403 and "read scope" in resp.text
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
