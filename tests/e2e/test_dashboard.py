"""The dashboard in a real headless Chromium, over a real ``tasklake serve`` holding the
traffic of a real ``tasklake demo`` (spans through the OTel SDK's exporter, signals and cost
entries through the REST API). What the page shows is held against what the API answers.
The server wants a bearer token, so every test also shows the page sending the user's.

One demo lake for the module (a smaller demo than the default: the story holds at any
size); screenshots go to tests/artifacts/. ``TASKLAKE_UPDATE_DOCS=1`` also writes the README's
screenshot (docs/dashboard.png).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, expect

from tests.e2e.browser import DESKTOP, PHONE, Tab, chromium, tab
from tests.e2e.harness import Server, free_port

#: Demo size for the tests: ~430 tasks, ~3,800 spans (the default is 1.0).
SCALE = "0.3"
DOCS = Path(__file__).resolve().parents[2] / "docs"
DECIDE = ("/api/v1/compare", "/api/v1/levers", "/api/v1/trends", "/api/v1/autonomy")
TOKEN = "dashboard-s3cret"
DEMO = (sys.executable, "-m", "service.cli", "demo")


def api(server: Server, path: str, **params: Any) -> Any:
    """GET a JSON answer with the token, numbers as Decimal (money stays exact)."""
    resp = requests.get(
        server.url + path,
        params=params,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=120,
    )
    assert resp.status_code == 200, resp.text
    return json.loads(resp.text, parse_float=Decimal)


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TASKLAKE_")}


@dataclass
class Demo:
    server: Server
    run: subprocess.CompletedProcess[str]
    seconds: float


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    base = tmp_path_factory.mktemp("dashboard")
    server = Server(
        lake=base / "lake", log=base / "server.log", args=("--auth-tokens", TOKEN)
    ).start()
    try:
        started = time.monotonic()
        run = subprocess.run(
            [*DEMO, "--url", server.url, "--scale", SCALE, "--tag", "e2e", "--token", TOKEN],
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
            env=clean_env(),
        )
        yield Demo(server, run, time.monotonic() - started)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def desktop(browser: Browser, demo: Demo) -> Iterator[Tab]:
    with tab(browser, DESKTOP, TOKEN) as t:
        yield t
        assert t.errors == [], t.errors  # no console errors, ever


@pytest.fixture
def phone(browser: Browser, demo: Demo) -> Iterator[Tab]:
    with tab(browser, PHONE, TOKEN) as t:
        yield t
        assert t.errors == [], t.errors


# ----------------------------------------------------------------------------- helpers

COLLECT = """(scope) => [...document.querySelectorAll(scope + " tbody tr[data-workflow]")].map(
  (tr) => ({
    workflow: tr.dataset.workflow,
    figures: Object.fromEntries([...tr.querySelectorAll("[data-field]")].map((e) => [
      e.dataset.field,
      { value: e.dataset.value, text: e.textContent, tag: e.tagName, href: e.getAttribute("href") },
    ])),
  }))"""


def shown(t: Tab, scope: str) -> dict[str, dict[str, dict[str, Any]]]:
    """The figures of each workflow row of a section, as the page has them."""
    rows = t.page.evaluate(COLLECT, scope)
    return {r["workflow"]: r["figures"] for r in rows}


def money(value: Any) -> str | None:
    """What the page prints for dollars (format.js), or None for sub-cent amounts."""
    if value is None:
        return "—"
    v = Decimal(float(value))  # the page formats the double it parsed
    if abs(v) >= 1000:
        return f"${v.quantize(Decimal(1), ROUND_HALF_UP):,}"
    if v == 0 or abs(v) >= Decimal("0.01"):
        return f"${v.quantize(Decimal('0.01'), ROUND_HALF_UP):,}"
    return None


def percent(value: Any) -> str:
    if value is None:
        return "—"
    return f"{Decimal(float(value) * 100).quantize(Decimal('0.1'), ROUND_HALF_UP)}%"


def same(figure: dict[str, Any], value: Any) -> bool:
    if value is None:
        return bool(figure["value"] == "")
    return bool(float(figure["value"]) == float(value))


def window(t: Tab) -> dict[str, str]:
    """The cohort window the page asks for (its period, as dates)."""
    return {
        "start": t.page.locator("input[name=start]").input_value(),
        "end": t.page.locator("input[name=end]").input_value(),
    }


def check_workflow_table(t: Tab, server: Server, **filters: str) -> list[str]:
    """Every figure of the workflows table equals the API's, text and value; the names."""
    doc = api(server, "/api/v1/cost-per-task", group_by="workflow", **window(t), **filters)
    page = shown(t, "#workflows")
    assert set(page) == {r["workflow"] for r in doc["rows"]}
    for row in doc["rows"]:
        figures = page[row["workflow"]]
        for field in ("cost_per_completed_task_usd", "spend_usd"):
            assert same(figures[field], row[field]), (row["workflow"], field)
            expected = money(row[field])
            if expected is not None:
                assert figures[field]["text"] == expected, (row["workflow"], field)
        assert same(figures["success_rate"], row["success_rate"])
        assert figures["success_rate"]["text"] == percent(row["success_rate"])
        for field in ("tasks", "completed", "pending"):
            assert figures[field]["text"] == f"{row[field]:,}", (row["workflow"], field)
        # every number links to the rows behind it
        assert all(f["tag"] == "A" and "#tasks" in f["href"] for f in figures.values())
    return sorted(page)


