"""``GET /api/v1/cost-per-task`` over HTTP against the hand-computed scenario
(``scenario.py``): every grouping to the cent, and the contract's edges."""

from __future__ import annotations

import csv
import io
import itertools
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.lakes import lake_settings, signal, write_signals
from tests.service import scenario
from tests.service.conftest import Api, serve_api
from tests.service.scenario import AS_OF, cents, expected_rows

AS_OF_TEXT = AS_OF.isoformat().replace("+00:00", "Z")
GROUPS = ("workflow", "team", "role", "version", "model", "provider", "day", "week", "month")
COUNTS = (
    "attempts",
    "tasks",
    "completed",
    "failed",
    "escalated",
    "abandoned",
    "pending",
    "unpriced_spans",
)
MONEY = ("spend_usd", "cost_per_attempt_usd", "cost_per_completed_task_usd")


def _rows(api: Api, group_by: list[str], **params: Any) -> dict[tuple[Any, ...], dict[str, Any]]:
    doc = api.json("/api/v1/cost-per-task", group_by=",".join(group_by), as_of=AS_OF_TEXT, **params)
    assert doc["currency"] == "USD" and doc["group_by"] == group_by
    rows = {}
    for row in doc["rows"]:
        assert list(row)[: len(group_by)] == group_by  # keys first, under their own names
        rows[tuple(row[g] for g in group_by)] = row
    return rows


def test_the_headline_numbers(scenario_api: Api) -> None:
    rows = _rows(scenario_api, ["workflow"])
    support, billing = rows[("support",)], rows[("billing",)]
    assert cents(support["cost_per_completed_task_usd"]) == Decimal("0.85")
    assert Decimal(str(support["spend_usd"])) == Decimal("1.7")
    assert [support[c] for c in COUNTS] == [6, 4, 2, 1, 0, 0, 1, 1]
    assert cents(billing["cost_per_completed_task_usd"]) == Decimal("0.92")
    assert [billing[c] for c in COUNTS] == [3, 3, 1, 0, 1, 1, 0, 0]
    assert billing["success_rate"] == pytest.approx(1 / 3)
    assert support["success_rate"] == pytest.approx(2 / 3)  # of the decided tasks


def _groupings() -> list[list[str]]:
    singles = [[g] for g in GROUPS]
    pairs = [list(p) for p in itertools.combinations(GROUPS, 2)]
    return [*singles, *pairs, ["workflow", "version", "month"], ["month", "role", "team"]]


@pytest.mark.parametrize("group_by", _groupings(), ids="+".join)
def test_every_grouping_to_the_cent(scenario_api: Api, group_by: list[str]) -> None:
    got = _rows(scenario_api, group_by)
    want = expected_rows(group_by)
    assert set(got) == set(want)
    for key, exp in want.items():
        row = got[key]
        assert [row[c] for c in COUNTS] == [exp[c] for c in COUNTS], key
        assert [cents(row[m]) for m in MONEY] == [cents(exp[m]) for m in MONEY], key
        assert Decimal(str(row["spend_usd"])) == exp["spend_usd"], key  # exact, not rounded
        assert row["success_rate"] == pytest.approx(exp["success_rate"]), key
        assert row["tokens_per_attempt"] == pytest.approx(exp["tokens_per_attempt"]), key
        assert row["tasks"] == sum(row[c] for c in COUNTS[2:7]), key


@pytest.mark.parametrize("span_dim", ["role", "model", "provider"])
def test_span_level_rows_add_up_to_their_workflow_row(scenario_api: Api, span_dim: str) -> None:
    whole = _rows(scenario_api, ["workflow"])
    split = _rows(scenario_api, ["workflow", span_dim])
    for (workflow,), row in whole.items():
        parts = [r for (w, _), r in split.items() if w == workflow]
        assert sum(Decimal(str(r["spend_usd"])) for r in parts) == Decimal(str(row["spend_usd"]))
        assert sum(r["unpriced_spans"] for r in parts) == row["unpriced_spans"]
        assert all(
            r["tasks"] == row["tasks"] and r["completed"] == row["completed"] for r in parts
        )  # the workflow's denominator on every role row


def test_three_attempts_of_one_completed_task_all_count(scenario_api: Api) -> None:
    rows = _rows(
        scenario_api, ["workflow"], start="2026-01-05", end="2026-01-06", workflow="support"
    )
    (row,) = rows.values()  # S1 alone: two failed attempts and the one that worked
    assert (row["tasks"], row["attempts"], row["completed"]) == (1, 3, 1)
    assert cents(row["cost_per_completed_task_usd"]) == Decimal("1.05")
    assert cents(row["cost_per_attempt_usd"]) == Decimal("0.35")


def test_filters(scenario_api: Api) -> None:
    rows = _rows(
        scenario_api, ["team"], team="fin,cx", start="2026-01-06T00:00:00Z", end="2026-02-01"
    )
    assert {k: r["tasks"] for k, r in rows.items()} == {("cx",): 2, ("fin",): 2}
    assert _rows(scenario_api, ["workflow"], workflow="nobody") == {}


def test_nothing_completed_is_null_not_zero(scenario_api: Api) -> None:
    rows = _rows(scenario_api, ["workflow", "month"])
    feb = rows[("support", "2026-02-01")]
    assert feb["pending"] == 1 and feb["completed"] == 0
    assert feb["cost_per_completed_task_usd"] is None and feb["success_rate"] is None


