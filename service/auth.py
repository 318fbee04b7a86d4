"""Bearer-token check for the REST API (the OTLP routes check tokens themselves); the rule is
``schemas.auth``, the answer the API's one error shape."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from schemas.auth import bearer_verdict


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
        status, message = bearer_verdict(header, self.tokens)
        if status == 200:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": {"status": status, "message": message}}).encode()
        headers = [(b"content-type", b"application/json")]
        if status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="tasklake"'))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
