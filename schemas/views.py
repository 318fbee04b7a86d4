"""The DuckDB views: the single definition of every metric.

Each view is one ``schemas/<name>.sql`` file; ``VIEW_ORDER`` loads them dependencies first. The
SQL names table locations as ``{<table>_glob}`` placeholders, filled with the lake's path here,
so the same files serve the API, the CLI, the dashboard and any DuckDB client.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Protocol

from schemas.lake import TABLES, table_glob

#: Load order (a view may read only views before it).
VIEW_ORDER: tuple[str, ...] = ("spans", "llm_calls")


class SqlConnection(Protocol):
    def execute(self, query: str, /) -> object: ...


def view_sql(name: str) -> str:
    return resources.files("schemas").joinpath(f"{name}.sql").read_text(encoding="utf-8")


def _quote(path: str) -> str:
    return path.replace("'", "''")


def render_views(lake: str | os.PathLike[str]) -> str:
    """All view definitions as one SQL script for ``lake``."""
    values = {f"{t}_glob": _quote(table_glob(lake, t)) for t in TABLES}
    parts = []
    for name in VIEW_ORDER:
        sql = view_sql(name)
        for key, value in values.items():
            sql = sql.replace("{" + key + "}", value)
        parts.append(sql.strip())
    return "\n\n".join(parts) + "\n"


def load_views(con: SqlConnection, lake: str | os.PathLike[str]) -> None:
    """Define every view on ``con``; the lake must exist (``schemas.lake.ensure_lake``)."""
    con.execute(render_views(Path(lake).resolve()))


def write_views_file(lake: str | os.PathLike[str]) -> Path:
    """``<lake>/views.sql`` with lake-relative paths: ``cd lake && duckdb -init views.sql``."""
    target = Path(lake) / "views.sql"
    tmp = target.with_suffix(".sql.tmp")
    tmp.write_text(render_views("."), encoding="utf-8")
    os.replace(tmp, target)
    return target
