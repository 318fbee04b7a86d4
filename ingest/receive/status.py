"""The one place an ``IngestError`` becomes what a client sees, over HTTP and over gRPC.

Both carry a ``google.rpc.Status`` (code, message, details). HTTP sends it as the body in the
request's encoding, with ``Retry-After`` on 503 (an integer: every exporter parses that form).
gRPC sends the code and message as the call status and the Status in ``grpc-status-details-bin``;
a retryable error also carries ``google.rpc.RetryInfo``, both inside that Status and in the
``google.rpc.retryinfo-bin`` trailer, which is the only place the Python exporter looks.

An exception that is not an ``IngestError`` is a bug or an environmental failure we did not
foresee; nothing of the request was acknowledged, so it is reported as retryable (503 /
UNAVAILABLE), like the Collector does, never as a 500 that clients would treat as permanent.
Bad *input* never takes that road: the decoders (``otlp_json``, the receivers' protobuf
decoding) turn everything a body can make them raise into ``BadRequest``, and validation
(``ingest.receive.validate``) refuses per span, so a malformed request is answered 400 /
INVALID_ARGUMENT with its reason and is not retried forever (a property test posts arbitrary
bodies and asserts no 5xx: ``tests/ingest/test_fuzz_http.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status

from ingest.errors import IngestError, MethodNotAllowed, Overloaded, Unauthenticated
from ingest.receive.otlp_json import to_otlp_json

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

GRPC_DETAILS_KEY = "grpc-status-details-bin"
GRPC_RETRY_INFO_KEY = "google.rpc.retryinfo-bin"


@dataclass(frozen=True)
class HttpError:
    """Status line, headers and body of an HTTP error response."""

    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GrpcError:
    """Code, details and trailing metadata of a failed gRPC call."""

    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, bytes], ...]


def as_ingest_error(exc: BaseException) -> IngestError:
    """``exc`` itself when it is an ``IngestError``, else a retryable stand-in (see module doc)."""
    if isinstance(exc, IngestError):
        return exc
    return Overloaded(f"internal error ({type(exc).__name__}); nothing was stored, retry later")


def retry_info(err: IngestError) -> RetryInfo | None:
    """The delay a client should wait, for retryable errors only."""
    if not err.retryable:
        return None
    return RetryInfo(retry_delay=Duration(seconds=retry_after_seconds(err)))


def retry_after_seconds(err: IngestError) -> int:
    return max(1, int(err.retry_after or 1))


def rpc_status(err: IngestError) -> Status:
    status = Status(code=err.grpc_code.value[0], message=err.message)
    info = retry_info(err)
    if info is not None:
        detail = AnyMessage()
        detail.Pack(info)
        status.details.append(detail)
    return status


def error_headers(err: IngestError) -> dict[str, str]:
    """The HTTP headers every ingest route sends with ``err`` (OTLP and REST alike)."""
    headers: dict[str, str] = {}
    if err.retryable:
        headers["Retry-After"] = str(retry_after_seconds(err))
    if isinstance(err, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="tasklake"'
    if isinstance(err, MethodNotAllowed):
        headers["Allow"] = "POST"
    return headers


def http_error(err: IngestError, *, as_json: bool) -> HttpError:
    """The HTTP response for ``err``; the Status body in JSON or protobuf like the request."""
    status = rpc_status(err)
    headers = error_headers(err)
    if as_json:
        return HttpError(err.http_status, to_otlp_json(status), JSON, headers)
    return HttpError(err.http_status, status.SerializeToString(), PROTOBUF, headers)


def grpc_error(err: IngestError) -> GrpcError:
    """The gRPC status for ``err``, with the Status (and RetryInfo) in the trailers."""
    status = rpc_status(err)
    trailers: list[tuple[str, bytes]] = [(GRPC_DETAILS_KEY, status.SerializeToString())]
    info = retry_info(err)
    if info is not None:
        trailers.append((GRPC_RETRY_INFO_KEY, info.SerializeToString()))
    return GrpcError(err.grpc_code, err.message, tuple(trailers))
