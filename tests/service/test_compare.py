"""``GET /api/v1/compare`` over HTTP against the hand-computed scenario (``scenario.py``):
both sides, their change, and the LMDI decomposition computed here by hand.

support v1 (S1, S2): 4 attempts, 2 tasks, 1 completed, 1 failed, $1.25, 3,100 tokens
support v2 (S3, S4): 2 attempts, 2 tasks, 1 completed, 1 pending, $0.45, 800 tokens
Fully loaded, non-inference per completed task: v1 $50 (S1 labor 21 + licence 10.5, S2 rework
12.5 + labor 4 + licence 2), v2 $12 (S3 labor 6 + licence 3, S4 rework 3).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest

from tests.service.conftest import Api
from tests.service.scenario import AS_OF

AS_OF_TEXT = AS_OF.isoformat().replace("+00:00", "Z")


def _compare(api: Api, a: str, b: str, **params: Any) -> Any:
    return api.json("/api/v1/compare", workflow="support", a=a, b=b, as_of=AS_OF_TEXT, **params)


def _lmdi(side_a: dict[str, float], side_b: dict[str, float]) -> dict[str, float]:
    """The parts of I_b - I_a, I = spend / completed = P x T x A, by the formula."""

    def factors(s: dict[str, float]) -> tuple[float, float, float, float]:
        p = s["spend"] / s["tokens"]
        t = s["tokens"] / s["attempts"]
        a = s["attempts"] / s["completed"]
        return p, t, a, s["spend"] / s["completed"]

    pa, ta, aa, ia = factors(side_a)
    pb, tb, ab, ib = factors(side_b)
    mean = (ib - ia) / math.log(ib / ia)
    return {
        "price_per_token": mean * math.log(pb / pa),
        "tokens_per_attempt": mean * math.log(tb / ta),
        "attempts_per_completed_task": mean * math.log(ab / aa),
    }


V1 = {"spend": 1.25, "tokens": 3100, "attempts": 4, "completed": 1}
V2 = {"spend": 0.45, "tokens": 800, "attempts": 2, "completed": 1}


def test_two_versions_side_by_side(scenario_api: Api) -> None:
    doc = _compare(scenario_api, "version:v1", "version:v2")
    a, b, change = doc["a"], doc["b"], doc["change"]
    assert (a["cohort"], b["cohort"]) == ("version:v1", "version:v2")
    assert [a[k] for k in ("attempts", "tasks", "completed", "failed", "pending")] == [
        4,
        2,
        1,
        1,
        0,
    ]
    assert [b[k] for k in ("attempts", "tasks", "completed", "failed", "pending")] == [
        2,
        2,
        1,
        0,
        1,
    ]
    assert (a["failure_rate"], b["failure_rate"]) == (0.5, 0.0)  # pending is not decided
    assert (a["tokens_per_attempt"], b["tokens_per_attempt"]) == (775, 400)
    assert Decimal(str(a["cost_per_attempt_usd"])) == Decimal("0.3125")
    assert Decimal(str(b["cost_per_attempt_usd"])) == Decimal("0.225")
    assert Decimal(str(a["cost_per_completed_task_usd"])) == Decimal("1.25")
    assert Decimal(str(b["cost_per_completed_task_usd"])) == Decimal("0.45")
    assert (change["attempts"], change["tokens_per_attempt"]) == (-2, -375)
    assert Decimal(str(change["cost_per_completed_task_usd"])) == Decimal("-0.8")
    assert a["unpriced_spans"] == 1  # S2's unpriced call: price per token counts its tokens
    assert a["price_per_token_usd"] == pytest.approx(1.25 / 3100, rel=1e-15)
    table = {r["metric"]: r for r in doc["rows"]}
    assert list(table)[:9] == [
        "attempts",
        "tasks",
        "completed",
        "pending",
        "failure_rate",
        "tokens_per_attempt",
        "cost_per_attempt_usd",
        "spend_usd",
        "cost_per_completed_task_usd",
    ]
    assert table["spend_usd"]["change"] == -0.8


def test_the_decomposition_is_lmdi_and_exact(scenario_api: Api) -> None:
    split = _compare(scenario_api, "version:v1", "version:v2")["decomposition"]
    assert split["method"] == "LMDI-I (additive logarithmic mean Divisia index)"
    assert split["explanation"] is None
    assert Decimal(str(split["total_change_usd"])) == Decimal("-0.8")
    want = _lmdi(V1, V2)
    assert set(split["parts"]) == set(want)
    for name, value in want.items():
        assert split["parts"][name] == pytest.approx(value, abs=1e-12), name
    assert abs(sum(split["parts"].values()) - -0.8) < 1e-9
    assert abs(split["residual_usd"]) < 1e-9
    # fewer tokens and fewer attempts made it cheaper; a dearer token grew
    assert split["largest_increase"] == "model_mix"


def test_fully_loaded_adds_the_non_inference_part(scenario_api: Api) -> None:
    doc = _compare(scenario_api, "version:v1", "version:v2", cost="full")
    split = doc["decomposition"]
    assert Decimal(str(split["total_change_usd"])) == Decimal("-38.8")  # 0.45 + 12 - 51.25
    assert Decimal(str(split["parts"]["non_inference"])) == Decimal("-38")
    assert {k: Decimal(str(v)) for k, v in split["non_inference_by_component"].items()} == {
        "rework": Decimal("-9.5"),  # 12.5 -> 3
        "labor": Decimal("-19"),  # 25 -> 6
        "infrastructure": 0,
        "licence": Decimal("-9.5"),  # 12.5 -> 3
        "other": 0,
    }
    inference = _lmdi(V1, V2)
    for name, value in inference.items():
        assert split["parts"][name] == pytest.approx(value, abs=1e-12), name
    assert abs(sum(split["parts"].values()) - -38.8) < 1e-9
    assert Decimal(str(doc["a"]["non_inference_per_completed_task_usd"])) == 50
    assert Decimal(str(doc["b"]["non_inference_per_completed_task_usd"])) == 12
    rows = {r["metric"]: r for r in doc["rows"]}
    assert rows["part:non_inference"]["change"] == -38


@pytest.mark.parametrize(
    ("a", "b", "why"),
    [
        ("version:v1", "version:v9", "side b has no tasks"),
        ("period:2026-01", "period:2026-02", "side b has no completed tasks"),
        ("period:2026-W06", "period:2026-01", "side a has no completed tasks"),
    ],
)
def test_a_zero_is_explained_not_divided(scenario_api: Api, a: str, b: str, why: str) -> None:
    split = _compare(scenario_api, a, b)["decomposition"]
    assert split["explanation"].startswith(why)
    assert split["parts"] == dict.fromkeys(
        ("price_per_token", "tokens_per_attempt", "attempts_per_completed_task")
    )


def test_cohorts_by_period_team_and_both(scenario_api: Api) -> None:
    # January: S1, S2, S3 (2 completed); the week of Jan 12: S3 alone
    doc = _compare(scenario_api, "period:2026-01", "period:2026-01-12..2026-01-19")
    assert (doc["a"]["tasks"], doc["a"]["completed"], doc["b"]["tasks"]) == (3, 2, 1)
    assert doc["a"]["started_from"] == "2026-01-01T00:00:00Z"
    assert doc["b"]["started_before"] == "2026-01-19T00:00:00Z"
    doc = _compare(scenario_api, "version:v2,period:2026-02", "team:cx")
    assert (doc["a"]["tasks"], doc["a"]["pending"], doc["b"]["tasks"]) == (1, 1, 4)
    doc = _compare(scenario_api, "period:2026", "period:2026-W02", start="2026-01-06")
    assert (doc["a"]["tasks"], doc["b"]["tasks"]) == (3, 1)  # start cuts S1 off: S2 left


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"a": "version:v1"}, "b: required"),
        ({"a": "v1", "b": "version:v2"}, "a: expected version:<v>"),
        ({"a": "period:2026-13", "b": "version:v2"}, "is not a period"),
        ({"a": "period:2026-02-01..2026-01-01", "b": "version:v2"}, "ends before it starts"),
        ({"a": "version:v1,version:v2", "b": "version:v2"}, "one version per cohort"),
        ({"a": "version:v1", "b": "version:v2", "workflow": "a,b"}, "workflow: required"),
        ({"a": "version:v1", "b": "version:v2", "cost": "some"}, "cost: expected"),
    ],
)
def test_bad_cohorts_are_400(scenario_api: Api, params: dict[str, str], message: str) -> None:
    resp = scenario_api.get("/api/v1/compare", **{"workflow": "support", **params})
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["error"]["message"]


def test_csv_is_the_table(scenario_api: Api) -> None:
    resp = scenario_api.get(
        "/api/v1/compare",
        workflow="support",
        a="version:v1",
        b="version:v2",
        format="csv",
        as_of=AS_OF_TEXT,
    )
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    lines = resp.text.splitlines()
    assert lines[0] == "metric,a,b,change"
    assert "cost_per_completed_task_usd,1.25,0.45,-0.8" in lines
    assert any(line.startswith("part:tokens_per_attempt,775.0,400.0,-0.") for line in lines)
