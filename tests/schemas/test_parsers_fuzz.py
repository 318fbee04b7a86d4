"""Properties of the signal and cost-entry parsers (hypothesis): whatever a body holds, an item
is either accepted — then stored rows build, land in the lake and read back through the views,
every figure of ``cost=full`` included — or rejected with a reason; nothing raises."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from deltalake.transaction import RemoveAction
from hypothesis import event, given, settings
from hypothesis import strategies as st

from ingest.lake.append import append_rows
from schemas.costs import COMPONENTS, costs_table, parse_costs
from schemas.jsonitems import TIME_END_NS, BodyError, Parsed, ns_to_iso, rfc3339_ns
from schemas.lake import COSTS, PARTITION, SIGNALS, TABLES
from schemas.signals import OUTCOMES, parse_signals, signals_table
from tests.fuzzing import examples
from tests.lakes import connect, new_lake, tables

pytestmark = pytest.mark.fuzz

NOW = rfc3339_ns("2026-06-01T00:00:00Z")
#: Cases of the properties that read every item back through the views (~0.2 s each).
READING_EXAMPLES = examples(20, 500)
_files = itertools.count()

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_value = st.recursive(
    json_leaf,
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3)
    ),
    max_leaves=6,
)
ids = st.text(min_size=0, max_size=8) | st.sampled_from(["a/b", 'q"', "\r\n", "🎉", "x" * 513])
moments = (
    st.integers(-(10**19), 2**64).map(lambda n: ns_to_iso(n) if 0 <= n < 2**63 else f"{n}")
    | st.datetimes().map(lambda d: d.isoformat() + "Z")
    | st.sampled_from(["2026-01-01", "1970-01-01T00:00:00Z", "2262-01-01", "2261-12-31T23:59:59Z"])
    | st.text(max_size=12)
)
#: Money as a sender writes it: JSON numbers (raw text, so 1e15 stays exact), strings, nonsense.
money = (
    st.decimals(-1, 10**16, places=13, allow_nan=False, allow_infinity=False).map(str)
    | st.sampled_from(["1e15", "1000000000000000", "1e16", "0.000000000001", "-0", "1E-13"])
    | st.integers(-5, 10**17).map(str)
)


def _body(items: list[Any]) -> bytes:
    """The items as a JSON array; a ``("num", text)`` value is written as a raw number."""
    parts = []
    for item in items:
        if isinstance(item, dict):
            fields = []
            for k, v in item.items():
                text = v[1] if isinstance(v, tuple) else json.dumps(v)
                fields.append(f"{json.dumps(k)}: {text}")
            parts.append("{" + ", ".join(fields) + "}")
        else:
            parts.append(json.dumps(item))
    return ("[" + ", ".join(parts) + "]").encode()


def _money_value() -> st.SearchStrategy[Any]:
    return money.map(lambda t: ("num", t)) | money | json_leaf


signal_items = st.fixed_dictionaries(
    {},
    optional={
        "task_id": ids,
        "correlation_id": ids,
        "outcome": st.sampled_from(OUTCOMES) | st.text(max_size=5),
        "occurred_at": moments,
        "workflow": ids,
        "reason": st.text(max_size=30),
        "rework_cost_usd": _money_value(),
        "rework_minutes": json_leaf,
        "signal_id": ids,
        "attributes": st.dictionaries(st.text(max_size=8), json_value, max_size=4) | json_leaf,
        "unknown": json_leaf,
    },
)
cost_items = st.fixed_dictionaries(
    {
        "component": st.sampled_from(COMPONENTS) | st.text(max_size=5),
        "amount_usd": _money_value(),
        "period_start": moments,
        "period_end": moments,
    },
    optional={"workflow": ids, "team": ids, "entry_id": ids, "note": st.text(max_size=30)},
)


# Items a well-behaved sender writes, with every value anywhere in its valid range: most
# of these are accepted, so the "stored and read back" half of each property is exercised.
good_ids = st.text(min_size=1, max_size=12).filter(str.strip) | st.sampled_from(
    ["a/b", 'q"', "x\r\ny", "🎉", "y" * 512]
)
good_money = st.decimals(0, 10**15, places=12, allow_nan=False, allow_infinity=False).map(str)
good_signals = st.fixed_dictionaries(
    {"task_id": good_ids, "outcome": st.sampled_from(OUTCOMES)},
    optional={
        "occurred_at": st.integers(0, NOW).map(ns_to_iso),
        "rework_cost_usd": good_money | good_money.map(lambda t: ("num", t)),
        "rework_minutes": st.floats(0, 1e300) | st.integers(0, 2**70),
        "workflow": good_ids,
        "reason": good_ids,
        "signal_id": good_ids,
        "attributes": st.dictionaries(st.text(max_size=8), json_value, max_size=4),
    },
)
good_costs = st.builds(
    lambda component, amount, bounds, workflow: {
        "component": component,
        "amount_usd": amount,
        "period_start": ns_to_iso(min(bounds)),
        "period_end": ns_to_iso(max(bounds)),
        **({"workflow": workflow} if workflow else {}),
    },
    st.sampled_from(COMPONENTS),
    good_money | good_money.map(lambda t: ("num", t)),
    st.sets(st.integers(0, TIME_END_NS), min_size=2, max_size=2),
    st.none() | good_ids,
)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    root = new_lake(tmp_path_factory.mktemp("fuzz"))
    con = connect(root)
    yield root, con
    con.close()


@contextmanager
def _stored(con: Any, lake: str, table: str, rows: pa.Table) -> Iterator[None]:
    """``rows`` committed to ``table`` while the block runs, the views pinned to them (each
    case reads its own: a second commit removes them after)."""
    t = tables(lake)
    written = append_rows(t, table, rows, prefix=f"case{next(_files)}")
    t.pin(con)
    try:
        yield
    finally:
        t.current(table).create_write_transaction(
            [RemoveAction(f.path, True, 0, f.size, {PARTITION: f.day}) for f in written],
            mode="append",
            schema=TABLES[table].delta_schema,
            partition_by=[PARTITION],
        )


def _check_rejections(parsed: Parsed[Any], count: int) -> None:
    assert len(parsed.items) + len(parsed.rejected) == count
    assert sorted(parsed.indexes + [r["index"] for r in parsed.rejected]) == list(range(count))
    assert all(isinstance(r["error"], str) and r["error"] for r in parsed.rejected)


@given(st.lists(good_signals | signal_items | json_value, min_size=1, max_size=6))
@settings(max_examples=READING_EXAMPLES)
def test_signals_accepted_are_stored_and_read_back(lake: tuple[str, Any], items: list[Any]) -> None:
    root, con = lake
    parsed = parse_signals(_body(items), "application/json", now=NOW)
    _check_rejections(parsed, len(items))
    event("some accepted" if parsed.items else "none accepted")
    if not parsed.items:
        return
    with _stored(con, root, SIGNALS, signals_table(parsed.items, received_at_ms=0)):
        for s in parsed.items:
            row = con.execute(
                "SELECT rework_cost_usd FROM signals WHERE signal_id = ?", [s.signal_id]
            ).fetchone()
            assert row is not None
        con.execute("SELECT * FROM unallocated_costs_in()").fetchall()  # tasks, rework


@given(st.lists(good_costs | cost_items | json_value, min_size=1, max_size=6))
@settings(max_examples=READING_EXAMPLES)
def test_cost_entries_accepted_are_stored_and_every_read_still_answers(
    lake: tuple[str, Any], items: list[Any]
) -> None:
    root, con = lake
    parsed = parse_costs(_body(items), "application/json")
    _check_rejections(parsed, len(items))
    event("some accepted" if parsed.items else "none accepted")
    for entry in parsed.items:
        assert 0 <= entry.amount_usd <= Decimal(10**15)
        assert 0 <= entry.period_start_ns < entry.period_end_ns
    if not parsed.items:
        return
    with _stored(con, root, COSTS, costs_table(parsed.items, received_at_ms=0)):
        full = "SELECT * FROM cost_per_task_by(by_workflow := true, full_cost := true)"
        con.execute(full).fetchall()
        con.execute("SELECT * FROM unallocated_costs_in()").fetchall()  # every allocation


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_body_is_items_or_a_body_error(body: bytes) -> None:
    for parse in (parse_signals, parse_costs):
        try:
            parse(body, None)
        except BodyError as exc:
            assert str(exc)
