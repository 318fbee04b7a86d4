"""The ingest scope, checked by every receiver (OTLP/HTTP, OTLP/gRPC, the write API) in its own
error format; the rule is ``schemas.auth``."""

from __future__ import annotations

from ingest.errors import Forbidden, Unauthenticated
from schemas.auth import Principal, Scope
from schemas.settings import Settings


def ingest_principal(header: str | None, settings: Settings) -> Principal:
    """Who sends this request, if they may send (scope ``ingest``); else raise 401/403."""
    verdict = settings.authenticator.authorize(header, (Scope.INGEST,))
    if verdict.status == 401:
        raise Unauthenticated(verdict.message)
    if verdict.principal is None:
        raise Forbidden(verdict.message)
    return verdict.principal
