"""``GET /api/v1/reasons`` and ``/api/v1/time-saved`` against the hand-computed scenario
(``scenario.py``): S2 reopened ("customer wrote back", $0.20, $12.50 of rework), B1
escalated ($0.60), B2 abandoned ($0.07); support saves 12 minutes a completed ticket at $50 an
hour."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from schemas.settings import Settings, WorkflowRule
from tests.service import scenario
from tests.service.conftest import Api, serve_api
from tests.service.workloads import usd

AS_OF = scenario.AS_OF.isoformat()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    lake = tmp_path_factory.mktemp("reasons") / "lake"
    scenario.build(lake)
    rule = WorkflowRule(human_minutes_per_task=12, human_cost_per_hour=Decimal(50))
    with serve_api(Settings(lake=str(lake), workflows={"support": rule})) as base:
        yield Api(base)


def test_reasons_ranked_with_tasks_and_spend(api: Api) -> None:
    rows = api.json("/api/v1/reasons", as_of=AS_OF)["rows"]
    got = [
        (r["workflow"], r["rank"], r["counted_as"], r["outcome"], r["reason"], r["tasks"])
        for r in rows
    ]
    assert got == [
        ("billing", 1, "escalated", "escalated", None, 1),  # $0.60 before $0.07
        ("billing", 2, "abandoned", "abandoned", None, 1),
        ("support", 1, "failed", "reopened", "customer wrote back", 1),
    ]
    assert [usd(r["spend_usd"]) for r in rows] == [Decimal("0.6"), Decimal("0.07"), Decimal("0.2")]
    assert usd(rows[2]["signal_rework_usd"]) == Decimal("12.5")
    assert rows[0]["share_of_decided"] == pytest.approx(1 / 3)  # B1 of B1, B2, B3
    only = api.json("/api/v1/reasons", as_of=AS_OF, workflow="support", end="2026-01-06")
    assert only["rows"] == []  # S1 alone started before: it completed


def test_time_saved_and_net_value(api: Api) -> None:
    rows = {r["workflow"]: r for r in api.json("/api/v1/time-saved", as_of=AS_OF)["rows"]}
    support = rows["support"]
    # 2 completed x 12 min = 0.4 h x $50 = $20, less $63.70 fully loaded (scenario.py)
    assert (support["completed"], usd(support["hours_saved"])) == (2, Decimal("0.4"))
    assert usd(support["value_usd"]) == 20
    assert usd(support["fully_loaded_spend_usd"]) == Decimal("63.7")
    assert usd(support["net_value_usd"]) == Decimal("-43.7")
    assert rows["billing"]["hours_saved"] is None  # no minutes set for billing
    assert usd(rows["billing"]["fully_loaded_spend_usd"]) == Decimal("19.32")
    csv = api.get("/api/v1/time-saved", as_of=AS_OF, format="csv").text.splitlines()
    assert csv[0].startswith("workflow,tasks,completed,pending,human_minutes_per_task")
    assert csv[2].startswith("support,4,2,1,12.0,0.4,50,20,63.7,-43.7,")
