"""``GET /api/v1/levers``: each lever's dollars against a hand computation.

Prices (``[[prices]]``, USD per million tokens): ``big`` input 10, cache read 1, output 30;
``tiny`` input 1, output 2 (no cache price: a cache read costs input). Workflow ``w``, five
attempts, one model call each (input tokens include cache reads), all costs exact:

  A1  T1, 1st try  planner  big   2,000 in, 100 out, error      $0.023
  A2  T1, 2nd try  drafter  big   4,000 in (1,000 cached), 300 out, after a retrieval
                                  that reported 500 tokens       $0.04
  A3  T2 (failed)  drafter  big   1,000 in, 100 out              $0.013
  A4  T3           drafter  tiny  1,500 in, 200 out              $0.0019
  A5  T4 (pending) planner  big     500 in,  50 out              $0.0065

T1 and T3 completed, T2 failed, T4 has no signal yet. The workflow's median input per call is
1,500 tokens (500, 1,000, 1,500, 2,000, 4,000).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from schemas.settings import PriceOverride, Settings
from tests.lakes import T0, signal, span, write_signals, write_spans
from tests.service.conftest import Api, serve_api
from tests.service.workloads import usd

AS_OF = (T0 + timedelta(days=3)).isoformat()
PRICES = (
    PriceOverride(model="big", input=Decimal(10), output=Decimal(30), cache_read=Decimal(1)),
    PriceOverride(model="tiny", input=Decimal(1), output=Decimal(2)),
)
#: attempt: (task, role, model, input, cached, output, cost, error)
CALLS = {
    "A1": ("T1", "planner", "big", 2000, 0, 100, "0.023", True),
    "A2": ("T1", "drafter", "big", 4000, 1000, 300, "0.04", False),
    "A3": ("T2", "drafter", "big", 1000, 0, 100, "0.013", False),
    "A4": ("T3", "drafter", "tiny", 1500, 0, 200, "0.0019", False),
    "A5": ("T4", "planner", "big", 500, 0, 50, "0.0065", False),
}


def _rows() -> list[dict[str, Any]]:
    rows = []
    for n, (attempt, (task, role, model, inp, cached, out, cost, error)) in enumerate(
        CALLS.items()
    ):
        late = timedelta(days=2, hours=12) if task == "T4" else timedelta(0)  # still pending
        start = T0 + timedelta(hours=n) + late
        rows.append(
            span(
                attempt,
                f"{attempt}-root",
                start=start,
                op="invoke_workflow",
                correlation_id=attempt,
                task_id=task,
                workflow="w",
            )
        )
        if attempt == "A2":
            rows.append(
                span(
                    attempt,
                    "A2-retrieval",
                    parent="A2-root",
                    start=start + timedelta(seconds=1),
                    op="retrieval",
                    total_tokens=500,
                )
            )
        rows.append(
            span(
                attempt,
                f"{attempt}-chat",
                parent=f"{attempt}-root",
                start=start + timedelta(seconds=3),
                op="chat",
                role=role,
                model=model,
                provider="p",
                cost=cost,
                tokens=(inp, out),
                cache_read_tokens=cached or None,
                error=error,
            )
        )
    return rows


@pytest.fixture(scope="module")
def levers_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    lake = tmp_path_factory.mktemp("levers") / "lake"
    write_spans(lake, _rows(), "spans")
    done = T0 + timedelta(hours=6)
    write_signals(
        lake,
        [
            signal("T1", "completed", done),
            signal("T2", "failed", done),
            signal("T3", "completed", done),
        ],
        "signals",
    )
    with serve_api(Settings(lake=str(lake), prices=PRICES)) as base:
        yield Api(base)


@pytest.fixture(scope="module")
def levers(levers_api: Api) -> dict[str, dict[str, Any]]:
    doc = levers_api.json("/api/v1/levers", workflow="w", as_of=AS_OF)
    assert {r["workflow"] for r in doc["rows"]} == {"w"}
    return {r["lever"]: r for r in doc["rows"]}


def test_the_ranking(levers: dict[str, dict[str, Any]]) -> None:
    ranked = sorted(levers.values(), key=lambda r: r["rank"])
    assert [(r["lever"], usd(r["usd_at_stake"])) for r in ranked] == [
        ("caching", Decimal("0.0585")),
        ("routing", Decimal("0.0472")),
        ("failed_runs", Decimal("0.036")),
        ("prompt_size", Decimal("0.03")),
        ("retrieval", Decimal("0.025")),
    ]


def test_routing(levers: dict[str, dict[str, Any]]) -> None:
    """big as drafter (T1 completed, T2 failed: 50%) could be tiny, which drafted T3 (100%):
    its 5,000 input (1,000 cached: tiny has no cache price) and 400 output tokens cost
    4,000 x $1 + 1,000 x $1 + 400 x $2 per million = $0.0058 there, against $0.053."""
    m = levers["routing"]["measurement"]
    assert (m["calls"], usd(m["spend_usd"])) == (5, Decimal("0.0844"))
    models = {(r["role"], r["model"]): r for r in m["models"]}
    big = models[("drafter", "big")]
    assert (big["calls"], usd(big["spend_usd"]), big["success_rate"]) == (2, Decimal("0.053"), 0.5)
    assert (big["candidate_model"], big["candidate_success_rate"]) == ("tiny", 1.0)
    assert usd(big["cost_on_candidate_usd"]) == Decimal("0.0058")
    assert usd(big["saving_usd"]) == Decimal("0.0472")
    # tiny drafts better and cheaper: nothing to move; the planner has no smaller peer
    assert models[("drafter", "tiny")]["candidate_model"] is None
    assert models[("planner", "big")]["candidate_model"] is None
    assert models[("planner", "big")]["success_rate"] == 1.0  # T4 is not decided


def test_caching(levers: dict[str, dict[str, Any]]) -> None:
    """big reads cache at $1 instead of $10: 1,000 cached tokens saved $0.009; 6,500 input
    tokens on big paid full price ($0.065) and would save $9 a million read from cache."""
    m = levers["caching"]["measurement"]
    assert (m["input_tokens"], m["cache_read_tokens"]) == (9000, 1000)
    assert m["cache_read_share"] == pytest.approx(1 / 9)
    assert usd(m["saved_by_cache_usd"]) == Decimal("0.009")
    assert m["full_price_input_tokens"] == 6500
    assert usd(m["full_price_input_usd"]) == Decimal("0.065")


def test_prompt_size(levers: dict[str, dict[str, Any]]) -> None:
    """Above the median of 1,500: A1 500 and A2 2,500 tokens, at big's $10 a million."""
    m = levers["prompt_size"]["measurement"]
    assert m["workflow_input_p50"] == 1500
    roles = {r["role"]: r for r in m["roles"]}
    assert roles["planner"]["input_tokens_p50"] == 1250
    assert roles["planner"]["input_tokens_p95"] == pytest.approx(1925)  # 500 + 0.95 x 1,500
    assert roles["drafter"]["input_tokens_p50"] == 1500
    assert roles["drafter"]["input_tokens_p95"] == pytest.approx(3750)  # 1,500 + 0.9 x 2,500
    assert usd(roles["planner"]["excess_input_usd"]) == Decimal("0.005")
    assert usd(roles["drafter"]["excess_input_usd"]) == Decimal("0.025")


