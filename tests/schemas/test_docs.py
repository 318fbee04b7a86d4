"""README's generated tables (settings, span columns) match the code."""

from __future__ import annotations

from pathlib import Path

from service.docs import render

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_tables_are_fresh() -> None:
    text = README.read_text(encoding="utf-8")
    assert render(text) == text, "run `make docs` to refresh README's tables"
