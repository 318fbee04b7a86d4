"""The audit log: one JSON line per read through a token, per refusal, and per settings change.

Lines go to the ``tasklake.audit`` logger at INFO: with ``audit_log = "-"`` (the default)
through the process's log handlers (stderr), with a path appended to that file only, with
``"off"`` nowhere. A line names the token, never its secret::

    {"event": "read", "token": "support-dashboard", "teams": ["support"], "method": "POST",
     "route": "/api/v1/query", "path": "/api/v1/query", "status": 200, "rows": 12,
     "sql": "SELECT ...", "request_id": "...", "client": "10.0.0.7", "at": "..."}

``event`` is ``read`` (a checked request that was served, whatever its status), ``refused``
(401/403 at the gate: ``token`` is null when no known token was presented), or ``settings``
(the settings in force at start-up: every token's name, scopes and teams — a change of config
shows as a new line on restart). A handler adds what it knows with ``note(request, ...)``
(rows answered, the SQL asked).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.types import Scope

from schemas.auth import Principal
from schemas.settings import Settings

log = logging.getLogger("tasklake.audit")

#: Longest SQL text an audit line carries.
MAX_SQL = 4096


def note(request: Request, **fields: Any) -> None:
    """Add ``fields`` to this request's audit line."""
    request.scope.setdefault("state", {}).setdefault("audit", {}).update(fields)


class Audit:
    """Writes audit lines (see module doc); configures the ``tasklake.audit`` logger."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.audit_log != "off"
        log.setLevel(logging.INFO if self.enabled else logging.CRITICAL + 1)
        for handler in list(log.handlers):
            if getattr(handler, "tasklake_audit", False):
                log.removeHandler(handler)
                handler.close()
        log.propagate = True
        if self.enabled and settings.audit_log != "-":
            handler = logging.FileHandler(settings.audit_log, encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(message)s"))
            handler.tasklake_audit = True  # type: ignore[attr-defined]
            log.addHandler(handler)
            log.propagate = False

    def event(self, event: str, **fields: Any) -> None:
        if not self.enabled:
            return
        line = {"event": event, **fields, "at": datetime.now(UTC).isoformat()}
        log.info("%s", json.dumps(line, default=str, ensure_ascii=False))

    def request(
        self,
        scope: Scope,
        route: str,
        principal: Principal | None,
        status: int,
        message: str = "",
    ) -> None:
        """The line of one request the gatekeeper checked (``principal`` None: refused)."""
        if not self.enabled:
            return
        state = scope.get("state") or {}
        extra = dict(state.get("audit") or {})
        if isinstance(extra.get("sql"), str):
            extra["sql"] = extra["sql"][:MAX_SQL]
        client = scope.get("client")
        query = scope.get("query_string", b"").decode("latin-1")
        self.event(
            "read" if principal is not None else "refused",
            token=principal.name if principal is not None else None,
            teams=principal.team_list() if principal is not None else None,
            method=scope.get("method"),
            route=route,
            path=scope.get("path"),
            query=query or None,
            status=status,
            **({"reason": message} if message else {}),
            **extra,
            request_id=state.get("request_id"),
            client=client[0] if client else None,
        )

    def settings_loaded(self, settings: Settings) -> None:
        """The settings in force (tokens by name: never a secret or its digest)."""
        self.event(
            "settings",
            config_file=settings.config_file,
            host=settings.host,
            insecure=settings.insecure,
            probe_networks=list(settings.probe_networks),
            tokens=[
                {
                    "name": p.name,
                    "scopes": sorted(str(s) for s in p.scopes),
                    "teams": p.team_list(),
                }
                for p in settings.authenticator.principals
            ],
        )