# ----------------------------------------------------------------------------- tasklake demo


def test_demo_sends_the_story_through_the_sdk(demo: Demo) -> None:
    run = demo.run
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"Open {demo.server.url}/" in run.stdout
    for stage in ("spans (OTLP/HTTP)", "signals (REST)", "cost entries (REST)"):
        assert stage in run.stderr  # the progress, stage by stage
    assert "every task is in the lake" in run.stderr
    server = demo.server
    versions = api(
        server, "/api/v1/cost-per-task", group_by="workflow,version", workflow="support-triage"
    )["rows"]
    by_version = {r["version"]: r for r in versions}
    v1, v2 = by_version["v1"], by_version["v2"]
    # about $1.40 -> about $0.38 per completed ticket, every v1 ticket decided
    assert Decimal("1.30") <= v1["cost_per_completed_task_usd"] <= Decimal("1.50"), v1
    assert Decimal("0.35") <= v2["cost_per_completed_task_usd"] <= Decimal("0.41"), v2
    assert v1["pending"] == 0 and v1["escalated"] > 0 and v1["failed"] > 0
    assert v1["attempts"] > v1["tasks"]  # retries
    assert 0 < v2["pending"] < v2["tasks"] / 10  # a trickle inside the reopen window
    rows = api(server, "/api/v1/cost-per-task", group_by="workflow,team", cost="full")["rows"]
    assert {(r["workflow"], r["team"]) for r in rows} == {
        ("support-triage", "support"),
        ("invoice-extraction", "finance"),
        ("code-review", "platform"),
        ("lead-research", "growth"),
    }
    full = {r["workflow"]: r for r in rows}
    assert full["code-review"]["labor_usd"] == Decimal("270")
    assert full["code-review"]["licence_usd"] == Decimal("140")
    assert full["invoice-extraction"]["rework_usd"] > Decimal("48")  # entry + signals
    assert full["support-triage"]["infrastructure_usd"] > Decimal("35")  # own + shared
    roles = api(server, "/api/v1/cost-per-task", group_by="role", workflow="support-triage")
    assert {"planner", "retriever", "drafter", "verifier"} <= {r["role"] for r in roles["rows"]}
    # the reopened ticket: completed, reopened, tried again, completed
    reopened = api(server, "/api/v1/tasks", workflow="support-triage", order="started_at")
    first = next(t for t in reopened["rows"] if t["signals"] == 3)
    doc = api(server, f"/api/v1/tasks/{first['task_key']}")
    assert [s["outcome"] for s in doc["signals"]] == ["completed", "reopened", "completed"]
    assert doc["task"]["outcome"] == "completed" and len(doc["attempts"]) >= 2


