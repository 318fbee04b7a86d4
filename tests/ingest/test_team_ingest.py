"""Ingest tokens: only the ingest scope sends, and a team-scoped one only for its teams —
spans through OTLP partial success (HTTP and gRPC), cost entries and signals item by item
(403 when none may be stored), log signals refused."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace

import grpc
import pytest
import requests
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from ingest.receive.teams import team_reader
from schemas.settings import Settings
from schemas.signals import Signal
from tests.ingest.otlp_builders import kv, logs_request, trace_request
from tests.ingest.receiver_harness import TEST_SETTINGS, ReceiverServer
from tests.service.access_env import TOKENS, bearer


class Teams:
    """The read side's answer: S1 is cx's, B1 is fin's, the rest unknown."""

    error: Exception | None = None

    def task_teams(self, signals: Sequence[Signal]) -> Mapping[str, str | None]:
        if self.error is not None:
            raise self.error
        known = {"S1": "cx", "B1": "fin"}
        return {s.signal_id: known[s.task_id] for s in signals if s.task_id in known}


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ReceiverServer, Teams]]:
    teams = Teams()
    settings = replace(TEST_SETTINGS, tokens=TOKENS)
    server = ReceiverServer(settings, task_teams=teams).start()
    yield server, teams
    server.stop()


def _mixed() -> ExportTraceServiceRequest:
    """Six spans: two of cx, one of fin, one of no team, two of cx by their resource."""
    request = trace_request(4)
    spans = request.resource_spans[0].scope_spans[0].spans
    spans[0].attributes.append(kv("team.id", "cx"))
    spans[1].attributes.append(kv("metadata", json.dumps({"team.name": "cx"})))
    spans[2].attributes.append(kv("team.name", "fin"))
    other = trace_request(2).resource_spans[0]
    other.resource.attributes.append(kv("service.namespace", "cx"))
    request.resource_spans.append(other)
    return request


def _post(
    server: ReceiverServer, path: str, body: bytes, who: str, ctype: str
) -> requests.Response:
    headers = {"content-type": ctype, **bearer(who)}
    return requests.post(server.url + path, data=body, headers=headers, timeout=30)


def test_only_the_ingest_scope_sends(server: tuple[ReceiverServer, Teams]) -> None:
    receiver, _ = server
    receiver.sink.reset()
    body = trace_request(1).SerializeToString()
    for path in ("/v1/traces", "/v1/logs", "/v1/metrics"):
        refused = _post(receiver, path, body, "reader", "application/x-protobuf")
        assert refused.status_code == 403, refused.text
    for path in ("/api/v1/signals", "/api/v1/costs"):
        refused = _post(receiver, path, b"[]", "admin", "application/json")
        assert refused.status_code == 403 and "ingest scope" in refused.text
    with grpc.insecure_channel(receiver.grpc_target) as channel, pytest.raises(grpc.RpcError) as e:
        TraceServiceStub(channel).Export(  # type: ignore[no-untyped-call]
            trace_request(1), metadata=tuple(bearer("reader").items()), timeout=30
        )
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert not receiver.sink.traces and not receiver.sink.rows


def test_team_spans_through_partial_success(server: tuple[ReceiverServer, Teams]) -> None:
    receiver, _ = server
    receiver.sink.reset()
    resp = _post(receiver, "/v1/traces", _mixed().SerializeToString(), "cx-gateway",
                 "application/x-protobuf")  # fmt: skip
    answer = ExportTraceServiceResponse.FromString(resp.content)
    assert answer.partial_success.rejected_spans == 2
    assert "names no team" in answer.partial_success.error_message
    assert "team 'fin'" in answer.partial_success.error_message
    assert len(receiver.sink.spans) == 4
    assert receiver.sink.traces[-1][1] is None  # the request changed: no raw bytes passed on
    # gRPC: the same rule through the same code
    with grpc.insecure_channel(receiver.grpc_target) as channel:
        reply = TraceServiceStub(channel).Export(  # type: ignore[no-untyped-call]
            _mixed(), metadata=tuple(bearer("cx-gateway").items()), timeout=30
        )
    assert reply.partial_success.rejected_spans == 2 and len(receiver.sink.spans) == 8
    # an unscoped token sends everything, raw bytes untouched
    receiver.sink.reset()
    whole = _mixed().SerializeToString()
    resp = _post(receiver, "/v1/traces", whole, "gateway", "application/x-protobuf")
    assert ExportTraceServiceResponse.FromString(resp.content).partial_success.rejected_spans == 0
    assert len(receiver.sink.spans) == 6 and receiver.sink.traces[-1][1] == whole


