"""``GET /api/v1/tasks/{id}`` over HTTP: the drill-down of the scenario's tasks and attempts."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from typing import Any
from urllib.parse import quote, unquote

import pytest
import requests

from tests.lakes import at, lake_settings, span, write_spans
from tests.service.conftest import Api, serve_api
from tests.service.scenario import AS_OF

AS_OF_TEXT = AS_OF.isoformat().replace("+00:00", "Z")


def _walk(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for n in nodes:
        out.append(n)
        out.extend(_walk(n["children"]))
    return out


def test_a_task_with_retries(scenario_api: Api) -> None:
    doc = scenario_api.json("/api/v1/tasks/S1", as_of=AS_OF_TEXT)
    assert doc["kind"] == "task" and doc["currency"] == "USD"
    task = doc["task"]
    assert task["outcome"] == "completed" and task["counted_as"] == "completed"
    assert task["attempts"] == 3 and Decimal(str(task["spend_usd"])) == Decimal("1.05")
    assert [a["attempt_id"] for a in doc["attempts"]] == ["S1-0", "S1-1", "S1-2"]
    assert [a["traces"] for a in doc["attempts"]] == [1, 1, 2]  # the third one in two traces
    assert [s["signal_id"] for s in doc["signals"]] == ["s1"]
    spans = _walk(doc["spans"])
    assert len(spans) == 7
    assert sum(Decimal(str(s["cost_usd"] or 0)) for s in spans) == Decimal("1.05")
    roots = {r["name"]: r for r in doc["spans"]}
    assert set(roots) == {"S1-0-root", "S1-1-root", "S1-2-root", "S1-2-late"}
    chat = roots["S1-0-root"]["children"][0]
    assert (chat["role"], chat["role_source"], chat["response_model"]) == (
        "planner",
        "span",
        "m-large",
    )
    assert roots["S1-0-root"]["role"] == "orchestrator"
    assert roots["S1-0-root"]["role_source"] == "operation"
    assert chat["attributes"]["test.seq"]  # the lossless attributes come along


def test_an_attempt_and_its_task(scenario_api: Api) -> None:
    doc = scenario_api.json("/api/v1/tasks/B1-0", as_of=AS_OF_TEXT)
    assert doc["kind"] == "attempt"
    assert [a["attempt_id"] for a in doc["attempts"]] == ["B1-0"]
    assert doc["task"]["task_key"] == "B1" and doc["task"]["outcome"] == "escalated"
    assert [s["signal_id"] for s in doc["signals"]] == ["b1"]  # named by correlation id
    tool = next(s for s in _walk(doc["spans"]) if s["operation"] == "execute_tool")
    assert (tool["role"], tool["status"]) == ("tool", "ERROR")


def test_reopened_and_duplicate_signals(scenario_api: Api) -> None:
    s2 = scenario_api.json("/api/v1/tasks/S2", as_of=AS_OF_TEXT)
    assert (s2["task"]["outcome"], s2["task"]["counted_as"]) == ("reopened", "failed")
    assert s2["task"]["reason"] == "customer wrote back"
    assert s2["task"]["unpriced_spans"] == 1
    unpriced = [s for s in _walk(s2["spans"]) if s["operation"] == "chat" and s["cost_usd"] is None]
    assert len(unpriced) == 1 and unpriced[0]["cost_source"] == "unpriced"
    b3 = scenario_api.json("/api/v1/tasks/B3", as_of=AS_OF_TEXT)
    assert b3["task"]["outcome"] == "completed" and b3["task"]["signals"] == 1
    assert [(s["signal_id"], s["outcome"]) for s in b3["signals"]] == [("b3", "completed")]


def test_pending_and_abandoned(scenario_api: Api) -> None:
    s4 = scenario_api.json("/api/v1/tasks/S4", as_of=AS_OF_TEXT)["task"]
    assert s4["outcome"] == "pending" and s4["decided_at"] == "2026-02-09T09:00:02Z"
    b2 = scenario_api.json("/api/v1/tasks/B2", as_of=AS_OF_TEXT)["task"]
    assert b2["outcome"] == "abandoned" and b2["abandon_after"] == 7 * 86400


def test_unknown_id_is_404_in_the_one_error_shape(scenario_api: Api) -> None:
    resp = scenario_api.get("/api/v1/tasks/NOPE")
    assert resp.status_code == 404
    assert resp.json() == {
        "error": {"status": 404, "message": "no task or attempt with id 'NOPE'"},
        "request_id": resp.headers["x-request-id"],
    }


def test_spans_as_csv(scenario_api: Api) -> None:
    resp = scenario_api.get("/api/v1/tasks/S3", format="csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert [(r["name"], r["role"], r["cost_usd"]) for r in rows] == [
        ("S3-0-root", "orchestrator", ""),
        ("S3-0-chat0", "planner", "0.3"),
    ]


ODD_IDS = ("team/a/TICKET-1", 'say "hi"', "line\r\nbreak", "ünïcode-🎉", "x" * 400)


@pytest.mark.parametrize("store", [True, False], ids=["store", "views"])
def test_ids_with_slashes_quotes_crlf_and_emoji(lake: str, store: bool) -> None:
    rows = []
    for i, task in enumerate(ODD_IDS):
        rows.append(
            span(
                f"odd{i}",
                f"odd{i}-root",
                start=at(i),
                op="invoke_workflow",
                task_id=task,
                correlation_id=f"{task}/attempt",
            )
        )
    write_spans(lake, rows, "odd")
    with serve_api(lake_settings(lake), store=store) as base:
        for task in ODD_IDS:
            encoded = quote(task, safe="")
            doc = requests.get(f"{base}/api/v1/tasks/{encoded}", timeout=60).json()
            assert (doc["id"], doc["kind"]) == (task, "task"), doc
            attempt = requests.get(
                f"{base}/api/v1/tasks/{quote(task + '/attempt', safe='')}", timeout=60
            ).json()
            assert (attempt["kind"], attempt["task"]["task_key"]) == ("attempt", task)
            resp = requests.get(f"{base}/api/v1/tasks/{encoded}?format=csv", timeout=60)
            assert resp.status_code == 200
            header = resp.headers["content-disposition"]
            assert header.isascii() and "\r" not in header and "\n" not in header
            fallback = header.split('filename="', 1)[1].split('"', 1)[0]
            assert re.fullmatch(r"[A-Za-z0-9._+-]+", fallback), header
            exact = unquote(header.split("filename*=UTF-8''", 1)[1])
            name = f"task-{task}-spans.csv"
            assert exact == name if len(name) <= 200 else exact == name[:196] + ".csv"
        raw = requests.get(f"{base}/api/v1/tasks/team/a/TICKET-1", timeout=60)  # not encoded
        assert raw.json()["id"] == "team/a/TICKET-1"
