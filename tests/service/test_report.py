"""``tasklake report``: the cost-per-completed-task table in the terminal."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.db import Database
from service.report import render_report, report_command
from tests.lakes import lake_flags, lake_settings
from tests.service import scenario


def test_the_table(lake: str) -> None:
    scenario.build(lake)
    db = Database(lake_settings(lake))
    try:
        text = render_report(
            db,
            start=datetime(2026, 1, 1, tzinfo=UTC),
            end=datetime(2026, 3, 1, tzinfo=UTC),
            group_by=["workflow"],
            as_of=scenario.AS_OF,
        )
    finally:
        db.close()
    lines = text.splitlines()
    assert lines[0].startswith("Cost per completed task (inference), tasks started 2026-01-01")
    rows = {line.split()[0]: line.split() for line in lines[4:] if line and line[0] != "-"}
    # workflow tasks completed pending success attempts spend per-attempt per-completed unpriced
    assert rows["billing"] == [
        "billing",
        "3",
        "1",
        "0",
        "33.3%",
        "3",
        "$0.92",
        "$0.3067",
        "$0.92",
        "0",
    ]
    assert rows["support"] == [
        "support",
        "4",
        "2",
        "1",
        "66.7%",
        "6",
        "$1.70",
        "$0.2833",
        "$0.85",
        "1",
    ]
    assert rows["total"] == ["total", "7", "3", "1", "50.0%", "9", "$2.62", "$0.2911", "$0.87", "1"]
    assert "1 task(s) still pending" in text


@pytest.mark.parametrize(
    "kwargs", [{"group_by": "colour"}, {"cost": "everything"}, {"start": "yesterday"}]
)
def test_bad_arguments(lake: str, kwargs: dict[str, str]) -> None:
    assert report_command(lake_settings(lake), **kwargs) == 2


def test_the_fully_loaded_table(lake: str) -> None:
    scenario.build(lake)
    db = Database(lake_settings(lake), store=False)
    try:
        text = render_report(
            db,
            start=datetime(2026, 1, 1, tzinfo=UTC),
            end=datetime(2026, 3, 1, tzinfo=UTC),
            group_by=["workflow"],
            as_of=scenario.AS_OF,
            full=True,
        )
    finally:
        db.close()
    lines = text.splitlines()
    assert lines[0].startswith("Cost per completed task (fully loaded), tasks started")
    header = lines[2].split()
    assert header[-6:] == ["inference", "rework", "labor", "infrastructure", "licence", "other"]
    rows = {line.split()[0]: line.split() for line in lines[4:] if line and line[0] != "-"}
    # spend, per completed task, then the six components (see tests/service/scenario.py)
    assert rows["support"][6] == "$63.70" and rows["support"][8] == "$31.85"
    assert rows["support"][-6:] == ["$1.70", "$15.50", "$31.00", "$0.00", "$15.50", "$0.00"]
    assert rows["total"][6] == "$83.02"
    assert "Not allocated" in text and "$5.00 other for workflow nobody" in text


def test_the_analyses_as_tables(lake: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``tasklake report compare | trends | levers | autonomy`` print what the routes answer
    (the figures of tests/service/test_compare.py and the scenario)."""
    from service.cli import main

    scenario.build(lake)
    at = [*lake_flags(lake), "--as-of", scenario.AS_OF.isoformat()]
    compare = ["compare", "--workflow", "support", "--a", "version:v1", "--b", "version:v2"]
    assert main(["report", *compare, *at]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Compare support: a = version:v1, b = version:v2 (inference), USD")
    assert "cost_per_completed_task_usd     $1.2500     $0.4500  $-0.8000" in text
    assert "Change in cost per completed task: -$0.8000" in text
    assert "  sum of the parts               -$0.8000" in text
    # settings flags before the analysis stay; the analysis' own --cost
    assert (
        main(
            [
                "report",
                *lake_flags(lake),
                *compare[:-4],
                *compare[-4:],
                "--cost",
                "full",
                "--as-of",
                scenario.AS_OF.isoformat(),
            ]
        )
        == 0
    )
    assert "  non-inference                  -$38.0000" in capsys.readouterr().out
    assert main(["report", "trends", "--period", "month", *at]) == 0
    text = capsys.readouterr().out
    assert "support   2026-01-01      3          2" in text and "Diagnosis" in text
    assert main(["report", "levers", "--workflow", "support", *at]) == 0
    assert "support      1  failed runs   $0.8000  1.00 retries" in capsys.readouterr().out
    assert main(["report", "autonomy", *at]) == 0
    assert "no target_success_rate is set for this workflow" in capsys.readouterr().out
    assert main(["report", *compare[:-1], "x", *at]) == 2
    assert "--b: expected version:<v>" in capsys.readouterr().err
