"""The interactive ``tasklake sql`` shell: the lake owner's full DuckDB (files included), with
every statement stopped at ``query_timeout`` and the database held to ``query_memory_limit``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_shell_is_full_duckdb_within_the_limits(tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("the owner's own file")
    statements = [
        "SELECT current_setting('memory_limit') AS m;",
        f"SELECT content FROM read_text('{note}');",
        "SELECT count(*) FROM spans;",
        "SELECT count(*) FROM range(100000000) a, range(1000) b WHERE a.range * b.range = 7;",
        "SELECT 'still here' AS after;",
    ]
    cmd = [sys.executable, "-m", "service.cli", "sql", "--lake", str(tmp_path / "lake")]
    cmd += ["--query-timeout", "0.5", "--query-memory-limit", "200MiB"]
    stdin = "\n".join(statements) + "\n"
    done = subprocess.run(
        cmd, input=stdin, check=False, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "each statement stops after 0.5 s, memory 200 MiB" in out
    assert "200.0 MiB" in out  # the memory limit in force
    assert "the owner's own file" in out  # full DuckDB: files are the owner's to read
    assert "stopped: longer than query_timeout (0.5 s)" in out
    assert "still here" in out  # the shell goes on after a stopped statement