def test_demo_without_a_server_starts_one_and_cleans_up() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*DEMO, "--scale", "0.1", "--days", "4", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
        start_new_session=True,  # a failed test kills the demo's server too
    )
    try:
        assert proc.stdout is not None
        url = None
        deadline = time.monotonic() + 240
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("Open "):
                url = line.split()[1]
        assert url == f"http://127.0.0.1:{port}/", proc.stderr.read() if proc.stderr else ""
        page = requests.get(url, timeout=30)
        assert page.status_code == 200 and "tasklake" in page.text
        figures = requests.get(url + "api/v1/cost-per-task", timeout=60).json()
        assert len(figures["rows"]) == 4
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(90) == 0
        assert proc.stderr is not None
        lake = re.search(r"serving a throwaway lake at (\S+)", proc.stderr.read())
        assert lake and not Path(lake.group(1)).exists()  # the throwaway lake is gone
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ----------------------------------------------------------------------------- the page


def test_figures_on_the_page_equal_the_api(demo: Demo, desktop: Tab) -> None:
    server = demo.server
    desktop.page.goto(server.url + "/")
    desktop.settle()
    names = check_workflow_table(desktop, server)
    assert names == ["code-review", "invoice-extraction", "lead-research", "support-triage"]
    when = window(desktop)
    full = api(server, "/api/v1/cost-per-task", group_by="workflow", cost="full", **when)
    composition = shown(desktop, "#composition")
    for row in full["rows"]:
        for part in ("inference", "rework", "labor", "infrastructure", "licence", "spend"):
            assert same(composition[row["workflow"]][f"{part}_usd"], row[f"{part}_usd"])
    series = api(server, "/api/v1/cost-per-task", group_by="workflow,day", **when)["rows"]
    points = desktop.page.locator("#over-time svg .series circle")
    expect(points).to_have_count(sum(r["cost_per_completed_task_usd"] is not None for r in series))
    roles = api(server, "/api/v1/cost-per-task", group_by="workflow,role", **when)["rows"]
    spend = desktop.page.locator("#breakdown tbody [data-field=spend_usd]")
    assert [float(v) for v in spend.evaluate_all("(es) => es.map((e) => e.dataset.value)")] == [
        float(r["spend_usd"]) for r in roles
    ]
    # every table has the API's CSV beside it
    for link in desktop.page.locator("a.csv").all():
        href = link.get_attribute("href") or ""
        assert href.startswith("/api/v1/") and "format=csv" in href
    href = desktop.page.locator("#workflows a.csv").get_attribute("href") or ""
    csv = requests.get(
        f"{server.url}{href}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
    )
    assert csv.status_code == 200 and csv.text.startswith("workflow,")
    desktop.shot("dashboard-1280")
    if os.environ.get("TASKLAKE_UPDATE_DOCS"):
        DOCS.mkdir(exist_ok=True)
        desktop.page.screenshot(path=str(DOCS / "dashboard.png"), full_page=False)


def test_a_filter_changes_the_figures_and_the_url(demo: Demo, desktop: Tab) -> None:
    server = demo.server
    desktop.page.goto(server.url + "/")
    desktop.settle()
    desktop.page.select_option("select[name=team]", "support")
    expect(desktop.page).to_have_url(re.compile(r"\?team=support$"))
    desktop.settle()
    assert check_workflow_table(desktop, server, team="support") == ["support-triage"]
    desktop.page.select_option("select[name=period]", "7d")
    expect(desktop.page).to_have_url(re.compile(r"\?period=7d&team=support$"))
    desktop.settle()
    week = window(desktop)
    assert date.fromisoformat(week["end"]) - date.fromisoformat(week["start"]) == timedelta(7)
    check_workflow_table(desktop, server, team="support")
    desktop.page.select_option("select[name=cost]", "full")
    expect(desktop.page).to_have_url(re.compile(r"cost=full"))
    desktop.settle()
    full = api(
        server, "/api/v1/cost-per-task", group_by="workflow", team="support", cost="full",
        **window(desktop),
    )  # fmt: skip
    figure = shown(desktop, "#workflows")["support-triage"]["cost_per_completed_task_usd"]
    assert same(figure, full["rows"][0]["cost_per_completed_task_usd"])
    # the URL is the view: going back shows the previous one, and so does opening it afresh
    desktop.page.go_back()
    expect(desktop.page).to_have_url(re.compile(r"\?period=7d&team=support$"))
    desktop.settle()
    check_workflow_table(desktop, server, team="support")


