"""Every answer carries a request id; every 5xx is logged with it and its exception; a query
that runs out of memory is a 503 with Retry-After (a passing condition), never a 500."""

from __future__ import annotations

import logging

import pytest
import requests
from deltalake.transaction import AddAction
from fastapi import FastAPI

from schemas.lake import PARTITION, SIGNALS, TABLES
from service.api.openapi import install_openapi
from service.db import Database
from service.errors import RequestIdMiddleware, install_error_handlers
from tests.lakes import lake_settings, lake_uri, tables, write_file
from tests.service.conftest import serve_api, serve_app

#: Needs far more than the 64 MiB the read side is given here: DuckDB cannot spill it.
HUGE_QUERY = "SELECT length(string_agg(repeat('x', 1000), '')) FROM range(400000)"


def test_request_ids_are_sent_back_and_a_sane_incoming_one_is_kept(lake: str) -> None:
    with serve_api(lake_settings(lake)) as base:
        made = requests.get(base + "/api/v1/cost-per-task", timeout=60)
        assert made.status_code == 200 and len(made.headers["x-request-id"]) == 32
        kept = requests.get(
            base + "/api/v1/cost-per-task", headers={"X-Request-Id": "trace-4711.a:b"}, timeout=60
        )
        assert kept.headers["x-request-id"] == "trace-4711.a:b"
        odd = requests.get(
            base + "/api/v1/nothing", headers={"X-Request-Id": "no spaces <please>"}, timeout=60
        )
        assert odd.status_code == 404
        assert odd.headers["x-request-id"] != "no spaces <please>"
        assert odd.json()["request_id"] == odd.headers["x-request-id"]


def test_a_failing_query_is_a_500_logged_with_its_request_id_and_traceback(
    lake: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="tasklake.http")
    with serve_api(lake_settings(lake), store=False) as base:
        # a file another tool committed that is not Parquet at all
        broken = lake_uri(lake, SIGNALS, "date=2026-01-05", "broken.parquet")
        write_file(broken, b"PAR1 this is not a parquet file PAR1")
        tables(lake).current(SIGNALS).create_write_transaction(
            [
                AddAction(
                    "date=2026-01-05/broken.parquet", 36, {PARTITION: "2026-01-05"}, 0, True, ""
                )
            ],
            mode="append",
            schema=TABLES[SIGNALS].delta_schema,
            partition_by=[PARTITION],
        )
        resp = requests.get(base + "/api/v1/cost-per-task", timeout=60)
    assert resp.status_code == 500
    rid = resp.headers["x-request-id"]
    assert resp.json()["request_id"] == rid and resp.json()["error"]["status"] == 500
    (record,) = [r for r in caplog.records if rid in r.getMessage()]
    assert record.levelno == logging.ERROR and "GET /api/v1/cost-per-task -> 500" in (
        record.getMessage()
    )
    assert record.exc_info is not None and "QueryError" in caplog.text


def test_an_unhandled_exception_is_a_500_in_the_one_error_shape(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_middleware(RequestIdMiddleware)
    caplog.set_level(logging.ERROR, logger="tasklake.http")
    with serve_app(app) as base:
        resp = requests.get(base + "/boom", headers={"X-Request-Id": "r-1"}, timeout=30)
    assert resp.status_code == 500 and resp.headers["x-request-id"] == "r-1"
    assert resp.json() == {
        "error": {"status": 500, "message": "internal error (RuntimeError)"},
        "request_id": "r-1",
    }
    assert "[request_id=r-1]" in caplog.text and "RuntimeError: a bug" in caplog.text
    assert "Traceback" in caplog.text


def test_out_of_memory_is_503_with_retry_after(lake: str, caplog: pytest.LogCaptureFixture) -> None:
    settings = lake_settings(lake, query_memory_limit=64 << 20)
    db = Database(settings, store=False, threads=1)
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/huge")
    def huge() -> int:
        return int(db.value(HUGE_QUERY))

    install_openapi(app)
    app.add_middleware(RequestIdMiddleware)
    caplog.set_level(logging.ERROR, logger="tasklake.http")
    try:
        with serve_app(app) as base:
            resp = requests.get(base + "/huge", timeout=120)
    finally:
        db.close()
    assert resp.status_code == 503, resp.text
    assert resp.headers["retry-after"] == "5"
    assert "query_memory_limit" in resp.json()["error"]["message"]
    assert resp.headers["x-request-id"] in caplog.text  # a 5xx: logged too
