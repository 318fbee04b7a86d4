"""Bearer-token check shared by the OTLP/HTTP and OTLP/gRPC receivers (rule: ``schemas.auth``)."""

from __future__ import annotations

from ingest.errors import Forbidden, Unauthenticated
from schemas.auth import bearer_verdict


def check_bearer(header: str | None, tokens: tuple[str, ...]) -> None:
    """Return when auth is off or ``header`` carries one of ``tokens``; raise otherwise."""
    status, message = bearer_verdict(header, tokens)
    if status == 401:
        raise Unauthenticated(message)
    if status == 403:
        raise Forbidden(message)
