"""The economics' edge cases over HTTP, answered from the task store and from the views alike:
signals that count for no task, a group whose calls are all unpriced, and an abandoned task
that completes after all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tests.lakes import at, lake_settings, new_lake, signal, span, write_signals, write_spans
from tests.service.conftest import Api, serve_api

AS_OF = at(days=30).isoformat().replace("+00:00", "Z")


def _task(name: str, workflow: str, hour: float, costs: list[str | None]) -> list[dict[str, Any]]:
    rows = [
        span(
            name, f"{name}-r", start=at(hour), op="invoke_workflow", task_id=name, workflow=workflow
        )
    ]
    for i, cost in enumerate(costs):
        rows.append(
            span(
                name,
                f"{name}-c{i}",
                parent=f"{name}-r",
                start=at(hour),
                op="chat",
                cost=cost,
                model="m",
                provider="p",
                tokens=(10, 1),
            )
        )
    return rows


@pytest.fixture(scope="module", params=["store", "views"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    lake = new_lake(tmp_path_factory.mktemp("edges"))
    write_spans(
        lake,
        [
            *_task("A", "priced", 0, ["1.5"]),
            *_task("U", "unpriced", 1, [None, None]),
            *_task("P", "partly", 2, ["2", None]),
            *_task("L", "late", 3, ["0.5"]),
        ],
        "spans",
    )
    write_signals(
        lake,
        [
            signal("A", "completed", at(1), signal_id="a"),
            signal("U", "completed", at(2), signal_id="u"),
            signal("P", "completed", at(3), signal_id="p"),
            # after L's abandon_after (7 days past its last span): it completes L all the same
            signal("L", "completed", at(3, days=8), signal_id="late"),
            signal("GHOST", "rework", at(4), signal_id="ghost", rework_cost_usd="7.5"),
            signal(
                "A", "rework", at(5), signal_id="elsewhere", workflow="other", rework_cost_usd="2"
            ),
        ],
        "signals",
    )
    with serve_api(lake_settings(lake), store=request.param == "store") as base:
        yield Api(base)


def _rows(api: Api, **params: str) -> dict[str, dict[str, Any]]:
    resp = api.get("/api/v1/cost-per-task", **params)
    assert resp.status_code == 200, resp.text
    doc = json.loads(resp.text, parse_float=Decimal)
    return {r["workflow"]: r for r in doc["rows"]} | {"": doc}


def test_all_unpriced_is_null_not_zero(api: Api) -> None:
    rows = _rows(api, as_of=AS_OF)
    unpriced, partly = rows["unpriced"], rows["partly"]
    assert (unpriced["completed"], unpriced["unpriced_spans"]) == (1, 2)
    assert unpriced["cost_per_completed_task_usd"] is None
    assert unpriced["cost_per_attempt_usd"] is None
    assert partly["cost_per_completed_task_usd"] == Decimal(2) and partly["unpriced_spans"] == 1
    assert rows["priced"]["cost_per_completed_task_usd"] == Decimal("1.5")


def test_abandoned_is_provisional(api: Api) -> None:
    before = _rows(api, as_of=at(3, days=7, minutes=30).isoformat())["late"]
    assert (before["abandoned"], before["completed"]) == (1, 0)
    after = _rows(api, as_of=AS_OF)["late"]
    assert (after["abandoned"], after["completed"]) == (0, 1)
    task = api.json("/api/v1/tasks/L", as_of=AS_OF)["task"]
    assert (task["outcome"], task["deciding_signal_id"]) == ("completed", "late")


def test_signals_for_no_task_are_listed_with_their_rework(api: Api) -> None:
    doc = _rows(api, as_of=AS_OF, cost="full")[""]
    signals = [u for u in doc["unallocated"] if u["kind"] == "signal"]
    assert [(u["signal_id"], u["reason"], u["amount_usd"]) for u in signals] == [
        ("ghost", "unknown task", Decimal("7.5")),
        ("elsewhere", "workflow mismatch", Decimal(2)),
    ]
    assert doc["unallocated_usd"] == Decimal("9.5")
    priced = next(r for r in doc["rows"] if r["workflow"] == "priced")
    assert priced["rework_usd"] == 0  # the signal naming another workflow is not A's
    # a filter on another workflow keeps only what names none
    other = _rows(api, as_of=AS_OF, cost="full", workflow="priced")[""]
    assert [u["signal_id"] for u in other["unallocated"]] == ["ghost"]
    # and before they were sent, they were not there
    early = _rows(api, as_of=at(3).isoformat(), cost="full")[""]
    assert early["unallocated"] == [] and early["unallocated_usd"] == 0
