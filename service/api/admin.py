"""``GET /api/v1/admin/settings``: the settings in force, for the ``admin`` scope.

Every declared setting with its value, except secrets: ``auth_tokens`` shows how many there
are, and each ``[[tokens]]`` entry its name, scopes and teams (never its digest)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from schemas.settings import SETTINGS, Settings
from service.access import AdminPrincipal
from service.api.openapi import errors
from service.api.render import json_response

router = APIRouter()


def settings_document(settings: Settings) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for s in SETTINGS:
        value = getattr(settings, s.name)
        if s.name == "auth_tokens":
            value = f"{len(value)} token(s), secrets not shown"
        values[s.name] = list(value) if isinstance(value, tuple) else value
    return {
        "settings": values,
        "config_file": settings.config_file,
        "tokens": [
            {"name": p.name, "scopes": sorted(str(x) for x in p.scopes), "teams": p.team_list()}
            for p in settings.authenticator.principals
        ],
        "workflows": sorted(settings.workflows),
        "prices": [p.ref for p in settings.prices],
    }


@router.get("/api/v1/admin/settings", responses=errors(401, 403), response_model=None)
def admin_settings(request: Request, principal: AdminPrincipal) -> Response:
    """The settings in force (secrets left out)."""
    del principal  # declared: the admin scope
    return json_response(settings_document(request.app.state.db.settings))
