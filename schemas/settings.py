"""One frozen settings object, built once: defaults < TOML file < TASKLAKE_* env < flags.

Every scalar setting is declared once in ``SETTINGS`` (name, default, kind, help); the CLI flags,
the environment variables and the documentation table are all generated from that list, so a
setting cannot exist in one place and be missing from another. Unknown keys and wrong types fail
at start-up with a message naming the setting.
"""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

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
    Setting("host", "str", "Interface to listen on; 0.0.0.0 exposes it."),
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
    Setting("auth_tokens", "list", "Bearer tokens accepted on every route; empty: no auth."),
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
    Setting("query_max_rows", "int", "Row cap of POST /api/v1/query answers."),
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
    """A workflow's acceptance rule and targets (``[workflows.<name>]``)."""

    reopen_window: timedelta = timedelta(hours=48)
    abandon_after: timedelta = timedelta(days=7)
    rework_counts_as_completed: bool = False
    budget_per_completed_task: Decimal | None = None
    target_success_rate: float | None = None
    human_minutes_per_task: float | None = None


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
    config_file: str | None = None

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
    if f.name not in {"prices", "workflows", "config_file"}
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


_RULE_KEYS = {f.name for f in fields(WorkflowRule)}


def parse_workflows(table: object) -> dict[str, WorkflowRule]:
    if not isinstance(table, dict):
        raise SettingsError("workflows: expected a table of [workflows.<name>] tables")
    out: dict[str, WorkflowRule] = {}
    for name, body in table.items():
        where = f"workflows.{name}"
        if not isinstance(body, dict):
            raise SettingsError(f"{where}: expected a table")
        unknown = set(body) - _RULE_KEYS
        if unknown:
            raise SettingsError(f"{where}: unknown keys {sorted(unknown)}")
        rule = WorkflowRule()
        values: dict[str, Any] = {}
        for key, value in body.items():
            if key in {"reopen_window", "abandon_after"}:
                values[key] = timedelta(seconds=parse_duration(value, f"{where}.{key}"))
            elif key == "rework_counts_as_completed":
                if not isinstance(value, bool):
                    raise SettingsError(f"{where}.{key}: expected true or false")
                values[key] = value
            elif key == "budget_per_completed_task":
                values[key] = _decimal(value, f"{where}.{key}")
            else:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise SettingsError(f"{where}.{key}: expected a number")
                values[key] = float(value)
        out[name] = replace(rule, **values)
    return out


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
    if s.vacuum_retention <= s.query_timeout:
        raise SettingsError("vacuum_retention: must be longer than query_timeout")


def settings_table() -> str:
    """The documentation table of every setting (README embeds it; a test keeps them equal)."""
    rows = ["| setting | env | default | what |", "|---|---|---|---|"]
    for s in SETTINGS:
        default = ",".join(s.default) if isinstance(s.default, tuple) else s.default
        rows.append(f"| `{s.name}` | `{ENV_PREFIX}{s.name.upper()}` | `{default}` | {s.help} |")
    return "\n".join(rows)
