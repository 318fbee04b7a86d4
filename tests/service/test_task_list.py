"""``GET /api/v1/tasks``: the tasks behind a cost-per-task figure, from the store and from the
views alike. The list of a group adds up to its row: as many tasks, as many of each outcome,
the same spend to the last digit."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.settings import Settings
from tests.service import scenario
from tests.service.conftest import Api, serve_api
from tests.service.scenario import AS_OF

AS_OF_TEXT = AS_OF.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module", params=[True, False], ids=["store", "views"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    lake: Path = tmp_path_factory.mktemp("task-list") / "lake"
    scenario.build(lake)
    with serve_api(Settings(lake=str(lake)), store=request.param) as base:
        yield Api(base)


def money(value: object) -> Decimal:
    return Decimal(str(value))


def test_a_list_adds_up_to_its_figure(api: Api) -> None:
    figures = api.json("/api/v1/cost-per-task", group_by="workflow,version", as_of=AS_OF_TEXT)
    assert figures["rows"]
    for row in figures["rows"]:
        doc = api.json(
            "/api/v1/tasks",
            workflow=row["workflow"],
            version=row["version"],
            limit=1000,
            as_of=AS_OF_TEXT,
        )
        tasks = doc["rows"]
        assert doc["total"] == len(tasks) == row["tasks"]
        assert sum(money(t["spend_usd"]) for t in tasks) == money(row["spend_usd"])
        assert sum(t["attempts"] for t in tasks) == row["attempts"]
        for outcome in ("completed", "failed", "escalated", "abandoned", "pending"):
            assert sum(t["counted_as"] == outcome for t in tasks) == row[outcome], outcome
            listed = api.json(
                "/api/v1/tasks",
                workflow=row["workflow"],
                version=row["version"],
                outcome=outcome,
                as_of=AS_OF_TEXT,
            )
            assert listed["total"] == row[outcome], outcome


def test_period_team_outcome_order_and_pages(api: Api) -> None:
    every = api.json("/api/v1/tasks", as_of=AS_OF_TEXT, limit=100)
    assert every["total"] == 7 and every["order"] == "-started_at"
    starts = [t["started_at"] for t in every["rows"]]
    assert starts == sorted(starts, reverse=True)
    january = api.json("/api/v1/tasks", start="2026-01-01", end="2026-02-01", as_of=AS_OF_TEXT)
    assert {t["task_key"] for t in january["rows"]} == {"S1", "S2", "S3", "B1", "B2", "B3"}
    fin = api.json("/api/v1/tasks", team="fin", as_of=AS_OF_TEXT)
    assert {t["task_key"] for t in fin["rows"]} == {"B1", "B2", "B3"}
    reopened = api.json("/api/v1/tasks", outcome="reopened", as_of=AS_OF_TEXT)
    assert [t["task_key"] for t in reopened["rows"]] == ["S2"]  # an outcome, counted as failed
    costliest = api.json("/api/v1/tasks", order="-spend_usd", limit=2, as_of=AS_OF_TEXT)
    assert [t["task_key"] for t in costliest["rows"]] == ["S1", "B1"]
    pages = [api.json("/api/v1/tasks", limit=3, offset=o, as_of=AS_OF_TEXT) for o in (0, 3, 6, 9)]
    assert [len(p["rows"]) for p in pages] == [3, 3, 1, 0]
    assert {p["total"] for p in pages} == {7}  # a page past the end still says how many
    keys = [t["task_key"] for p in pages for t in p["rows"]]
    assert keys == [t["task_key"] for t in every["rows"]]


def test_csv_has_the_same_rows(api: Api) -> None:
    resp = api.get("/api/v1/tasks", format="csv", workflow="support", as_of=AS_OF_TEXT)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    doc = api.json("/api/v1/tasks", workflow="support", as_of=AS_OF_TEXT)
    assert [r["task_key"] for r in rows] == [t["task_key"] for t in doc["rows"]]
    assert [money(r["spend_usd"]) for r in rows] == [money(t["spend_usd"]) for t in doc["rows"]]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "x"}, "limit: expected a whole number"),
        ({"limit": "100001"}, "limit: expected 0 .. 100000"),
        ({"offset": "-1"}, "offset: expected 0 .."),
        ({"order": "cost"}, "order: expected one of"),
        ({"outcome": "done"}, "outcome: unknown 'done'"),
        ({"start": "2026-02-01", "end": "2026-01-01"}, "end: must be after start"),
        ({"group_by": "workflow"}, "unknown parameter 'group_by'"),
    ],
)
def test_bad_parameters_are_400s_that_say_why(
    api: Api, params: dict[str, str], message: str
) -> None:
    resp = api.get("/api/v1/tasks", **params)
    assert resp.status_code == 400
    assert message in resp.json()["error"]["message"]


def test_drill_down_attempts_and_signals_as_csv(api: Api) -> None:
    doc = api.json("/api/v1/tasks/S1", as_of=AS_OF_TEXT)
    attempts = api.get("/api/v1/tasks/S1", format="csv", part="attempts")
    rows = list(csv.DictReader(io.StringIO(attempts.text)))
    assert [r["attempt_id"] for r in rows] == [a["attempt_id"] for a in doc["attempts"]]
    assert sum(money(r["spend_usd"]) for r in rows) == money(doc["task"]["spend_usd"])
    signals = api.get("/api/v1/tasks/S2", format="csv", part="signals")
    assert [r["outcome"] for r in csv.DictReader(io.StringIO(signals.text))] == [
        "completed",
        "reopened",
    ]
    assert api.get("/api/v1/tasks/S1", format="csv", part="spans").text == (
        api.get("/api/v1/tasks/S1", format="csv").text
    )
    bad = api.get("/api/v1/tasks/S1", format="csv", part="costs")
    assert bad.status_code == 400 and "part: expected one of" in bad.json()["error"]["message"]