def test_a_number_opens_the_rows_behind_it(demo: Demo, desktop: Tab) -> None:
    server = demo.server
    desktop.page.goto(server.url + "/")
    desktop.settle()
    completed = desktop.page.locator(
        "#workflows tr[data-workflow=support-triage] [data-field=completed]"
    )
    count = int(completed.inner_text().replace(",", ""))
    completed.click()
    expect(desktop.page).to_have_url(re.compile(r"outcome=completed"))
    desktop.settle()
    expect(desktop.page.locator("#tasks caption")).to_have_text(f"{count:,} tasks")
    outcomes = desktop.page.locator("#tasks tbody .badge").all_inner_texts()
    assert outcomes and set(outcomes) == {"completed"}


def test_workflow_then_task_shows_the_waterfall_that_adds_up(demo: Demo, desktop: Tab) -> None:
    server = demo.server
    desktop.page.goto(server.url + "/")
    desktop.settle()
    desktop.page.locator("#workflows a.wf", has_text="support-triage").click()
    expect(desktop.page).to_have_url(re.compile(r"\?workflow=support-triage$"))
    desktop.settle()
    desktop.page.select_option("#tasks select[name=order]", "-spend_usd")  # a retried one
    desktop.settle()
    first = desktop.page.locator("#tasks a.task-link").first
    task_id = first.get_attribute("data-task")
    first.click()
    expect(desktop.page).to_have_url(re.compile(r"task="))
    desktop.settle()
    doc = api(server, f"/api/v1/tasks/{task_id}")
    spend = doc["task"]["spend_usd"]
    billed = desktop.page.locator("#waterfall [data-field=cost_usd][data-billed=true]")
    costs = billed.evaluate_all("(es) => es.map((e) => e.dataset.value)")
    assert costs and abs(sum(Decimal(c) for c in costs) - spend) < Decimal("1e-9")
    footer = desktop.page.locator("#waterfall tfoot [data-field=spend_usd]")
    assert same({"value": footer.get_attribute("data-value")}, spend)
    assert footer.inner_text() == money(spend)

    def walk(nodes: list[dict[str, Any]]) -> int:
        return sum(1 + walk(n["children"]) for n in nodes)

    expect(desktop.page.locator("#waterfall tr.span-row")).to_have_count(walk(doc["spans"]))
    expect(desktop.page.locator("#waterfall tr.attempt-row")).to_have_count(len(doc["attempts"]))
    assert len(doc["attempts"]) >= 2
    expect(desktop.page.locator("#signals tbody tr")).to_have_count(len(doc["signals"]))
    expect(desktop.page.locator("#task .badge").first).to_have_text(doc["task"]["outcome"])
    roles = set(desktop.page.locator("#waterfall tr.span-row td:nth-child(2)").all_inner_texts())
    assert {"planner", "drafter"} <= roles
    models = desktop.page.locator("#waterfall tr.span-row td:nth-child(3)").all_inner_texts()
    assert "claude-opus-4-1" in models
    desktop.shot("task-1280")
    desktop.page.locator("a.back").click()
    expect(desktop.page).to_have_url(
        re.compile(r"\?workflow=support-triage&order=-spend_usd#tasks$")
    )
    desktop.settle()