def test_retrieval(levers: dict[str, dict[str, Any]]) -> None:
    """One retrieval of 500 tokens over five attempts; A2 follows it with 4,000 input tokens,
    2,500 of them above the median."""
    m = levers["retrieval"]["measurement"]
    assert (m["attempts"], m["retrievals"], m["retrieved_tokens"]) == (5, 1, 500)
    assert (m["retrievals_per_attempt"], m["retrieved_tokens_per_attempt"]) == (0.2, 100)
    assert (m["calls_after_retrieval"], m["input_tokens_after_retrieval"]) == (1, 4000)


def test_failed_runs(levers: dict[str, dict[str, Any]]) -> None:
    """T2's attempt ($0.013) and T1's first ($0.023); T4 is pending, not failed."""
    m = levers["failed_runs"]["measurement"]
    assert usd(m["unfinished_tasks_usd"]) == Decimal("0.013")
    assert usd(m["earlier_attempts_usd"]) == Decimal("0.023")
    assert m["retries_per_completed_task"] == 0.5  # T1 took 2 attempts, T3 one
    assert m["error_attempt_share"] == 0.2  # A1


def test_csv(levers_api: Api) -> None:
    resp = levers_api.get("/api/v1/levers", format="csv", as_of=AS_OF)
    lines = resp.text.splitlines()
    assert lines[0] == "workflow,rank,lever,usd_at_stake,measurement"
    assert lines[1].startswith("w,1,caching,0.0585,")
