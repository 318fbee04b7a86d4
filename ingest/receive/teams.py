"""What a team-scoped ingest token may store: only items naming one of its teams.

A ``[[tokens]]`` entry with ``scopes = ["ingest"]`` and ``teams = [...]`` sends for those teams
only. Each door refuses the rest item by item, the way it refuses anything else:

- **spans** (OTLP, HTTP and gRPC): a span must name one of the teams itself, by the first of
  the configured ``team_keys`` (span attribute, under the same prefixes and in OpenInference
  ``metadata`` as the converter reads them), else by its resource's ``team_resource_key``.
  A span naming another team, or none, is removed from the request and counted in the partial
  success (``rejected_spans`` with the reason in ``error_message``). Spans are checked one by
  one because the lake attributes a team per attempt from *any* of its spans: a span that
  names no team could join another team's attempt.
- **cost entries**: an entry must name one of the teams (``team``); an entry for every team
  (no ``team``) is an admin's to send.
- **signals**: a signal must name a task (or attempt) the lake already holds as one of the
  teams' (``TaskTeams``, answered by the read side): a team cannot decide another team's task.
  Send signals after the task's spans reached the lake; one sent sooner is rejected with that
  reason. OTLP log records carrying ``task.outcome`` are refused for such tokens: they send
  signals through ``POST /api/v1/signals``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from ingest.convert import conventions as cv
from ingest.receive.log_signals import OUTCOME_KEY
from schemas.auth import Principal
from schemas.settings import Settings
from schemas.signals import Signal


def _text(kv: KeyValue) -> str | None:
    value = kv.value
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value or None
    if kind == "int_value":
        return str(value.int_value)
    return None


def team_reader(settings: Settings) -> Callable[[Sequence[KeyValue]], str | None]:
    """The team a span's attributes name, in the converter's precedence."""
    candidates = cv.attribution_candidates(settings.team_keys)
    plain = {key for key, in_json in candidates if not in_json}

    def read(attributes: Sequence[KeyValue]) -> str | None:
        found: dict[str, str] = {}
        metadata: dict[str, Any] | None = None
        for kv in attributes:
            if kv.key in plain and kv.key not in found:
                text = _text(kv)
                if text is not None:
                    found[kv.key] = text
            elif kv.key == cv.OPENINFERENCE_METADATA_KEY and metadata is None:
                metadata = _json_object(kv.value.string_value)
        for key, in_json in candidates:
            if not in_json and key in found:
                return found[key]
            if in_json and metadata is not None:
                v = metadata.get(key)
                if isinstance(v, str) and v:
                    return v
                if isinstance(v, int | float) and not isinstance(v, bool):
                    return str(v)
        return None

    return read


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def keep_team_spans(
    request: ExportTraceServiceRequest, principal: Principal, settings: Settings
) -> tuple[int, str]:
    """Remove from ``request`` the spans ``principal`` may not send; (rejected, message)."""
    teams = principal.teams
    if teams is None:
        return 0, ""
    read = team_reader(settings)
    problems: Counter[str] = Counter()
    for rs in request.resource_spans:
        resource_team = next(
            (
                _text(kv)
                for kv in rs.resource.attributes
                if kv.key == settings.team_resource_key and _text(kv)
            ),
            None,
        )
        for ss in rs.scope_spans:
            bad: list[int] = []
            for i, span in enumerate(ss.spans):
                team = read(span.attributes) or resource_team
                if team is None:
                    bad.append(i)
                    problems[
                        "names no team (set team.id on the span or the resource's"
                        f" {settings.team_resource_key})"
                    ] += 1
                elif team not in teams:
                    bad.append(i)
                    problems[f"team '{team}' is not one of token '{principal.name}''s"] += 1
            for i in reversed(bad):
                del ss.spans[i]
    return sum(problems.values()), _message(problems, "span")


def refuse_log_signals(request: ExportLogsServiceRequest, principal: Principal) -> tuple[int, str]:
    """Remove the signal records (``task.outcome``) of a team-scoped token's logs."""
    if principal.teams is None:
        return 0, ""
    rejected = 0
    for rl in request.resource_logs:
        for sl in rl.scope_logs:
            bad = [
                i
                for i, record in enumerate(sl.log_records)
                if any(kv.key == OUTCOME_KEY for kv in record.attributes)
                or any(kv.key == OUTCOME_KEY for kv in rl.resource.attributes)
            ]
            for i in reversed(bad):
                del sl.log_records[i]
            rejected += len(bad)
    if not rejected:
        return 0, ""
    return rejected, (
        f"{rejected} log record(s): token '{principal.name}' is limited to teams and sends"
        " signals through POST /api/v1/signals"
    )


def _message(problems: Counter[str], noun: str) -> str:
    return "; ".join(f"{n} {noun}(s): {p}" for p, n in problems.most_common())


class TaskTeams(Protocol):
    """The read side's answer to "whose are these tasks?" (the team of each task or attempt
    a signal names; missing: not known)."""

    def task_teams(self, signals: Sequence[Signal]) -> Mapping[str, str | None]:
        """``signal_id`` -> the team of the task it names, for each signal whose task (or
        attempt) the lake knows. Called in a worker thread; may block or raise."""
        ...


def cost_refusal(principal: Principal, team: str | None) -> str | None:
    """Why ``principal`` may not send a cost entry of ``team`` (None: it may)."""
    if principal.teams is None:
        return None
    if team is None:
        return (
            f"team: token '{principal.name}' is limited to teams; an entry for every team"
            " needs an unscoped token"
        )
    if team not in principal.teams:
        return f"team: '{team}' is not one of token '{principal.name}''s"
    return None


def signal_refusal(
    principal: Principal, signal: Signal, team: str | None, known: bool
) -> str | None:
    """Why ``principal`` may not send ``signal`` about a task of ``team`` (None: it may)."""
    if principal.teams is None:
        return None
    named = (
        f"task '{signal.task_id}'"
        if signal.task_id is not None
        else (f"attempt '{signal.correlation_id}'")
    )
    if not known or team is None or team not in principal.teams:
        return (
            f"{named} is not known as a task of token '{principal.name}''s teams (a"
            " team-scoped token signals tasks whose spans already reached the lake)"
        )
    return None