def test_team_read_follows_the_converters_precedence() -> None:
    read = team_reader(Settings())
    first = [kv("team.name", "b"), kv("team.id", "a")]  # team.id comes first in team_keys
    assert read(first) == "a"
    assert read([kv("metadata", '{"team.id": "m"}')]) == "m"
    assert read([kv("team.id", 7)]) == "7" and read([kv("other", "x")]) is None


def test_team_cost_entries(server: tuple[ReceiverServer, Teams]) -> None:
    receiver, _ = server
    receiver.sink.reset()
    entry = {"component": "labor", "amount_usd": "1", "period_start": "2026-01-01",
             "period_end": "2026-02-01"}  # fmt: skip
    body = [{**entry, "team": "cx"}, {**entry, "team": "fin"}, entry]
    resp = _post(receiver, "/api/v1/costs", json.dumps(body).encode(), "cx-gateway",
                 "application/json")  # fmt: skip
    doc = resp.json()
    assert resp.status_code == 200 and doc["accepted"] == 1
    assert [r["index"] for r in doc["rejected"]] == [1, 2]
    assert "'fin' is not one of" in doc["rejected"][0]["error"]
    assert "every team" in doc["rejected"][1]["error"]
    refused = _post(receiver, "/api/v1/costs", json.dumps(body[1:]).encode(), "cx-gateway",
                    "application/json")  # fmt: skip
    assert refused.status_code == 403 and refused.json()["accepted"] == 0
    everything = _post(receiver, "/api/v1/costs", json.dumps(body).encode(), "gateway",
                       "application/json")  # fmt: skip
    assert everything.json()["accepted"] == 3


def test_team_signals(server: tuple[ReceiverServer, Teams]) -> None:
    receiver, teams = server
    receiver.sink.reset()
    body = [{"task_id": t, "outcome": "completed"} for t in ("S1", "B1", "UNKNOWN")]
    resp = _post(receiver, "/api/v1/signals", json.dumps(body).encode(), "cx-gateway",
                 "application/json")  # fmt: skip
    doc = resp.json()
    assert resp.status_code == 200 and doc["accepted"] == 1
    errors = [r["error"] for r in doc["rejected"]]
    # another team's task and an unknown one read alike: nothing tells them apart
    assert errors[0].replace("B1", "X") == errors[1].replace("UNKNOWN", "X")
    only_others = json.dumps(body[1:]).encode()
    refused = _post(receiver, "/api/v1/signals", only_others, "cx-gateway", "application/json")
    assert refused.status_code == 403
    teams.error = RuntimeError("store not ready")
    try:
        busy = _post(receiver, "/api/v1/signals", only_others, "cx-gateway", "application/json")
        assert busy.status_code == 503 and busy.headers["retry-after"]
    finally:
        teams.error = None
    everyone = _post(receiver, "/api/v1/signals", json.dumps(body).encode(), "gateway",
                     "application/json")  # fmt: skip
    assert everyone.json()["accepted"] == 3


def test_team_log_signals_are_refused(server: tuple[ReceiverServer, Teams]) -> None:
    receiver, _ = server
    receiver.sink.reset()
    body = logs_request(2).SerializeToString()
    resp = _post(receiver, "/v1/logs", body, "cx-gateway", "application/x-protobuf")
    assert resp.status_code == 200
    partial = ExportLogsServiceResponse.FromString(resp.content).partial_success
    assert partial.rejected_log_records == 2 and "/api/v1/signals" in partial.error_message
    resp = _post(receiver, "/v1/logs", body, "gateway", "application/x-protobuf")
    assert (
        ExportLogsServiceResponse.FromString(resp.content).partial_success.rejected_log_records == 0
    )
