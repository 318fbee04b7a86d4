"""The dashboard at ``/``: static files only, served by the same process as the API.

The page holds no figure of its own: its scripts (``static/js``) read the public REST
endpoints a user scripts against (``/api/v1/...``, with the user's bearer token when one is
given), so what it shows and what a script gets are the same numbers. No build step: the
files here are what the browser runs (ES modules, hand-written SVG charts), so the page
works offline and a new user runs nothing to get it.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).with_name("static")
#: Only the page's own files run; data comes from this origin's API.
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def _index(request: Request) -> FileResponse:
    return FileResponse(STATIC / "index.html", headers=HEADERS)


def dashboard_routes() -> list[BaseRoute]:
    """``/`` (the page) and ``/dashboard/...`` (its scripts, styles and icon)."""
    return [
        Route("/", _index, methods=["GET", "HEAD"], include_in_schema=False),
        Mount("/dashboard", StaticFiles(directory=STATIC), name="dashboard"),
    ]
