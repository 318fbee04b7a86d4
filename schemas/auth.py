"""The bearer-token rule every entry point applies (OTLP/HTTP, OTLP/gRPC, REST API).

Clients send ``authorization: Bearer <token>`` (``OTEL_EXPORTER_OTLP_HEADERS`` for exporters).
No token, or another scheme, is 401 — the client did not say who it is; a token we do not know
is 403. Tokens are compared in constant time, all of them every time.
"""

from __future__ import annotations

import hmac
from typing import Literal

Verdict = tuple[Literal[200, 401, 403], str]


def bearer_verdict(header: str | None, tokens: tuple[str, ...]) -> Verdict:
    """(200, "") when auth is off or ``header`` carries one of ``tokens``; else (401|403, why)."""
    if not tokens:
        return 200, ""
    if not header:
        return 401, "missing bearer token (authorization: Bearer <token>)"
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return 401, "authorization must be 'Bearer <token>'"
    presented = token.encode()
    ok = False
    for candidate in tokens:
        ok |= hmac.compare_digest(presented, candidate.encode())
    return (200, "") if ok else (403, "invalid bearer token")
