"""One frozen settings object, built once: defaults < TOML file < TASKLAKE_* env < flags.

Every scalar setting is declared once in ``SETTINGS`` (name, default, kind, help); the CLI flags,
the environment variables and the documentation table are all generated from that list, so a
setting cannot exist in one place and be missing from another. Unknown keys and wrong types fail
at start-up with a message naming the setting.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from schemas.auth import Authenticator, Scope, TokenSpec
from schemas.location import LakeLocation

ENV_PREFIX = "TASKLAKE_"

Kind = Literal["str", "int", "float", "bool", "bytes", "duration", "list"]


class SettingsError(ValueError):
    """A setting is unknown or has a value of the wrong shape."""


@dataclass(frozen=True)
class Setting:
    name: str
    kind: Kind
    help: str

    @property
    def default(self) -> Any:
        return _DEFAULTS[self.name]


KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

# The declared list. Order is the order of the documentation table.
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "lake",
        "str",
        "Where the Delta tables live: a directory, file://..., or s3://bucket/prefix.",
    ),
    Setting(
        "wal_dir",
        "str",
        "Write-ahead log directory on local disk; default <lake>/_wal; required for s3:// lakes.",
    ),
    Setting(
        "store_dir",
        "str",
        "The read side's local directory (task store, spill files); default <lake>/_store,"
        " or <wal_dir>/_store for s3:// lakes.",
    ),
    Setting(
        "host",
        "str",
        "Interface to listen on; 0.0.0.0 exposes it (without tokens only with insecure).",
    ),
    Setting("http_port", "int", "OTLP/HTTP and REST API port."),
    Setting("grpc_port", "int", "OTLP/gRPC port; 0 disables the gRPC receiver."),
    Setting("writer_id", "str", "Writer id in file names; default: derived from hostname."),
    Setting("max_request_bytes", "bytes", "Largest request body on the wire (413 above)."),
    Setting(
        "max_decompressed_bytes",
        "bytes",
        "Largest request body after decompression (413 above; stops gzip bombs).",
    ),
    Setting(
        "max_inflight_bytes",
        "bytes",
        "Memory the requests in flight may take, counting what decoding builds (~4x a body's"
        " size); beyond it 503 + Retry-After. A larger request is served alone.",
    ),
    Setting(
        "auth_tokens",
        "list",
        "Full-access bearer tokens (secrets in the clear); prefer [[tokens]] (README: Access).",
    ),
    Setting(
        "insecure",
        "bool",
        "Serve a host other than localhost with no token configured (anyone reaching the port"
        " reads and writes everything).",
    ),
    Setting(
        "probe_networks",
        "list",
        "CIDR networks (e.g. 10.0.0.0/8) whose clients read /readyz and /metrics without a token.",
    ),
    Setting(
        "audit_log",
        "str",
        "Where the audit lines (JSON, logger tasklake.audit) go: '-' stderr, a file path, or"
        " 'off'.",
    ),
    Setting(
        "max_clock_skew",
        "duration",
        "How far past the receiver's clock a signal may be dated; later ones are refused.",
    ),
    Setting("lanes", "int", "Parallel WAL lanes, each with a converter process; 0: one per CPU."),
    Setting("wal_fsync", "bool", "fsync the WAL before acknowledging (durable mode)."),
    Setting("wal_segment_bytes", "bytes", "Roll to a new WAL segment past this size."),
    Setting(
        "wal_max_backlog_bytes",
        "bytes",
        "Unconverted WAL bytes above which ingest answers 503 with Retry-After.",
    ),
    Setting(
        "flush_interval",
        "duration",
        "Longest a span waits in a converter before its Parquet file is published.",
    ),
    Setting("flush_rows", "int", "Publish a Parquet file once this many spans wait."),
    Setting(
        "flush_bytes",
        "bytes",
        "Publish once the waiting rows take this much memory (bounds each converter's RSS).",
    ),
    Setting("row_group_rows", "int", "Rows per Parquet row group after compaction."),
    Setting(
        "compaction_interval",
        "duration",
        "How often the compactor looks for small files; 0 disables background compaction.",
    ),
    Setting(
        "compaction_target_rows",
        "int",
        "Rows per compacted file; files already this large are left alone.",
    ),
    Setting(
        "compactor",
        "bool",
        "Take part in compaction (a lease in the lake lets one receiver compact at a time).",
    ),
    Setting(
        "commit_interval",
        "duration",
        "Shortest time between two commits of this receiver to one table.",
    ),
    Setting(
        "vacuum_retention",
        "duration",
        "How long files that compaction replaced stay for queries pinned to older versions"
        " (longer than query_timeout).",
    ),
    Setting("query_timeout", "duration", "Time limit of one API/SQL query."),
    Setting(
        "read_wait",
        "duration",
        "How long a read waits for the task store to reach the newest commit; then it answers"
        " from the versions the store has (consistent, a moment old).",
    ),
    Setting(
        "query_max_rows",
        "int",
        "Row cap of POST /api/v1/query answers (the answer says truncated).",
    ),
    Setting(
        "query_memory_limit",
        "bytes",
        "Memory the read side's DuckDB may hold (task store and queries spill to disk beyond).",
    ),
    Setting(
        "correlation_keys",
        "list",
        "Attribute keys naming an attempt (span, then its trace, then the resource).",
    ),
    Setting("task_keys", "list", "Attribute keys naming the business task."),
    Setting("workflow_keys", "list", "Attribute keys naming the workflow."),
    Setting("team_keys", "list", "Attribute keys naming the team."),
    Setting("version_keys", "list", "Attribute keys naming the version."),
    Setting("role_keys", "list", "Attribute keys naming a span's role."),
    Setting(
        "workflow_resource_key",
        "str",
        "Resource attribute standing in for the workflow when no span names one.",
    ),
    Setting(
        "team_resource_key",
        "str",
        "Resource attribute standing in for the team when no span names one.",
    ),
    Setting(
        "version_resource_key",
        "str",
        "Resource attribute standing in for the version when no span names one.",
    ),
)


@dataclass(frozen=True)
class PriceOverride:
    """A ``[[prices]]`` entry: USD per million tokens, winning over genai-prices."""

    model: str
    input: Decimal
    output: Decimal
    provider: str | None = None
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    reasoning: Decimal | None = None
    effective_from: date | None = None

    def matches(self, model: str, provider: str | None, day: date) -> bool:
        if self.effective_from is not None and day < self.effective_from:
            return False
        if self.provider is not None and provider is not None and self.provider != provider:
            return False
        if self.provider is not None and provider is None:
            return False
        return fnmatch.fnmatchcase(model, self.model)

    @property
    def ref(self) -> str:
        since = f"@{self.effective_from.isoformat()}" if self.effective_from else ""
        where = f"{self.provider}/" if self.provider else ""
        return f"override:{where}{self.model}{since}"


@dataclass(frozen=True)
class WorkflowRule:
    """A workflow's acceptance rule, targets and analysis thresholds (``[workflows.<name>]``;
    ``[workflows."*"]`` for every workflow without its own table). Each key is declared in
    ``RULES`` with its documentation."""

    reopen_window: timedelta = timedelta(hours=48)
    abandon_after: timedelta = timedelta(days=7)
    rework_counts_as_completed: bool = False
    budget_per_completed_task: Decimal | None = None
    target_success_rate: float | None = None
    human_minutes_per_task: float | None = None
    human_cost_per_hour: Decimal | None = None
    min_tasks: int = 100
    autonomy_window: timedelta = timedelta(days=28)
    autonomy_confidence: float = 0.95
    drift_threshold: float = 0.10
    drift_period: str = "week"
    trend_threshold: float = 0.10
    trend_volume_threshold: float = 0.10
    trend_baseline_periods: int = 2
    trend_recent_periods: int = 1
    trend_max_pending: float = 0.20


RuleKind = Literal["duration", "bool", "money", "rate", "number", "count", "period"]
#: What a period may be (trends, drift).
PERIODS = ("day", "week", "month")


@dataclass(frozen=True)
class Rule:
    """One key of ``[workflows.<name>]``: its kind (how it is parsed) and its documentation."""

    name: str
    kind: RuleKind
    help: str

    @property
    def default(self) -> Any:
        return getattr(WorkflowRule(), self.name)


# The declared keys of [workflows.<name>], in the order of the documentation table.
RULES: tuple[Rule, ...] = (
    Rule("reopen_window", "duration", "A completion counts once this long passes with no reopen."),
    Rule("abandon_after", "duration", "No signal this long after the last span: abandoned."),
    Rule(
        "rework_counts_as_completed",
        "bool",
        "Whether a `rework` outcome counts as completed.",
    ),
    Rule(
        "budget_per_completed_task",
        "money",
        "USD per completed task finance signed off (autonomy: cost proven within it).",
    ),
    Rule(
        "target_success_rate",
        "rate",
        "Completed / decided tasks the workflow must reach (autonomy: quality proven).",
    ),
    Rule("human_minutes_per_task", "number", "Minutes of human work one completed task saves."),
    Rule("human_cost_per_hour", "money", "USD an hour of that human work costs (time saved)."),
    Rule(
        "min_tasks", "count", "Decided tasks in the autonomy window before quality can be proven."
    ),
    Rule("autonomy_window", "duration", "Whole days before `end` the autonomy gate looks at."),
    Rule(
        "autonomy_confidence",
        "rate",
        "Confidence of the one-sided Wilson lower bound on the success rate.",
    ),
    Rule(
        "drift_threshold",
        "rate",
        "Rise of cost per completed task (recent vs baseline periods) counted as upward drift.",
    ),
    Rule("drift_period", "period", "Periods (day, week, month) drift is judged over."),
    Rule(
        "trend_threshold",
        "rate",
        "Relative change of cost per completed task counted as up or down (trends).",
    ),
    Rule(
        "trend_volume_threshold",
        "rate",
        "Relative change of tasks or spend per period counted as rising or falling (trends).",
    ),
    Rule("trend_baseline_periods", "count", "Periods pooled as the baseline of a diagnosis."),
    Rule("trend_recent_periods", "count", "Latest periods pooled as the recent side."),
    Rule(
        "trend_max_pending",
        "rate",
        "Periods with a larger share of pending tasks are left out of diagnoses.",
    ),
)
#: The keys the task store's decisions depend on (a change rebuilds it).
DECISION_RULES = ("reopen_window", "abandon_after", "rework_counts_as_completed")


@dataclass(frozen=True)
class Settings:
    lake: str = "./lake"
    wal_dir: str = ""
    store_dir: str = ""
    host: str = "127.0.0.1"
    http_port: int = 4318
    grpc_port: int = 4317
    writer_id: str = ""
    max_request_bytes: int = 64 * MiB
    max_decompressed_bytes: int = 64 * MiB
    max_inflight_bytes: int = 256 * MiB
    auth_tokens: tuple[str, ...] = ()
    insecure: bool = False
    probe_networks: tuple[str, ...] = ()
    audit_log: str = "-"
    max_clock_skew: float = 300.0
    lanes: int = 0
    wal_fsync: bool = True
    wal_segment_bytes: int = 64 * MiB
    wal_max_backlog_bytes: int = 1 * GiB
    flush_interval: float = 1.0
    flush_rows: int = 200_000
    flush_bytes: int = 64 * MiB
    row_group_rows: int = 100_000
    compaction_interval: float = 60.0
    compaction_target_rows: int = 1_000_000
    compactor: bool = True
    commit_interval: float = 0.5
    vacuum_retention: float = 3600.0
    query_timeout: float = 30.0
    read_wait: float = 1.0
    query_max_rows: int = 10_000
    query_memory_limit: int = 384 * MiB
    correlation_keys: tuple[str, ...] = ("correlation.id", "task.attempt.id")
    task_keys: tuple[str, ...] = ("task.id",)
    workflow_keys: tuple[str, ...] = (
        "workflow.id",
        "gen_ai.workflow.name",
        "traceloop.workflow.name",
    )
    team_keys: tuple[str, ...] = ("team.id", "team.name")
    version_keys: tuple[str, ...] = ("workflow.version",)
    role_keys: tuple[str, ...] = ("workflow.role", "gen_ai.agent.name")
    workflow_resource_key: str = "service.name"
    team_resource_key: str = "service.namespace"
    version_resource_key: str = "service.version"
    prices: tuple[PriceOverride, ...] = ()
    workflows: Mapping[str, WorkflowRule] = field(default_factory=dict)
    tokens: tuple[TokenSpec, ...] = ()
    config_file: str | None = None

    @cached_property
    def authenticator(self) -> Authenticator:
        """The configured tokens ([[tokens]] and the flat auth_tokens), built once."""
        return Authenticator(self.tokens, self.auth_tokens)

    @cached_property
    def probe_nets(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(n, strict=False) for n in self.probe_networks)

    @property
    def location(self) -> LakeLocation:
        return LakeLocation.parse(self.lake)

    @property
    def effective_wal_dir(self) -> Path:
        if self.wal_dir:
            return Path(self.wal_dir).resolve()
        return self.location.path / "_wal"

    @property
    def effective_store_dir(self) -> Path:
        if self.store_dir:
            return Path(self.store_dir).resolve()
        location = self.location
        if location.local:
            return location.path / "_store"
        return self.effective_wal_dir / "_store"

    @property
    def effective_writer_id(self) -> str:
        if self.writer_id:
            return self.writer_id
        host = re.sub(r"[^a-z0-9]", "", os.uname().nodename.lower())[:16] or "w"
        return host

    @property
    def effective_lanes(self) -> int:
        return self.lanes if self.lanes > 0 else max(1, os.cpu_count() or 1)

    def rule(self, workflow: str | None) -> WorkflowRule:
        if workflow is not None and workflow in self.workflows:
            return self.workflows[workflow]
        return self.workflows.get("*", WorkflowRule())


_DEFAULTS: dict[str, Any] = {
    f.name: f.default
    for f in fields(Settings)
    if f.name not in {"prices", "workflows", "tokens", "config_file"}
}
_BY_NAME = {s.name: s for s in SETTINGS}
if set(_DEFAULTS) != set(_BY_NAME):  # every field declared, every declaration a field
    raise RuntimeError(f"settings out of sync: {set(_DEFAULTS) ^ set(_BY_NAME)}")


# ----------------------------------------------------------------------------- parsing

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": KiB,
    "mb": 1000**2,
    "mib": MiB,
    "gb": 1000**3,
    "gib": GiB,
    None: 1,
}


def parse_duration(value: object, name: str = "duration") -> float:
    """Seconds from ``1.5``, ``"250ms"``, ``"48h"``, ``"7d"``."""
    if isinstance(value, bool):
        raise SettingsError(f"{name}: expected a duration like '48h', got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    raise SettingsError(f"{name}: expected a duration like '250ms', '48h' or '7d', got {value!r}")


def parse_size(value: object, name: str = "size") -> int:
    if isinstance(value, bool):
        raise SettingsError(f"{name}: expected a size like '64MiB', got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        m = _SIZE.match(value)
        if m:
            unit = m.group(2).lower() if m.group(2) else None
            return int(float(m.group(1)) * _SIZE_UNITS[unit])
    raise SettingsError(f"{name}: expected a size like '20MiB' or a byte count, got {value!r}")


def _coerce(setting: Setting, value: object, *, from_text: bool) -> Any:
    name = setting.name
    kind = setting.kind
    try:
        if kind == "str":
            if not isinstance(value, str):
                raise SettingsError(f"{name}: expected a string, got {value!r}")
            return value
        if kind == "int":
            if from_text and isinstance(value, str):
                return int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise SettingsError(f"{name}: expected an integer, got {value!r}")
            return value
        if kind == "float":
            if from_text and isinstance(value, str):
                return float(value)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SettingsError(f"{name}: expected a number, got {value!r}")
            return float(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if from_text and isinstance(value, str):
                low = value.strip().lower()
                if low in {"1", "true", "yes", "on"}:
                    return True
                if low in {"0", "false", "no", "off"}:
                    return False
            raise SettingsError(f"{name}: expected true or false, got {value!r}")
        if kind == "bytes":
            return parse_size(value, name)
        if kind == "duration":
            return parse_duration(value, name)
        if kind == "list":
            if from_text and isinstance(value, str):
                return tuple(p.strip() for p in value.split(",") if p.strip())
            if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                return tuple(value)
            raise SettingsError(f"{name}: expected a list of strings, got {value!r}")
    except ValueError as exc:
        if isinstance(exc, SettingsError):
            raise
        raise SettingsError(f"{name}: {exc}") from exc
    raise SettingsError(f"{name}: unsupported kind {kind}")


def _decimal(value: object, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SettingsError(f"{where}: expected a number, got {value!r}")
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise SettingsError(f"{where}: expected a number, got {value!r}") from exc
    if result < 0:
        raise SettingsError(f"{where}: must not be negative, got {value!r}")
    return result


def _date(value: object, where: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise SettingsError(f"{where}: expected a date like 2026-01-01, got {value!r}")


_PRICE_KEYS = {
    "model",
    "provider",
    "input",
    "output",
    "cache_read",
    "cache_write",
    "reasoning",
    "effective_from",
}


def parse_prices(entries: object) -> tuple[PriceOverride, ...]:
    if not isinstance(entries, list):
        raise SettingsError("prices: expected an array of tables ([[prices]])")
    out: list[PriceOverride] = []
    for i, entry in enumerate(entries):
        where = f"prices[{i}]"
        if not isinstance(entry, dict):
            raise SettingsError(f"{where}: expected a table")
        unknown = set(entry) - _PRICE_KEYS
        if unknown:
            raise SettingsError(f"{where}: unknown keys {sorted(unknown)}")
        for required in ("model", "input", "output"):
            if required not in entry:
                raise SettingsError(f"{where}: '{required}' is required")
        model = entry["model"]
        if not isinstance(model, str) or not model:
            raise SettingsError(f"{where}.model: expected a model name or glob")
        provider = entry.get("provider")
        if provider is not None and not isinstance(provider, str):
            raise SettingsError(f"{where}.provider: expected a string")

        def opt(key: str, _where: str = where, _entry: dict[str, Any] = entry) -> Decimal | None:
            return _decimal(_entry[key], f"{_where}.{key}") if key in _entry else None

        out.append(
            PriceOverride(
                model=model,
                provider=provider,
                input=_decimal(entry["input"], f"{where}.input"),
                output=_decimal(entry["output"], f"{where}.output"),
                cache_read=opt("cache_read"),
                cache_write=opt("cache_write"),
                reasoning=opt("reasoning"),
                effective_from=(
                    _date(entry["effective_from"], f"{where}.effective_from")
                    if "effective_from" in entry
                    else None
                ),
            )
        )
    return tuple(out)


_RULES_BY_NAME = {r.name: r for r in RULES}
if set(_RULES_BY_NAME) != {f.name for f in fields(WorkflowRule)}:
    raise RuntimeError("workflow rules out of sync with RULES")


def _rule_value(rule: Rule, value: object, where: str) -> Any:
    if rule.kind == "duration":
        seconds = parse_duration(value, where)
        if seconds < 0:
            raise SettingsError(f"{where}: must not be negative")
        return timedelta(seconds=seconds)
    if rule.kind == "bool":
        if not isinstance(value, bool):
            raise SettingsError(f"{where}: expected true or false")
        return value
    if rule.kind == "money":
        return _decimal(value, where)
    if rule.kind == "period":
        if value not in PERIODS:
            raise SettingsError(f"{where}: expected one of {', '.join(PERIODS)}, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SettingsError(f"{where}: expected a number")
    if rule.kind == "count":
        if not isinstance(value, int) or value < 1:
            raise SettingsError(f"{where}: expected a whole number of at least 1")
        return value
    if rule.kind == "rate" and not 0 <= value <= 1:
        raise SettingsError(f"{where}: expected a number from 0 to 1")
    if value < 0:
        raise SettingsError(f"{where}: must not be negative")
    return float(value)


def parse_workflows(table: object) -> dict[str, WorkflowRule]:
    if not isinstance(table, dict):
        raise SettingsError("workflows: expected a table of [workflows.<name>] tables")
    out: dict[str, WorkflowRule] = {}
    for name, body in table.items():
        where = f"workflows.{name}"
        if not isinstance(body, dict):
            raise SettingsError(f"{where}: expected a table")
        unknown = set(body) - set(_RULES_BY_NAME)
        if unknown:
            raise SettingsError(f"{where}: unknown keys {sorted(unknown)}")
        values = {
            key: _rule_value(_RULES_BY_NAME[key], value, f"{where}.{key}")
            for key, value in body.items()
        }
        rule = replace(WorkflowRule(), **values)
        if rule.autonomy_confidence in (0, 1):
            raise SettingsError(f"{where}.autonomy_confidence: expected a number between 0 and 1")
        if rule.autonomy_window < timedelta(days=1):
            raise SettingsError(f"{where}.autonomy_window: at least one day")
        out[name] = rule
    return out


_TOKEN_KEYS = {"name", "sha256", "scopes", "teams"}
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


def _names(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SettingsError(f"{where}: expected a list of non-empty strings")
    return list(value)


def parse_tokens(entries: object) -> tuple[TokenSpec, ...]:
    """The ``[[tokens]]`` tables: name, sha256 (hex of the secret), scopes, optional teams.
    A config holding a secret itself (any other key) is refused, never silently used."""
    if not isinstance(entries, list):
        raise SettingsError("tokens: expected an array of tables ([[tokens]])")
    out: list[TokenSpec] = []
    for i, entry in enumerate(entries):
        where = f"tokens[{i}]"
        if not isinstance(entry, dict):
            raise SettingsError(f"{where}: expected a table")
        unknown = set(entry) - _TOKEN_KEYS
        if unknown:
            raise SettingsError(
                f"{where}: unknown keys {sorted(unknown)} (a token is name, sha256, scopes,"
                " teams; the config holds the secret's SHA-256, never the secret)"
            )
        for required in ("name", "sha256", "scopes"):
            if required not in entry:
                raise SettingsError(f"{where}: '{required}' is required")
        name = entry["name"]
        if not isinstance(name, str) or not re.fullmatch(
            r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}", name
        ):
            raise SettingsError(f"{where}.name: 1-128 letters, digits and ._:@- (it is logged)")
        where = f"tokens.{name}"
        sha = entry["sha256"]
        if not isinstance(sha, str) or not _HEX_SHA256.fullmatch(sha.strip().lower()):
            raise SettingsError(
                f'{where}.sha256: expected 64 hex digits (printf %s "$SECRET" | sha256sum)'
            )
        scopes = _names(entry["scopes"], f"{where}.scopes")
        known = {s.value for s in Scope}
        if not scopes or not set(scopes) <= known:
            raise SettingsError(
                f"{where}.scopes: one or more of {', '.join(sorted(known))}, got {scopes!r}"
            )
        teams = None
        if "teams" in entry:
            teams = frozenset(_names(entry["teams"], f"{where}.teams"))
            if not teams:
                raise SettingsError(f"{where}.teams: at least one team (leave it out: all teams)")
        out.append(
            TokenSpec(
                name=name,
                sha256=bytes.fromhex(sha.strip().lower()),
                scopes=frozenset(Scope(s) for s in scopes),
                teams=teams,
            )
        )
    names = [t.name for t in out]
    if len(set(names)) != len(names):
        raise SettingsError("tokens: two tokens share a name (audit lines name tokens)")
    digests = [t.sha256 for t in out]
    if len(set(digests)) != len(digests):
        raise SettingsError("tokens: two tokens share a secret (their sha256 is equal)")
    return tuple(out)


def _apply(values: dict[str, Any], source: Mapping[str, object], *, from_text: bool) -> None:
    for key, raw in source.items():
        setting = _BY_NAME.get(key)
        if setting is None:
            raise SettingsError(f"unknown setting '{key}'")
        values[key] = _coerce(setting, raw, from_text=from_text)


def load_settings(
    flags: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> Settings:
    """Build the settings: defaults < TOML file < TASKLAKE_* environment < flags.

    ``flags`` holds only what was given on the command line (``None`` values are ignored).
    The config file is ``config_file``, else ``flags['config']``, else ``$TASKLAKE_CONFIG``.
    """
    env = os.environ if env is None else env
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    flag_config = flags.pop("config", None)
    path = str(config_file or flag_config or env.get(ENV_PREFIX + "CONFIG") or "") or None

    values: dict[str, Any] = {}
    prices: tuple[PriceOverride, ...] = ()
    workflows: dict[str, WorkflowRule] = {}
    tokens: tuple[TokenSpec, ...] = ()
    if path:
        try:
            with open(path, "rb") as fh:
                doc = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise SettingsError(f"config file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path}: {exc}") from exc
        prices = parse_prices(doc.pop("prices", []))
        workflows = parse_workflows(doc.pop("workflows", {}))
        tokens = parse_tokens(doc.pop("tokens", []))
        _apply(values, doc, from_text=False)

    env_values = {
        s.name: env[ENV_PREFIX + s.name.upper()]
        for s in SETTINGS
        if ENV_PREFIX + s.name.upper() in env
    }
    _apply(values, env_values, from_text=True)
    _apply(values, flags, from_text=True)

    settings = Settings(
        **values,
        prices=prices,
        workflows=workflows,
        tokens=tokens,
        config_file=str(path) if path else None,
    )
    _validate(settings)
    return settings


def _validate(s: Settings) -> None:
    for name in ("http_port", "grpc_port"):
        port = getattr(s, name)
        if not 0 <= port <= 65535:
            raise SettingsError(f"{name}: {port} is not a port number")
    for name in (
        "max_request_bytes",
        "max_decompressed_bytes",
        "max_inflight_bytes",
        "wal_segment_bytes",
        "flush_bytes",
        "query_memory_limit",
    ):
        if getattr(s, name) <= 0:
            raise SettingsError(f"{name}: must be positive")
    if s.row_group_rows <= 0 or s.flush_rows <= 0 or s.compaction_target_rows <= 0:
        raise SettingsError("row counts must be positive")
    if s.max_clock_skew < 0:
        raise SettingsError("max_clock_skew: must not be negative")
    if s.flush_interval <= 0:
        raise SettingsError("flush_interval: must be positive")
    if s.writer_id and not re.fullmatch(r"[a-z0-9]{1,32}", s.writer_id):
        raise SettingsError("writer_id: 1-32 lowercase letters and digits")
    if not s.correlation_keys:
        raise SettingsError("correlation_keys: at least one key")
    try:
        location = s.location
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    if not location.local and not s.wal_dir:
        raise SettingsError(
            f"wal_dir: required for the object-store lake {location.root} (the write-ahead"
            " log stays on local disk)"
        )
    for net in s.probe_networks:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError as exc:
            raise SettingsError(f"probe_networks: {exc}") from None
    if not s.audit_log.strip():
        raise SettingsError("audit_log: '-', 'off' or a file path")
    if s.query_max_rows <= 0:
        raise SettingsError("query_max_rows: must be positive")
    if s.query_timeout <= 0:
        raise SettingsError("query_timeout: must be positive")
    if s.read_wait < 0:
        raise SettingsError("read_wait: must not be negative")
    if s.vacuum_retention <= s.query_timeout:
        raise SettingsError("vacuum_retention: must be longer than query_timeout")


def settings_table() -> str:
    """The documentation table of every setting (README embeds it; a test keeps them equal)."""
    rows = ["| setting | env | default | what |", "|---|---|---|---|"]
    for s in SETTINGS:
        default = ",".join(s.default) if isinstance(s.default, tuple) else s.default
        rows.append(f"| `{s.name}` | `{ENV_PREFIX}{s.name.upper()}` | `{default}` | {s.help} |")
    return "\n".join(rows)


def _rule_default(rule: Rule) -> str:
    value = rule.default
    if value is None:
        return "(none)"
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        if seconds % 86400 == 0 and seconds > 3 * 86400:
            return f"{seconds // 86400}d"
        for unit, size in (("h", 3600), ("m", 60)):
            if seconds % size == 0:
                return f"{seconds // size}{unit}"
        return f"{seconds}s"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def workflow_rules_table() -> str:
    """The documentation table of ``[workflows.<name>]`` (README embeds it)."""
    rows = ["| key | default | what |", "|---|---|---|"]
    for r in RULES:
        rows.append(f"| `{r.name}` | `{_rule_default(r)}` | {r.help} |")
    return "\n".join(rows)
