"""The world of the access tests: tokens of every kind, a lake of two teams (the economics
scenario, plus rows made to be leaked: a trace shared by both teams, an attempt of no team,
a fin task whose attributes hold a secret, cost entries and signals of each kind), and the
whole app (gatekeeper included) served over real HTTP."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
from starlette.routing import BaseRoute

from schemas.auth import Scope, TokenSpec
from schemas.settings import Settings
from service.app import create_app
from service.db import Database
from tests.lakes import at, signal, span, write_costs, write_signals, write_spans
from tests.service import scenario
from tests.service.conftest import serve_app


def token(name: str, scopes: Sequence[str], teams: Sequence[str] | None = None) -> TokenSpec:
    """A ``[[tokens]]`` entry whose secret is ``<name>-secret``."""
    return TokenSpec(
        name,
        hashlib.sha256(f"{name}-secret".encode()).digest(),
        frozenset(Scope(s) for s in scopes),
        frozenset(teams) if teams is not None else None,
    )


TOKENS = (
    token("cx-reader", ["read"], ["cx"]),
    token("fin-reader", ["read"], ["fin"]),
    token("reader", ["read"]),
    token("admin", ["admin"]),
    token("gateway", ["ingest"]),
    token("cx-gateway", ["ingest"], ["cx"]),
)
LEGACY = "legacy-flat-secret"


def bearer(name: str) -> dict[str, str]:
    secret = LEGACY if name == "legacy" else f"{name}-secret"
    return {"authorization": f"Bearer {secret}"}


#: What only team fin's rows (or rows of no team) hold: none may reach a cx-only reader.
MARKERS = (
    "FINSECRET",
    "NOTEAMSECRET",
    "billing",
    "B1-0",
    "B2-0",
    "B3-0",
    "B9-0",
    "MIXFIN",
    "infra-fin",
    "licence-all",
    "GHOST",
)
_FIN = re.compile(r"(?<![A-Za-z_])fin(?![A-Za-z_])")


def leaks(text: str) -> list[str]:
    """The markers of rows that are not cx's found in ``text``."""
    found = [m for m in MARKERS if m in text]
    if _FIN.search(text):
        found.append("fin")
    return found


def build(lake: Path) -> None:
    """The scenario, then the rows made to be leaked (see module doc)."""
    scenario.build(lake)
    start = at(24 * 3)
    secret = [("secret.note", "FINSECRET")]
    rows: list[dict[str, Any]] = [
        # one trace, two attempts of two teams
        span("mix", "mix-cx", start=start, op="invoke_workflow", correlation_id="MIX-cx",
             task_id="MIX-cx", workflow="support", team="cx"),
        span("mix", "mix-cx-chat", parent="mix-cx", start=start, op="chat", model="m-small",
             provider="p-a", cost="0.01", tokens=(10, 1), correlation_id="MIX-cx"),
        span("mix", "mix-fin", start=start, op="invoke_workflow", correlation_id="MIXFIN",
             task_id="MIXFIN", workflow="billing", team="fin", attributes=secret),
        span("mix", "mix-fin-chat", parent="mix-fin", start=start, op="chat", model="m-large",
             provider="p-b", cost="0.02", tokens=(20, 2), correlation_id="MIXFIN",
             attributes=secret),
        # an attempt no span of which names a team
        span("noteam", "noteam-root", start=start, op="invoke_workflow",
             correlation_id="NOTEAM-0", attributes=[("secret.note", "NOTEAMSECRET")]),
        span("noteam", "noteam-chat", parent="noteam-root", start=start, op="chat",
             model="m-small", provider="p-a", cost="0.03", tokens=(30, 3),
             correlation_id="NOTEAM-0"),
        # a fin task whose spans carry a secret
        span("b9", "b9-root", start=start, op="invoke_workflow", correlation_id="B9-0",
             task_id="B9", workflow="billing", team="fin", attributes=secret),
        span("b9", "b9-chat", parent="b9-root", start=start, op="chat", model="m-large",
             provider="p-b", cost="0.04", tokens=(40, 4), correlation_id="B9-0",
             attributes=secret),
    ]  # fmt: skip
    write_spans(lake, rows, "access")
    later = start + timedelta(hours=1)
    write_signals(
        lake,
        [
            signal("B9", "completed", later, signal_id="sig-b9", reason="FINSECRET"),
            signal("B9", "failed", later, signal_id="sig-b9-wrong", workflow="wrong-wf"),
            signal("GHOST", "completed", later, signal_id="sig-ghost", rework_cost_usd="1"),
            signal("MIX-cx", "completed", later, signal_id="sig-mix-cx"),
            signal("S4", "rework", later, signal_id="sig-s4-wrong", workflow="not-support"),
        ],
        "access-signals",
    )
    write_costs(
        lake,
        [
            {"component": "other", "amount_usd": "2", "team": "cx", "entry_id": "tools-cx",
             "period_start": "2026-01-01", "period_end": "2026-02-01"},
            {"component": "other", "amount_usd": "4", "team": "cx", "entry_id": "idle-cx",
             "period_start": "2030-01-01", "period_end": "2030-02-01"},
        ],
        "access-costs",
    )  # fmt: skip


class Ready:
    """A status source that is always ready (the ingest runtime's stand-in)."""

    @property
    def ready(self) -> bool:
        return True

    @property
    def reasons(self) -> Sequence[str]:
        return []

    @property
    def warnings(self) -> Sequence[str]:
        return []

    def readiness(self) -> Ready:
        return self

    def stats(self) -> Mapping[str, int]:
        return {"spans": 1}


def access_settings(lake: Path, **changes: Any) -> Settings:
    values: dict[str, Any] = {"lake": str(lake), "tokens": TOKENS, "auth_tokens": (LEGACY,)}
    values.update(changes)
    return Settings(**values)


@contextmanager
def serve(
    settings: Settings, ingest_routes: Sequence[BaseRoute] = (), *, store: bool = True
) -> Iterator[str]:
    """The whole app over ``settings`` (gatekeeper included) on a free port."""
    db = Database(settings, store=store)
    db.warm()  # the store built: a query's time limit is not spent waiting for it
    app = create_app(settings, status=Ready(), db=db, ingest_routes=ingest_routes)
    try:
        with serve_app(app) as base:
            yield base
    finally:
        db.close()


@dataclass
class Client:
    base: str

    def get(self, who: str | None, path: str, **params: Any) -> requests.Response:
        headers = bearer(who) if who else {}
        return requests.get(self.base + path, params=params, headers=headers, timeout=120)

    def sql(self, who: str | None, sql: str, **extra: Any) -> requests.Response:
        headers = bearer(who) if who else {}
        headers.update(extra.pop("headers", {}))
        body = {"sql": sql, **extra}
        return requests.post(self.base + "/api/v1/query", json=body, headers=headers, timeout=120)

    def rows(self, who: str, sql: str) -> list[list[Any]]:
        resp = self.sql(who, sql)
        assert resp.status_code == 200, resp.text
        rows: list[list[Any]] = resp.json()["rows"]
        return rows
