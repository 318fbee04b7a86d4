"""One money range for every amount (``schemas.money``) and SQL arithmetic that no amount in
it can overflow (``schemas/money.sql``, ``allocation.sql``, ``cost_rows.sql``)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal, localcontext

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.money import MAX_USD, usd_amount
from schemas.templates import PACKAGE as TEMPLATES
from schemas.templates import render, sql_file
from tests.lakes import at, connect, signal, span, write_costs, write_signals, write_spans

#: Units of 1e-12 USD.
UNIT = 10**12
MAX_UNITS = int(MAX_USD) * UNIT
#: share_units is exact for totals below this (a scope's spend below ~$9.6 trillion).
EXACT_TOTAL = 2**83


def units(amount: Decimal) -> int:
    """``amount`` in units of 1e-12 USD, exactly (the default context rounds to 28 digits)."""
    with localcontext(prec=60):
        return int(amount * UNIT)


@pytest.fixture(scope="module")
def money() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    con.execute(sql_file(TEMPLATES, "macros"))
    con.execute(sql_file(TEMPLATES, "money"))
    yield con
    con.close()


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("-0.01", "must not be negative"),
        ("1000000000000000.000000000001", "largest amount"),
        ("1e16", "largest amount"),
        ("0.0000000000001", "at most 12 decimal places"),
        ("NaN", "finite"),
    ],
)
def test_one_range_refuses(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        usd_amount(Decimal(text))


def test_one_range_keeps_its_bounds_exactly() -> None:
    assert usd_amount(Decimal(0)) == 0
    assert usd_amount(Decimal("1e15")) == MAX_USD
    assert usd_amount(Decimal("999999999999999.999999999999")).as_tuple().exponent == -12


@pytest.mark.fuzz
@given(
    amount=st.integers(0, 10 * MAX_UNITS),
    total=st.integers(1, EXACT_TOTAL - 1),
    share=st.floats(0, 1),
)
def test_share_units_is_floor_of_the_exact_product(
    money: duckdb.DuckDBPyConnection, amount: int, total: int, share: float
) -> None:
    weight = min(total, int(total * share))
    (got,) = money.execute(
        "SELECT share_units(?::HUGEINT, ?::HUGEINT, ?::HUGEINT)",
        [str(amount), str(weight), str(total)],
    ).fetchone() or (None,)
    assert got == amount * weight // total


@pytest.mark.fuzz
@given(amount=st.integers(0, 10 * MAX_UNITS), weights=st.lists(st.integers(0, 2**90), min_size=1))
def test_shares_beyond_the_exact_range_never_exceed_the_amount(
    money: duckdb.DuckDBPyConnection, amount: int, weights: list[int]
) -> None:
    total = sum(weights) or 1
    shares = [
        money.execute(
            "SELECT share_units(?::HUGEINT, ?::HUGEINT, ?::HUGEINT)",
            [str(amount), str(w), str(total)],
        ).fetchone()
        for w in weights
    ]
    assert sum(s[0] for s in shares if s) <= amount


@pytest.mark.fuzz
@given(st.decimals(0, MAX_USD, places=12, allow_nan=False, allow_infinity=False))
def test_usd_units_round_trips_every_amount(
    money: duckdb.DuckDBPyConnection, amount: Decimal
) -> None:
    row = money.execute(
        "SELECT usd_units(?::DECIMAL(38, 12)), units_usd(usd_units(?::DECIMAL(38, 12)))",
        [amount, amount],
    ).fetchone()
    assert row == (units(amount), amount)


def test_a_quadrillion_over_a_trillion_dollar_scope_reaches_its_tasks_exactly() -> None:
    """The largest entry accepted over a scope whose inference spend exceeds $10^12: every
    share is the exact floor of amount x spend / scope spend, the unit left over goes to the
    largest task, and the shares add up to the entry to the last 1e-12 USD."""
    spends = {
        "big": Decimal("700000000000.000000000001"),
        "mid": Decimal("512345678901.234567890123"),
        "small": Decimal("0.000000000007"),
    }
    tasks = (
        "(SELECT * FROM (VALUES "
        + ", ".join(
            f"('{k}', 'w', NULL::VARCHAR, TIMESTAMPTZ '2026-01-05 09:00:00+00',"
            f" {v}::DECIMAL(38, 12))"
            for k, v in spends.items()
        )
        + ") AS t(task_key, workflow, team, started_at, spend_usd))"
    )
    costs = (
        "(SELECT 'e' AS entry_id, 'infrastructure' AS component,"
        " 1000000000000000::DECIMAL(38, 12) AS amount_usd,"
        " TIMESTAMPTZ '2026-01-01 00:00:00+00' AS period_start,"
        " TIMESTAMPTZ '2026-02-01 00:00:00+00' AS period_end,"
        " 'w' AS workflow, NULL::VARCHAR AS team, NULL::VARCHAR AS note)"
    )
    con = duckdb.connect()
    con.execute(sql_file(TEMPLATES, "macros"))
    con.execute(sql_file(TEMPLATES, "money"))
    shares = render("allocation", {"tasks": tasks, "costs": costs, "output": "task_allocations"})
    rows = dict(con.execute(f"SELECT task_key, infrastructure_usd FROM ({shares})").fetchall())
    weights = {k: units(v) for k, v in spends.items()}
    scope = sum(weights.values())
    assert scope > 10**12 * UNIT
    want = {k: MAX_UNITS * u // scope for k, u in weights.items()}
    want["big"] += MAX_UNITS - sum(want.values())
    assert {k: units(v) for k, v in rows.items()} == want
    assert sum(rows.values()) == MAX_USD
    con.close()


def test_cost_full_with_the_largest_amounts_everywhere(lake: str) -> None:
    """Maximal spans, entries and rework on one lake: cost=full answers every grouping, and
    its components add up to its spend exactly."""
    top = "999999.999999999999"  # the largest cost a span row holds (DECIMAL(18, 12))
    rows = []
    for i in range(12):
        name = f"t{i}"
        rows.append(
            span(name, f"{name}-r", start=at(i), op="invoke_workflow", task_id=name, workflow="w")
        )
        for j in range(3):
            rows.append(
                span(
                    name,
                    f"{name}-c{j}",
                    parent=f"{name}-r",
                    start=at(i),
                    op="chat",
                    cost=top,
                    model="m",
                    provider="p",
                    tokens=(10, 1),
                    role=f"role{j}",
                )
            )
    write_spans(lake, rows, "spans")
    big = str(MAX_USD)
    write_costs(
        lake,
        [
            {
                "component": c,
                "amount_usd": big,
                "period_start": "2026-01-01",
                "period_end": "2026-02-01",
                **({"workflow": "w"} if c == "labor" else {}),
            }
            for c in ("rework", "labor", "infrastructure", "licence", "other")
        ],
        "costs",
    )
    write_signals(
        lake,
        [signal(f"t{i}", "completed", at(i + 1), rework_cost_usd=big) for i in range(12)],
        "signals",
    )
    con = connect(lake)
    con.execute("SET VARIABLE as_of = TIMESTAMPTZ '2026-03-01 00:00:00+00'")
    for grouping in ("by_workflow := true", "by_role := true", "by_model := true, by_day := true"):
        answer = con.execute(
            "SELECT spend_usd, inference_usd + rework_usd + labor_usd + infrastructure_usd"
            " + licence_usd + other_usd, cost_per_completed_task_usd"
            f" FROM cost_per_task_by({grouping}, full_cost := true)"
        ).fetchall()
        assert answer and all(spend == parts for spend, parts, _ in answer)
        total = sum(r[0] for r in answer)
        assert total == 5 * MAX_USD + 12 * MAX_USD + 36 * Decimal(top)
    con.close()


@pytest.mark.fuzz
@given(
    amount=st.decimals(0, 10**25, places=12, allow_nan=False, allow_infinity=False),
    n=st.integers(1, 10**12),
)
def test_usd_per_rounds_half_up_for_any_sum(
    money: duckdb.DuckDBPyConnection, amount: Decimal, n: int
) -> None:
    (got,) = money.execute(
        "SELECT usd_per(?::DECIMAL(38, 12), ?::BIGINT)", [amount, n]
    ).fetchone() or (None,)
    whole = units(amount)
    assert units(got) == whole // n + (2 * (whole % n) >= n)
