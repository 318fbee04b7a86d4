"""Settings: one declared list, layered sources, clear errors."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.settings import (
    SETTINGS,
    Settings,
    SettingsError,
    load_settings,
    parse_duration,
    parse_size,
    settings_table,
    workflow_rules_table,
)

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_match_the_design() -> None:
    s = load_settings(env={})
    assert (s.lake, s.host, s.http_port, s.grpc_port) == ("./lake", "127.0.0.1", 4318, 4317)
    assert s.correlation_keys == ("correlation.id", "task.attempt.id")
    assert s.rule("anything").reopen_window == timedelta(hours=48)


def test_layers_file_then_env_then_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text('lake = "/from/file"\nhttp_port = 1111\ngrpc_port = 2222\nhost = "0.0.0.0"\n')
    env = {"TASKLAKE_CONFIG": str(cfg), "TASKLAKE_HTTP_PORT": "3333", "TASKLAKE_GRPC_PORT": "4444"}
    s = load_settings(flags={"grpc_port": "5555", "lake": None}, env=env)
    assert s.lake == "/from/file"  # file only
    assert s.host == "0.0.0.0"
    assert s.http_port == 3333  # env beats file
    assert s.grpc_port == 5555  # flag beats env
    assert s.config_file == str(cfg)


def test_prices_and_workflows_from_toml(tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text(
        """
[[prices]]
model = "acme-large*"
provider = "acme"
input = 2.50
output = 10.00
cache_read = 1.25
effective_from = 2026-01-01

[workflows.support-triage]
reopen_window = "48h"
abandon_after = "7d"
rework_counts_as_completed = true
budget_per_completed_task = 0.50
"""
    )
    s = load_settings(config_file=cfg, env={})
    (p,) = s.prices
    assert p.input == Decimal("2.5") and p.cache_read == Decimal("1.25")
    assert p.effective_from == date(2026, 1, 1)
    assert p.matches("acme-large-2", "acme", date(2026, 1, 1))
    assert not p.matches("acme-large-2", "acme", date(2025, 12, 31))
    assert not p.matches("acme-large-2", "other", date(2026, 2, 1))
    assert not p.matches("acme-small", "acme", date(2026, 2, 1))
    rule = s.rule("support-triage")
    assert rule.abandon_after == timedelta(days=7) and rule.rework_counts_as_completed
    assert rule.budget_per_completed_task == Decimal("0.5")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("nonsense = 1", "unknown setting 'nonsense'"),
        ("http_port = 'x'", "http_port: expected an integer"),
        ("http_port = 70000", "not a port number"),
        ("flush_interval = 'soon'", "flush_interval: expected a duration"),
        ("[[prices]]\nmodel='m'\ninput=1", "'output' is required"),
        ("[[prices]]\nmodel='m'\ninput=-1\noutput=1", "must not be negative"),
        ("[workflows.a]\nreopen = '1h'", "unknown keys ['reopen']"),
        (
            "[workflows.a]\ntarget_success_rate = 1.5",
            "target_success_rate: expected a number from 0",
        ),
        ("[workflows.a]\nmin_tasks = 0", "min_tasks: expected a whole number of at least 1"),
        ("[workflows.a]\nmin_tasks = 2.5", "min_tasks: expected a whole number"),
        ("[workflows.a]\ndrift_period = 'year'", "drift_period: expected one of day, week, month"),
        (
            "[workflows.a]\nautonomy_confidence = 1",
            "autonomy_confidence: expected a number between",
        ),
        ("[workflows.a]\nautonomy_window = '2h'", "autonomy_window: at least one day"),
        ("[workflows.a]\nhuman_cost_per_hour = -1", "must not be negative"),
        ("writer_id = 'Has Space'", "writer_id"),
    ],
)
def test_bad_settings_fail_with_the_setting_named(tmp_path: Path, toml: str, message: str) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text(toml)
    with pytest.raises(SettingsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings(config_file=cfg, env={})


def test_bad_env_value_is_an_error() -> None:
    with pytest.raises(SettingsError, match="wal_fsync"):
        load_settings(env={"TASKLAKE_WAL_FSYNC": "perhaps"})


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings(env={"TASKLAKE_CONFIG": str(tmp_path / "nope.toml")})


def test_units() -> None:
    assert parse_duration("250ms") == 0.25
    assert parse_duration("48h") == 172800
    assert parse_duration(3) == 3.0
    assert parse_size("20MiB") == 20 * 1024 * 1024
    assert parse_size(512) == 512


def test_analysis_settings_of_a_workflow(tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text(
        """
[workflows."*"]
min_tasks = 30

[workflows.support-triage]
target_success_rate = 0.9
human_minutes_per_task = 12
human_cost_per_hour = 45
autonomy_window = "14d"
autonomy_confidence = 0.9
drift_threshold = 0.05
drift_period = "day"
trend_threshold = 0.2
trend_baseline_periods = 3
"""
    )
    s = load_settings(config_file=cfg, env={})
    rule = s.rule("support-triage")
    assert (rule.target_success_rate, rule.human_cost_per_hour) == (0.9, Decimal(45))
    assert (rule.autonomy_window, rule.drift_period) == (timedelta(days=14), "day")
    assert (rule.trend_threshold, rule.trend_baseline_periods, rule.min_tasks) == (0.2, 3, 100)
    assert s.rule("other").min_tasks == 30  # the "*" rule
    assert s.rule("other").trend_recent_periods == 1  # a documented default


def test_every_workflow_rule_is_documented_in_readme() -> None:
    assert workflow_rules_table() in README.read_text(), "README workflow rules table is stale"


def test_every_setting_is_a_field_and_documented_in_readme() -> None:
    fields = set(Settings.__dataclass_fields__) - {"prices", "workflows", "tokens", "config_file"}
    assert {s.name for s in SETTINGS} == fields
    assert settings_table() in README.read_text(), "README settings table is stale"
