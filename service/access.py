"""Who may call which route: every route declares its access, and the gatekeeper enforces it.

**Fail closed.** ``Gatekeeper`` (an ASGI middleware around the whole app) finds the route a
request is for, as Starlette's router will, and reads that route's declared access. A route
that declares none is refused (403) and logged: an endpoint added without scoping answers
nobody, and ``tests/service/test_access_routes.py`` enumerates the app's routes against a
table, so it also fails the suite. Declaring is one line:

- a FastAPI route or router: ``dependencies=[needs(Access.READ)]``, or a parameter
  ``principal: ReadPrincipal`` (the caller, for team filters). Every router of
  ``service.api.read_routers`` is included with ``needs(Access.READ)``: read is the default;
- a plain Starlette route or mount (static files, the ingest side's routes):
  ``declare(route, Access.OPEN)``.

The kinds of access:

========== =================================================================================
OPEN       anyone (``/healthz``, assets holding no data)
INGEST     the route checks the ``ingest`` scope itself, in its protocol's error format
           (OTLP Status bodies, gRPC codes): the ingest side's routes
TOKEN      any valid token (the API's description: ``/api/openapi.json``, ``/api/docs``)
PROBE      any valid token, or a client in ``probe_networks`` (``/readyz``)
READ       the ``read`` scope; team-scoped tokens see their teams' rows only
ADMIN      the ``admin`` scope (settings)
METRICS    the ``admin`` scope, or a client in ``probe_networks`` (``/metrics``)
========== =================================================================================

**Teams.** A ``read`` route serves a team-scoped token only when it says it keeps such a
caller to its teams' rows: its handler takes ``principal: ReadPrincipal`` (and filters by
``principal.teams``: ``team_filter``, ``Principal.sees``, or ``service.sql`` for SQL). A read
route mounted through ``read_routers`` alone does not: a team-scoped token is refused there
(403) until the handler does, so a new endpoint never shows one team another's rows.

A route declaring several needs all of them. A path no route matches (as FastAPI matches them,
``app_routes``) is answered 404 by the gatekeeper itself. The gatekeeper leaves the caller in
``scope["state"]["principal"]`` (what ``needs`` returns to the handler) and writes one audit
line per request it checked (``service.audit``); INGEST and OPEN routes are not audited (the
write path is the hot path; nothing is read there).
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.auth import Principal
from schemas.auth import Scope as TokenScope
from schemas.settings import Settings
from service.audit import Audit
from service.errors import ApiError, error_body, request_id

log = logging.getLogger("tasklake.http")

_ATTRIBUTE = "tasklake_access"


class Access(StrEnum):
    OPEN = "open"
    INGEST = "ingest"
    TOKEN = "token"
    PROBE = "probe"
    READ = "read"
    ADMIN = "admin"
    METRICS = "metrics"


#: The token scope each kind needs (OPEN, INGEST: none checked here).
_SCOPES: Mapping[Access, tuple[TokenScope, ...]] = {
    Access.TOKEN: (),
    Access.PROBE: (),
    Access.READ: (TokenScope.READ,),
    Access.ADMIN: (TokenScope.ADMIN,),
    Access.METRICS: (TokenScope.ADMIN,),
}
#: The kinds a client of ``probe_networks`` passes without a token.
_PROBES = frozenset({Access.PROBE, Access.METRICS})


class _Needs:
    """The FastAPI dependency that declares a route's access and hands it the caller the
    gatekeeper checked; ``keeps_teams``: the handler keeps a team-scoped caller to its teams."""

    def __init__(self, access: Access, keeps_teams: bool = False) -> None:
        self.access = access
        self.keeps_teams = keeps_teams

    def __call__(self, request: Request) -> Principal:
        if self.access is Access.OPEN:
            return NOBODY
        principal = request.scope.get("state", {}).get("principal")
        if not isinstance(principal, Principal):
            # only when the app was assembled without the gatekeeper: refuse, never serve
            raise ApiError(403, "access is not checked on this server (no gatekeeper)")
        return principal


_NEEDS = {access: _Needs(access) for access in Access}
#: The caller of an open route: it may do nothing and sees no team.
NOBODY = Principal("nobody", frozenset(), frozenset())


def needs(access: Access) -> Any:
    """``Depends(...)`` declaring ``access``; as a parameter it gives the caller."""
    return Depends(_NEEDS[access])


#: The caller of a read handler that keeps a team-scoped caller to its teams' rows.
ReadPrincipal = Annotated[Principal, Depends(_Needs(Access.READ, keeps_teams=True))]
AdminPrincipal = Annotated[Principal, needs(Access.ADMIN)]


def declare(route: BaseRoute, access: Access) -> BaseRoute:
    """Declare the access of a plain Starlette route or mount; returns it."""
    setattr(route, _ATTRIBUTE, access)
    return route


def _dependency_needs(dependant: Dependant | None) -> list[_Needs]:
    found: list[_Needs] = []
    for dep in dependant.dependencies if dependant is not None else ():
        if isinstance(dep.call, _Needs):
            found.append(dep.call)
        found.extend(_dependency_needs(dep))
    return found


def _needs_of(route: Any) -> list[_Needs]:
    found = _dependency_needs(getattr(route, "dependant", None))
    for dep in getattr(route, "dependencies", None) or ():
        if isinstance(getattr(dep, "dependency", None), _Needs):
            found.append(dep.dependency)
    return found


def declared_access(route: Any) -> frozenset[Access]:
    """Everything ``route`` (a route, or FastAPI's context of an included one) declares;
    empty: nothing — the gatekeeper refuses it."""
    found: set[Access] = set()
    for target in (route, getattr(route, "original_route", None)):
        explicit = getattr(target, _ATTRIBUTE, None)
        if isinstance(explicit, Access):
            found.add(explicit)
    found |= {n.access for n in _needs_of(route)}
    return frozenset(found)


def keeps_teams(route: Any) -> bool:
    """Whether ``route``'s handler keeps a team-scoped caller to its teams (it takes
    ``principal: ReadPrincipal``); a read route that does not refuses such a caller."""
    return any(n.keeps_teams for n in _needs_of(route))


def app_routes(router: Router) -> list[Any]:
    """Every route the app serves, as FastAPI selects them: the routes of included routers
    (with their router's dependencies), then the low-priority ones (frontends) last."""
    routes: list[Any] = list(iter_route_contexts(router.routes))
    low = getattr(router, "_iter_low_priority_routes", None)
    if low is not None:
        routes.extend(low())
    return routes


def route_for(routes: Iterable[Any], scope: Scope) -> Any | None:
    """The route ``scope`` goes to: the first full match, else the first partial one (a
    method it does not allow: the route answers 405); None: no route."""
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return route
        if match == Match.PARTIAL and partial is None:
            partial = route
    return partial


def team_filter(principal: Principal, requested: list[str] | None) -> list[str] | None:
    """The teams a read covers: ``requested`` (a ``team=`` filter), within the caller's.
    A team-scoped caller asking for no team gets its own; one outside its teams is 403."""
    if principal.teams is None:
        return requested
    if requested is None:
        return sorted(principal.teams)
    outside = [t for t in requested if t not in principal.teams]
    if outside:
        raise ApiError(403, f"team: '{outside[0]}' is not one of token '{principal.name}''s teams")
    return requested


class Gatekeeper:
    """The ASGI middleware enforcing each route's declared access (see module doc)."""

    def __init__(self, app: ASGIApp, *, router: Router, settings: Settings, audit: Audit) -> None:
        self.app = app
        self.router = router
        self.settings = settings
        self.authenticator = settings.authenticator
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_for(app_routes(self.router), scope)
        if route is None:  # no route: the gatekeeper answers, so no route it cannot see runs
            await self._refuse(scope, send, 404, "not found")
            return
        accesses = declared_access(route)
        path = str(getattr(route, "path", scope.get("path", "")))
        if not accesses:
            log.error("route %s declares no access: refused (service.access)", path)
            await self._refuse(scope, send, 403, "this endpoint declares no access: refused")
            return
        if accesses <= {Access.OPEN} or Access.INGEST in accesses:
            await self.app(scope, receive, send)
            return
        principal = self._probe(scope) if accesses <= _PROBES else None
        if principal is None:
            needed = {s for a in accesses for s in _SCOPES[a]}
            verdict = self.authenticator.authorize(_header(scope), needed)
            if verdict.principal is None:
                self.audit.request(scope, path, None, verdict.status, verdict.message)
                await self._refuse(scope, send, verdict.status, verdict.message)
                return
            principal = verdict.principal
            if Access.READ in accesses and principal.scoped and not keeps_teams(route):
                why = (
                    f"token '{principal.name}' is limited to teams and this endpoint does not"
                    " keep to a token's teams: use a token without teams"
                )
                self.audit.request(scope, path, None, 403, why)
                await self._refuse(scope, send, 403, why)
                return
        state = scope.setdefault("state", {})
        state["principal"] = principal
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.audit.request(scope, path, principal, status)

    def _probe(self, scope: Scope) -> Principal | None:
        """The caller as a probe network's client, when it is one."""
        client = scope.get("client")
        nets = self.settings.probe_nets
        if not nets or not client:
            return None
        try:
            address = ipaddress.ip_address(client[0])
        except ValueError:
            return None
        if any(address in net for net in nets):
            return Principal(f"probe-network:{address}", frozenset(), frozenset())
        return None

    @staticmethod
    async def _refuse(scope: Scope, send: Send, status: int, message: str) -> None:
        body = json.dumps(error_body(status, message, request_id(scope))).encode()
        headers = [(b"content-type", b"application/json")]
        if status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="tasklake"'))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _header(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            text: str = value.decode("latin-1")
            return text
    return None
