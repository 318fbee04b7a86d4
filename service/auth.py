"""Bearer-token check for the REST API (the OTLP routes check tokens themselves).

A missing token is 401 (the client did not say who it is), a wrong one 403; both answer the
API's one error shape. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send


def token_status(header: str | None, tokens: tuple[str, ...]) -> int:
    """200 when ``header`` carries one of ``tokens``, else 401 (missing) or 403 (wrong)."""
    if not header:
        return 401
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return 401
    token = token.strip()
    ok = False
    for candidate in tokens:
        ok |= hmac.compare_digest(token.encode(), candidate.encode())
    return 200 if ok else 403


class BearerAuthMiddleware:
    def __init__(self, app: ASGIApp, tokens: tuple[str, ...], prefix: str) -> None:
        self.app = app
        self.tokens = tokens
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        status = token_status(header, self.tokens)
        if status == 200:
            await self.app(scope, receive, send)
            return
        message = "missing bearer token" if status == 401 else "invalid bearer token"
        body = json.dumps({"error": {"status": status, "message": message}}).encode()
        headers = [(b"content-type", b"application/json")]
        if status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="tasklake"'))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
