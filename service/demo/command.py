"""``tasklake demo``: a few days of realistic agent traffic into a tasklake server, so the
dashboard has something true to show in the first minute.

With ``--url`` it sends to that server; without, it starts one on a throwaway lake, sends,
prints the dashboard's address and serves until Ctrl-C (then deletes the lake).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from types import FrameType
from typing import Any, TextIO

from service.demo.progress import Progress
from service.demo.scenario import MIN_DAYS, Scenario, build
from service.demo.send import (
    SendError,
    check,
    cost_item,
    emit_attempt,
    post,
    rfc3339,
    signal_item,
    tracers,
)

SIGNAL_BATCH = 1000
#: How long the lake may take to show everything that was acknowledged.
SETTLE_S = 180.0


def add_parser(sub: Any) -> None:
    demo = sub.add_parser(
        "demo",
        help="Send a few days of demo agent traffic (or start a throwaway server for it).",
        description="Sends a few days of agent traffic for four workflows through the"
        " OpenTelemetry SDK's OTLP/HTTP exporter, with completion signals and cost entries"
        " through the REST API, then prints the dashboard's URL. Without --url it starts"
        " `tasklake serve` on a throwaway lake and serves it until Ctrl-C.",
    )
    demo.add_argument("--url", help="A running server, e.g. http://localhost:4318")
    demo.add_argument(
        "--token",
        default=os.environ.get("TASKLAKE_TOKEN"),
        help="Bearer token for --url (also $TASKLAKE_TOKEN).",
    )
    demo.add_argument("--days", type=int, default=7, help=f"Days of traffic (at least {MIN_DAYS}).")
    demo.add_argument(
        "--scale", type=float, default=1.0, help="Traffic volume, 1.0: about 1,700 tasks a week."
    )
    demo.add_argument("--seed", type=int, default=7, help="Same seed, same traffic.")
    demo.add_argument(
        "--tag",
        help="Goes into every task id (default: from the clock, so a second run adds tasks).",
    )
    demo.add_argument(
        "--port", type=int, default=4318, help="Without --url: the HTTP port to serve on."
    )


def _get(url: str, path: str, token: str | None, **params: Any) -> Any:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    request = urllib.request.Request(
        url.rstrip("/") + path + (f"?{query}" if query else ""),
        headers={"Authorization": f"Bearer {token}"} if token else {},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def _settled(url: str, token: str | None, scenario: Scenario) -> bool:
    """Does the API show every task the demo sent, with every signal?"""
    workflows = sorted({t.workflow for t in scenario.tasks})
    try:
        listed = _get(
            url, "/api/v1/tasks", token, start=rfc3339(scenario.start),
            workflow=",".join(workflows), limit=1,
        )  # fmt: skip
        if listed["total"] < len(scenario.tasks):
            return False
        for task in (scenario.tasks[0], scenario.tasks[-1]):
            path = "/api/v1/tasks/" + urllib.parse.quote(task.task_id, safe="")
            doc = _get(url, path, token)
            if len(doc["attempts"]) < len(task.attempts):
                return False
            if len(doc["signals"]) < len(task.signals):
                return False
    except (urllib.error.URLError, ConnectionError, TimeoutError, KeyError):
        return False
    return True


def send(url: str, scenario: Scenario, token: str | None, progress: Progress) -> dict[str, int]:
    """Send the whole scenario; what was acknowledged."""
    spans = scenario.spans
    progress.stage("spans (OTLP/HTTP)", spans)
    with tracers(url, token, progress.advance) as (tracer, exporters):
        for task in scenario.tasks:
            for attempt in task.attempts:
                emit_attempt(tracer(task), task, attempt)
    exported = sum(e.exported for e in exporters)
    if exported != spans:
        raise SendError(f"the server acknowledged {exported:,} of {spans:,} spans")
    progress.finish(f"{spans:,} spans acknowledged")
    items = [signal_item(t, s) for t in scenario.tasks for s in t.signals]
    progress.stage("signals (REST)", len(items))
    accepted = 0
    for i in range(0, len(items), SIGNAL_BATCH):
        batch = items[i : i + SIGNAL_BATCH]
        body = "\n".join(json.dumps(item) for item in batch).encode()
        accepted += check(
            post(url, "/api/v1/signals", body, "application/x-ndjson", token), "signals"
        )
        progress.advance(len(batch))
    progress.finish(f"{accepted:,} signals accepted")
    costs = [cost_item(c) for c in scenario.costs]
    progress.stage("cost entries (REST)", len(costs))
    booked = check(
        post(url, "/api/v1/costs", json.dumps(costs).encode(), "application/json", token),
        "cost entries",
    )
    progress.advance(len(costs))
    progress.finish(f"{booked} cost entries accepted")
    progress.stage("waiting for the lake", 0)
    deadline = time.monotonic() + SETTLE_S
    while not _settled(url, token, scenario):
        if time.monotonic() > deadline:
            progress.finish("the lake is still catching up: figures will fill in")
            break
        time.sleep(0.5)
    else:
        progress.finish("every task is in the lake")
    return {"spans": exported, "signals": accepted, "costs": booked}


def summary(scenario: Scenario, sent: dict[str, int], out: TextIO) -> None:
    workflows = sorted({t.workflow for t in scenario.tasks})
    teams = sorted({t.team for t in scenario.tasks})
    out.write(
        f"Sent {len(scenario.tasks):,} tasks ({sent['spans']:,} spans), {sent['signals']:,}"
        f" signals and {sent['costs']} cost entries: {len(workflows)} workflows"
        f" ({', '.join(workflows)}), teams {', '.join(teams)},"
        f" {scenario.start:%b %d %H:%M} to {scenario.end:%b %d %H:%M} UTC.\n"
        f"support-triage moved from v1 to v2 on {scenario.switch:%b %d %H:%M} UTC; tickets"
        " completed in the last 48 hours are pending until their reopen window closes.\n"
    )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    now = datetime.now(UTC).replace(microsecond=0)
    tag = args.tag or _tag(now)
    try:
        scenario = build(now, days=args.days, scale=args.scale, seed=args.seed, tag=tag)
    except ValueError as exc:
        print(f"tasklake demo: {exc}", file=sys.stderr)
        return 2
    progress = Progress()
    if args.url:
        try:
            sent = send(args.url, scenario, args.token, progress)
        except SendError as exc:
            print(f"\ntasklake demo: {exc}", file=sys.stderr)
            return 1
        summary(scenario, sent, out)
        out.write(f"Open {args.url.rstrip('/')}/\n")
        out.flush()
        return 0
    from service.demo.server import ThrowawayServer

    progress.stage("starting tasklake serve", 0)
    server = ThrowawayServer(http_port=args.port)
    with server as url:
        progress.finish(f"serving a throwaway lake at {server.lake}")
        try:
            sent = send(url, scenario, None, progress)
        except SendError as exc:
            print(f"\ntasklake demo: {exc}", file=sys.stderr)
            return 1
        summary(scenario, sent, out)
        out.write(f"Open {url}/\n")
        out.write("Serving the demo lake until Ctrl-C (then it is deleted).\n")
        out.flush()
        with contextlib.suppress(KeyboardInterrupt):
            _interrupted_by_sigterm_too()
            server.wait()
    return 0


def _interrupted_by_sigterm_too() -> None:
    """Ctrl-C and SIGTERM both end the serving (and delete the throwaway lake), even when
    we were started with SIGINT ignored, as a shell's background job is."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def _tag(now: datetime) -> str:
    """Four base-36 digits from the minute: a second run's ids differ from the first's."""
    n = int(now.timestamp()) // 60
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    for _ in range(4):
        n, r = divmod(n, 36)
        text = digits[r] + text
    return text
