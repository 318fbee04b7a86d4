"""The error table: what each refusal looks like over HTTP and over gRPC. Changing a row here
changes what every exporter does on that error, so it is pinned."""

from __future__ import annotations

import json

import grpc
import pytest
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status

from ingest.errors import (
    BadRequest,
    Forbidden,
    IngestError,
    MethodNotAllowed,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedEncoding,
    UnsupportedMediaType,
)
from ingest.receive.status import (
    GRPC_DETAILS_KEY,
    GRPC_RETRY_INFO_KEY,
    as_ingest_error,
    grpc_error,
    http_error,
)

S = grpc.StatusCode

# error, HTTP status, gRPC code, extra HTTP headers
TABLE: list[tuple[IngestError, int, grpc.StatusCode, dict[str, str]]] = [
    (BadRequest("undecodable"), 400, S.INVALID_ARGUMENT, {}),
    (UnsupportedEncoding("br"), 400, S.INVALID_ARGUMENT, {}),
    (UnsupportedMediaType("text/plain"), 415, S.INVALID_ARGUMENT, {}),
    (PayloadTooLarge("big"), 413, S.RESOURCE_EXHAUSTED, {}),
    (
        Unauthenticated("who?"),
        401,
        S.UNAUTHENTICATED,
        {"WWW-Authenticate": 'Bearer realm="tasklake"'},
    ),
    (Forbidden("no"), 403, S.PERMISSION_DENIED, {}),
    (NotFound("where?"), 404, S.UNIMPLEMENTED, {}),
    (MethodNotAllowed("GET"), 405, S.UNIMPLEMENTED, {"Allow": "POST"}),
    (Overloaded("busy", retry_after=7), 503, S.UNAVAILABLE, {"Retry-After": "7"}),
]


@pytest.mark.parametrize(("err", "http", "code", "headers"), TABLE)
def test_http_mapping(
    err: IngestError, http: int, code: grpc.StatusCode, headers: dict[str, str]
) -> None:
    out = http_error(err, as_json=False)
    assert (out.status, out.headers, out.content_type) == (http, headers, "application/x-protobuf")
    status = Status.FromString(out.body)
    assert (status.code, status.message) == (code.value[0], err.message)


@pytest.mark.parametrize(("err", "http", "code", "headers"), TABLE)
def test_http_json_body_is_the_same_status(
    err: IngestError, http: int, code: grpc.StatusCode, headers: dict[str, str]
) -> None:
    out = http_error(err, as_json=True)
    assert (out.status, out.content_type) == (http, "application/json")
    body = json.loads(out.body)
    assert (body["code"], body["message"]) == (code.value[0], err.message)


@pytest.mark.parametrize(("err", "http", "code", "headers"), TABLE)
def test_grpc_mapping(
    err: IngestError, http: int, code: grpc.StatusCode, headers: dict[str, str]
) -> None:
    out = grpc_error(err)
    assert (out.code, out.details) == (code, err.message)
    trailers = dict(out.trailing_metadata)
    status = Status.FromString(trailers[GRPC_DETAILS_KEY])
    assert (status.code, status.message) == (code.value[0], err.message)
    assert (GRPC_RETRY_INFO_KEY in trailers) == err.retryable


def test_only_overload_is_retryable() -> None:
    assert [err for err, *_ in TABLE if err.retryable] == [TABLE[-1][0]]


def test_retry_info_rides_in_the_status_and_in_its_own_trailer() -> None:
    out = grpc_error(Overloaded("busy", retry_after=3))
    trailers = dict(out.trailing_metadata)
    assert RetryInfo.FromString(trailers[GRPC_RETRY_INFO_KEY]).retry_delay.seconds == 3
    status = Status.FromString(trailers[GRPC_DETAILS_KEY])
    info = RetryInfo()
    assert status.details[0].Unpack(info)
    assert info.retry_delay.seconds == 3

    http_status = Status.FromString(
        http_error(Overloaded("busy", retry_after=3), as_json=False).body
    )
    assert http_status.details[0].Unpack(info) and info.retry_delay.seconds == 3
    body = json.loads(http_error(Overloaded("busy", retry_after=3), as_json=True).body)
    assert body["details"] == [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"}
    ]


def test_unexpected_exceptions_are_retryable_never_500() -> None:
    err = as_ingest_error(OSError("disk went away"))
    out = http_error(err, as_json=False)
    assert out.status == 503
    assert out.headers["Retry-After"].isdigit()
    assert grpc_error(err).code == S.UNAVAILABLE
    assert "disk went away" not in err.message  # internals stay in the log


def test_ingest_errors_pass_through_unchanged() -> None:
    err = BadRequest("x")
    assert as_ingest_error(err) is err