def test_csv(scenario_api: Api) -> None:
    resp = scenario_api.get(
        "/api/v1/cost-per-task", group_by="workflow,version", format="csv", as_of=AS_OF_TEXT
    )
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert list(rows[0])[:3] == ["workflow", "version", "attempts"]
    by_key = {(r["workflow"], r["version"]): r for r in rows}
    assert Decimal(by_key[("support", "v1")]["spend_usd"]) == Decimal("1.25")
    assert by_key[("support", "v2")]["cost_per_completed_task_usd"] == "0.45"


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"group_by": "workflow,colour"}, "group_by: unknown 'colour'"),
        ({"group_by": "team,team"}, "listed twice"),
        ({"group_by": ""}, "group_by"),
        ({"start": "last tuesday"}, "start: expected a date"),
        ({"start": "2026-02-01", "end": "2026-01-01"}, "end: must be after start"),
        ({"format": "xml"}, "format: expected one of json, csv"),
        ({"cost": "cheap"}, "cost: expected one of inference, full"),
        ({"groupby": "team"}, "unknown parameter 'groupby'"),
        ({"workflow": ","}, "workflow: expected one or more names"),
    ],
)
def test_bad_parameters_are_400_in_the_one_error_shape(
    scenario_api: Api, params: dict[str, str], fragment: str
) -> None:
    resp = scenario_api.get("/api/v1/cost-per-task", **params)
    assert resp.status_code == 400
    body = resp.json()
    assert set(body) == {"error", "request_id"} and set(body["error"]) == {"status", "message"}
    assert body["request_id"] == resp.headers["x-request-id"]
    assert body["error"]["status"] == 400 and fragment in body["error"]["message"]


COMPONENTS = (
    "inference_usd",
    "rework_usd",
    "labor_usd",
    "infrastructure_usd",
    "licence_usd",
    "other_usd",
)


def _full(api: Api, group_by: list[str], **params: Any) -> dict[str, Any]:
    resp = api.get(
        "/api/v1/cost-per-task",
        group_by=",".join(group_by),
        as_of=AS_OF_TEXT,
        cost="full",
        **params,
    )
    assert resp.status_code == 200, resp.text
    doc: dict[str, Any] = json.loads(resp.text, parse_float=Decimal)
    return doc


@pytest.mark.parametrize("group_by", _groupings(), ids="+".join)
def test_fully_loaded_in_every_grouping(scenario_api: Api, group_by: list[str]) -> None:
    doc = _full(scenario_api, group_by)
    assert doc["cost"] == "full"
    got = {tuple(r[g] for g in group_by): r for r in doc["rows"]}
    want = expected_rows(group_by, full=True)
    assert set(got) == set(want)
    total = Decimal(0)
    for key, exp in want.items():
        row = got[key]
        assert [row[c] for c in COUNTS] == [exp[c] for c in COUNTS], key
        assert [row[c] for c in COMPONENTS] == [exp[c] for c in COMPONENTS], key  # exact
        assert row["spend_usd"] == exp["spend_usd"] == sum(row[c] for c in COMPONENTS), key
        assert [cents(row[m]) for m in MONEY] == [cents(exp[m]) for m in MONEY], key
        total += row["spend_usd"]
    # inference 2.62 + S2's signal rework 12.50 + the allocated entries 31 + 9.20 + 24.70 + 3
    assert total == Decimal("83.02")


def test_an_entry_without_spend_in_its_scope_is_listed_not_spread(scenario_api: Api) -> None:
    doc = _full(scenario_api, ["workflow"])
    assert [(u["entry_id"], u["amount_usd"]) for u in doc["unallocated"]] == [("other-nobody", 5)]
    assert doc["unallocated_usd"] == 5
    assert all(r["other_usd"] == 0 for r in doc["rows"])
    # filters apply to the list too: an entry naming a workflow shows under that workflow only
    assert _full(scenario_api, ["workflow"], workflow="support")["unallocated"] == []
    assert _full(scenario_api, ["workflow"], start="2026-02-01")["unallocated"] == []


def test_inference_answers_carry_no_components(scenario_api: Api) -> None:
    doc = scenario_api.json("/api/v1/cost-per-task", as_of=AS_OF_TEXT)
    assert "unallocated" not in doc
    assert all(c not in row for row in doc["rows"] for c in COMPONENTS)


def test_full_csv(scenario_api: Api) -> None:
    resp = scenario_api.get("/api/v1/cost-per-task", cost="full", format="csv", as_of=AS_OF_TEXT)
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert list(rows[0])[-6:] == list(COMPONENTS)
    support = next(r for r in rows if r["workflow"] == "support")
    assert (support["spend_usd"], support["labor_usd"], support["rework_usd"]) == (
        "63.7",
        "31",
        "15.5",
    )


def test_a_late_signal_changes_the_next_answer(lake: str) -> None:
    scenario.build(lake)
    with serve_api(lake_settings(lake)) as base:
        api = Api(base)
        before = _rows(api, ["workflow"])[("support",)]
        done = scenario.TASKS["S4"].start + timedelta(hours=1)  # window closed by AS_OF
        write_signals(lake, [signal("S4", "completed", done)], "late")
        after = _rows(api, ["workflow"])[("support",)]
    assert (before["completed"], before["pending"]) == (2, 1)
    assert (after["completed"], after["pending"]) == (3, 0)
    assert cents(after["cost_per_completed_task_usd"]) == Decimal("0.57")
