"""Schemathesis against the real ``tasklake serve``: every operation of ``/api/openapi.json`` —
the read routes with their declared parameters and the write routes (``POST /api/v1/signals``,
``/api/v1/costs``) with their item schemas — gets generated requests; none may answer a 5xx,
and every answer must match what the document says (status, content type, body, headers).

What the write routes accept lands in the lake, so the reads of later cases run over data
nobody chose. ``make test`` runs a bounded number of cases per operation, ``make fuzz`` many
more (``tests/fuzzing.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.harness import Server
from tests.fuzzing import examples

pytestmark = pytest.mark.fuzz

#: Cases per operation: bounded in ``make test`` (a few seconds in all), many in ``make fuzz``.
CASES_PER_OPERATION = examples(12, 300)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("openapi")
    srv = Server(lake=base / "lake", log=base / "server.log", args=("--flush-interval", "0.2"))
    srv.start()
    try:
        signal = {"task_id": "T-1", "outcome": "completed", "rework_cost_usd": "1e15"}
        resp = requests.post(srv.url + "/api/v1/signals", data=json.dumps(signal), timeout=60)
        assert resp.status_code == 200, resp.text
        yield srv
    finally:
        srv.stop()


#: Every operation of the document (a test below fails when one is added without a case here).
OPERATIONS = (
    ("GET", "/api/v1/cost-per-task"),
    ("GET", "/api/v1/tasks/{task_id}"),
    ("GET", "/api/v1/tasks"),
    ("POST", "/api/v1/query"),
    ("GET", "/api/v1/admin/settings"),
    ("GET", "/api/v1/compare"),
    ("GET", "/api/v1/trends"),
    ("GET", "/api/v1/levers"),
    ("GET", "/api/v1/autonomy"),
    ("GET", "/api/v1/reasons"),
    ("GET", "/api/v1/time-saved"),
    ("POST", "/api/v1/signals"),
    ("POST", "/api/v1/costs"),
)


@pytest.fixture(scope="module")
def api_schema(api_server: Server) -> Any:
    return schemathesis.openapi.from_url(api_server.url + "/api/openapi.json")


def test_the_document_lists_every_operation(api_schema: Any) -> None:
    found = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_keeps_its_contract(
    api_schema: Any, api_server: Server, method: str, path: str
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=CASES_PER_OPERATION)
    def check(case: Any) -> None:
        case.call_and_validate(base_url=api_server.url, checks=CHECKS, timeout=120)

    check()