def test_usable_on_a_phone(demo: Demo, phone: Tab) -> None:
    server = demo.server
    page = phone.page
    page.goto(server.url + "/")
    phone.settle()
    width = PHONE["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways page
    for control in ("period", "workflow", "team", "cost"):
        box = page.locator(f"select[name={control}]").bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, control
    figure = page.locator(
        "#workflows tr[data-workflow=support-triage] [data-field=cost_per_completed_task_usd]"
    )
    box = figure.bounding_box()
    assert box and box["x"] + box["width"] <= width  # the headline figure is in view
    check_workflow_table(phone, server)
    phone.shot("dashboard-390")
    page.locator("#workflows a.wf", has_text="code-review").click()
    phone.settle()
    page.locator("#tasks a.task-link").first.click()
    phone.settle()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    cost = page.locator("#waterfall [data-field=cost_usd][data-billed=true]").first
    box = cost.bounding_box()
    assert box and box["x"] + box["width"] <= width  # each span's cost without scrolling
    phone.shot("task-390")


def test_analyses_appear_when_the_server_has_them(demo: Demo, desktop: Tab) -> None:
    """Compare, levers, trend diagnosis and autonomy are drawn from their endpoints when the
    server's OpenAPI document lists them; when it does not, nothing asks for them."""
    server = demo.server
    paths = set(api(server, "/api/openapi.json")["paths"])
    desktop.page.goto(server.url + "/?workflow=support-triage")
    desktop.settle()
    asked = [u for u in desktop.requests if any(p in u for p in DECIDE)]
    if not set(DECIDE) <= paths:
        assert asked == []  # never a 404
        expect(desktop.page.locator("#compare, #levers")).to_have_count(0)
        return
    when = window(desktop)
    compare = api(
        server, "/api/v1/compare", workflow="support-triage", a="version:v1", b="version:v2",
        **when,
    )  # fmt: skip
    row = next(r for r in compare["rows"] if r["metric"] == "cost_per_completed_task_usd")
    cells = desktop.page.locator("#compare [data-field=cost_per_completed_task_usd]")
    values = cells.evaluate_all("(es) => es.map((e) => e.dataset.value)")
    assert [float(v) for v in values] == [float(row["a"]), float(row["b"])]
    levers = api(server, "/api/v1/levers", workflow="support-triage", **when)["rows"]
    stakes = desktop.page.locator("#levers [data-field=usd_at_stake]")
    assert [float(v) for v in stakes.evaluate_all("(es) => es.map((e) => e.dataset.value)")] == [
        float(r["usd_at_stake"]) for r in levers
    ]
    verdict = api(server, "/api/v1/autonomy", workflow="support-triage")["rows"][0]["verdict"]
    expect(desktop.page.locator('[data-slot="autonomy:support-triage"]')).to_have_text(
        "Ready" if verdict == "ready" else "Not ready"
    )


def test_a_token_is_sent_and_kept_out_of_the_url(demo: Demo, browser: Browser) -> None:
    server = demo.server
    with tab(browser) as t:  # given in the URL: kept for the tab, gone from the address
        t.page.goto(server.url + f"/?token={TOKEN}&team=support")
        expect(t.page).to_have_url(re.compile(r"/\?team=support$"))
        t.settle()
        assert check_workflow_table(t, server, team="support") == ["support-triage"]
        assert t.page.evaluate("sessionStorage.getItem('tasklake.token')") == TOKEN
        with t.page.expect_download() as download:  # CSV fetched with the token
            t.page.locator("#workflows a.csv").click()
        assert Path(download.value.path()).read_text().startswith("workflow,")
        assert t.errors == [] and not t.page.locator("#auth").is_visible()
    with tab(browser) as t:  # none: the page asks for one, then uses it
        t.page.goto(server.url + "/")
        expect(t.page.locator("#auth")).to_be_visible()
        t.page.fill("#auth input[name=token]", TOKEN)
        t.page.click("#auth button[type=submit]")
        t.settle()
        expect(t.page.locator("#auth")).to_be_hidden()
        assert len(check_workflow_table(t, server)) == 4
        # the refusals before the token was given are the only complaints
        assert t.errors and all("401" in e for e in t.errors), t.errors


def test_the_page_is_one_static_document(demo: Demo) -> None:
    page = requests.get(demo.server.url + "/", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for asset in re.findall(r'(?:src|href)="(/dashboard/[^"]+)"', page.text):
        assert requests.get(demo.server.url + asset, timeout=30).status_code == 200, asset
    assert shutil.which("chromium")  # the browser the tests ran with is Debian's
