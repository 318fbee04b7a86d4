"""One exception hierarchy for everything ingest can refuse, mapped once to HTTP and gRPC.

Every error says whether a client may retry it. The mapping follows the OTLP specification:
only 503/UNAVAILABLE (with Retry-After / RetryInfo) is a retryable throttle; malformed data is
permanent (400/INVALID_ARGUMENT); nothing transient is ever reported as 500.
"""

from __future__ import annotations

import grpc


class IngestError(Exception):
    """Base: carries its HTTP status, gRPC code and whether a retry can succeed."""

    http_status = 400
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    retryable = False

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class BadRequest(IngestError):
    """The payload cannot be decoded or violates the protocol: do not retry."""


class UnsupportedMediaType(IngestError):
    http_status = 415


class UnsupportedEncoding(IngestError):
    """Unknown Content-Encoding: the spec says 400."""


class PayloadTooLarge(IngestError):
    http_status = 413
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unauthenticated(IngestError):
    http_status = 401
    grpc_code = grpc.StatusCode.UNAUTHENTICATED


class Forbidden(IngestError):
    http_status = 403
    grpc_code = grpc.StatusCode.PERMISSION_DENIED


class NotFound(IngestError):
    http_status = 404
    grpc_code = grpc.StatusCode.UNIMPLEMENTED


class MethodNotAllowed(IngestError):
    http_status = 405
    grpc_code = grpc.StatusCode.UNIMPLEMENTED


class Overloaded(IngestError):
    """Back-pressure (WAL backlog, shutting down, disk trouble): retry after a pause."""

    http_status = 503
    grpc_code = grpc.StatusCode.UNAVAILABLE
    retryable = True

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message, retry_after=retry_after)
