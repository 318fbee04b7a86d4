"""``tasklake report compare | trends | levers | autonomy``: the analyses' answers as tables.

Each prints what its route answers (``GET /api/v1/compare``, ``/trends``, ``/levers``,
``/autonomy``) for the same parameters, from the same macros (``service.api.analysis``); the
report never computes a figure of its own.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from schemas.settings import Settings
from service.api.analysis import filter_args, macro_rows
from service.api.compare import PARTS, cohort, compare_args
from service.api.levers import lever_rows
from service.api.params import Filters, moment, names
from service.db import Database, QueryError
from service.errors import ApiError
from service.report import _cell, _money, _pct, table


def _num(value: Any, places: int = 1) -> str:
    return "—" if value is None else f"{float(value):,.{places}f}"


def _signed_money(value: Any, places: int = 4) -> str:
    if value is None:
        return "—"
    sign = "+" if float(value) >= 0 else "-"
    return sign + _money(abs(float(value)), places)


def _change(value: Any) -> str:
    return "—" if value is None else f"{float(value) * 100:+.1f}%"


def render_compare(
    db: Database,
    workflow: str,
    a: dict[str, Any],
    b: dict[str, Any],
    f: Filters,
    *,
    labels: tuple[str, str],
    full: bool = False,
) -> str:
    args = compare_args(workflow, a, b, f, full=full)
    sides = {r["side"]: r for r in macro_rows(db, "compare_by", args, as_of=f.as_of)}
    (split,) = macro_rows(db, "compare_decomposition_by", args, as_of=f.as_of)
    shown = (
        ("attempts", str),
        ("tasks", str),
        ("completed", str),
        ("pending", str),
        ("failure_rate", _pct),
        ("tokens_per_attempt", _num),
        ("cost_per_attempt_usd", lambda v: _money(v, 4)),
        ("spend_usd", _money),
        ("cost_per_completed_task_usd", lambda v: _money(v, 4)),
    )

    def cell(fn: Any, value: Any) -> str:
        return "—" if value is None else str(fn(value))

    body = [[name, *(cell(fn, sides[s][name]) for s in ("a", "b", "change"))] for name, fn in shown]
    kind = "fully loaded" if full else "inference"
    out = [
        f"Compare {workflow}: a = {labels[0]}, b = {labels[1]} ({kind}), USD",
        "",
        *table(["", labels[0], labels[1], "change"], body, 1),
        "",
    ]
    if split["total_change_usd"] is None or split["explanation"] is not None:
        out.append(f"Not split: {split['explanation']}.")
        return "\n".join(out) + "\n"
    parts = [(name, split[column]) for name, column, _ in PARTS]
    if full:
        parts.append(("non-inference", split["part_non_inference"]))
    out.append(
        f"Change in cost per completed task: {_signed_money(split['total_change_usd'])},"
        f" split by {split['method']}:"
    )
    out += [f"  {name.replace('_', ' '):30s} {_signed_money(v)}" for name, v in parts]
    out.append(f"  {'sum of the parts':30s} {_signed_money(split['sum_of_parts_usd'])}")
    return "\n".join(out) + "\n"


def render_trends(db: Database, f: Filters, *, period: str, full: bool = True) -> str:
    args = filter_args(f, period=("VARCHAR", period), full_cost=("BOOLEAN", full))
    rows = macro_rows(db, "trends_by", args, as_of=f.as_of)
    header = [
        "workflow",
        period,
        "tasks",
        "completed",
        "pending",
        "failure",
        "spend",
        "per completed task",
        "tokens/attempt",
    ]
    body = [
        [
            _cell(r["workflow"]),
            _cell(r["period_start"]),
            str(r["tasks"]),
            str(r["completed"]),
            str(r["pending"]),
            _pct(r["failure_rate"]),
            _money(r["spend_usd"]),
            _money(r["cost_per_completed_task_usd"], 4),
            _num(r["tokens_per_attempt"], 0),
        ]
        for r in rows
    ]
    kind = "fully loaded" if full else "inference"
    out = [f"Cost per completed task by {period} ({kind}), USD", "", *table(header, body, 2)]
    if not body:
        out.append("(no tasks)")
    out += ["", "Diagnosis (recent against baseline periods):"]
    for d in macro_rows(db, "trend_diagnosis_by", args, as_of=f.as_of):
        line = (
            f"  {_cell(d['workflow'])}: {d['state']} — cost per completed task"
            f" {_change(d['cost_change'])}, tasks {_change(d['volume_change'])},"
            f" spend {_change(d['spend_change'])}"
        )
        if d["cause"]:
            line += f"; cause: {d['cause'].replace('_', ' ')}"
        if d["note"]:
            line += f" ({d['note']})"
        out.append(line)
    return "\n".join(out) + "\n"


def _lever_summary(lever: str, m: dict[str, Any]) -> str:
    if lever == "routing":
        moves = [x for x in m.get("models") or [] if x["candidate_model"]]
        return (
            "; ".join(f"{x['role']} {x['model']} -> {x['candidate_model']}" for x in moves)
            or f"{m.get('calls')} calls, no smaller model proven in the same role"
        )
    if lever == "caching":
        return (
            f"cache reads {_pct(m.get('cache_read_share'))} of input,"
            f" saved {_money(m.get('saved_by_cache_usd'))},"
            f" full-price input {_money(m.get('full_price_input_usd'))}"
        )
    if lever == "retrieval":
        return (
            f"{_num(m.get('retrievals_per_attempt'), 2)} retrievals/attempt,"
            f" {m.get('calls_after_retrieval')} calls after one"
        )
    if lever == "prompt_size":
        return f"median input {_num(m.get('workflow_input_p50'), 0)} tokens per call"
    return (
        f"{_num(m.get('retries_per_completed_task'), 2)} retries per completed task,"
        f" {_pct(m.get('error_attempt_share'))} of attempts with errors"
    )


def render_levers(db: Database, f: Filters) -> str:
    args = filter_args(f)
    rows = lever_rows(macro_rows(db, "levers_by", args, as_of=f.as_of, priced=True))
    body = [
        [
            _cell(r["workflow"]),
            str(r["rank"]),
            r["lever"].replace("_", " "),
            _money(r["usd_at_stake"], 4),
            _lever_summary(r["lever"], r["measurement"]),
        ]
        for r in rows
    ]
    header = ["workflow", "rank", "lever", "at stake", "measurement"]
    out = ["The five levers, in dollars at stake, USD", "", *table(header, body, 1, left={2, 4})]
    return "\n".join(out) + "\n"


def render_autonomy(db: Database, f: Filters, *, full: bool = False) -> str:
    args = filter_args(f, full_cost=("BOOLEAN", full))
    rows = macro_rows(db, "autonomy_by", args, as_of=f.as_of)
    header = [
        "workflow",
        "verdict",
        "success",
        "lower bound",
        "decided",
        "per completed",
        "budget",
        "drift",
    ]
    body = [
        [
            _cell(r["workflow"]),
            r["verdict"],
            _pct(r["success_rate"]),
            _pct(r["wilson_lower_bound"]),
            str(r["decided"]),
            _money(r["cost_per_completed_task_usd"], 4),
            _money(r["budget_per_completed_task"], 4),
            _change(r["drift"]),
        ]
        for r in rows
    ]
    out = ["Autonomy gate", "", *table(header, body, 2), ""]
    for r in rows:
        out.append(f"{_cell(r['workflow'])} ({r['window_start']} .. {r['window_end']}):")
        out += [f"  - {reason}" for reason in r["reasons"]]
    return "\n".join(out) + "\n"


def analysis_command(settings: Settings, args: argparse.Namespace) -> int:
    """``tasklake report <analysis>``: print its table; 2 on bad arguments, 1 when the query
    fails."""
    name = args.analysis
    try:
        start = moment("--start", getattr(args, "start", None))
        end = moment("--end", getattr(args, "end", None))
        as_of = moment("--as-of", args.as_of)
        workflows = names("--workflow", args.workflow)
        teams = names("--team", args.team)
        full = getattr(args, "cost", "full" if name == "trends" else "inference") == "full"
        if name == "compare":
            if workflows is None or len(workflows) != 1:
                raise ApiError(400, "--workflow: one workflow, which both cohorts belong to")
            a, b = cohort("--a", args.a), cohort("--b", args.b)
    except ApiError as exc:
        print(f"tasklake report {name}: {exc.message}", file=sys.stderr)
        return 2
    f = Filters(start, end, workflows, teams, "json", as_of)
    db = Database(settings, store=False)  # a few queries: the views answer them sooner
    try:
        if name == "compare":
            assert workflows is not None
            labels = (args.a, args.b)
            text = render_compare(db, workflows[0], a, b, f, labels=labels, full=full)
        elif name == "trends":
            text = render_trends(db, f, period=args.period, full=full)
        elif name == "levers":
            text = render_levers(db, f)
        else:
            text = render_autonomy(db, f, full=full)
        sys.stdout.write(text)
    except QueryError as exc:
        print(f"tasklake report {name}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        db.close()
    return 0
