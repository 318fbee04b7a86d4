"""``POST /api/v1/query``: one read-only query, in JSON, CSV or Arrow; every way out of the
sandbox refused with a clear 400/403; the time, memory and row limits answered cleanly."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from service.sql.statements import SqlRefused, check
from tests.service.access_env import Client, access_settings, serve

#: (SQL, the status it gets, a word its message holds): every escape, for every token.
ESCAPES = [
    ("ATTACH ':memory:' AS other", 403, "ATTACH"),
    ("ATTACH '/etc/passwd' AS other", 403, "ATTACH"),
    ("DETACH memory", 403, "DETACH"),
    ("COPY (SELECT 1) TO '/tmp/tasklake-escape.csv'", 403, "COPY"),
    ("COPY spans TO '/tmp/tasklake-escape.parquet'", 403, "COPY"),
    ("EXPORT DATABASE '/tmp/tasklake-export'", 403, "EXPORT"),
    ("INSTALL httpfs", 403, "INSTALL"),
    ("LOAD httpfs", 403, "LOAD"),
    ("SET enable_external_access = true", 403, "SET"),
    ("SET lock_configuration = false", 403, "SET"),
    ("RESET memory_limit", 403, "RESET"),
    ("PRAGMA database_list", 403, "PRAGMA"),
    ("PRAGMA threads = 8", 403, "PRAGMA"),
    ("CALL pragma_version()", 403, "CALL"),
    ("CREATE VIEW spans AS SELECT 1 AS secret", 403, "CREATE"),
    ("CREATE OR REPLACE TABLE attempts AS SELECT 1", 403, "CREATE"),
    ("CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')", 403, "CREATE"),
    ("CREATE MACRO teams() AS 1", 403, "CREATE"),
    ("DROP VIEW spans", 403, "DROP"),
    ("INSERT INTO costs VALUES (1)", 403, "INSERT"),
    ("UPDATE tasks SET team = 'cx'", 403, "UPDATE"),
    ("DELETE FROM tasks", 403, "DELETE"),
    ("USE memory", 403, "USE"),
    ("CHECKPOINT", 403, "CHECKPOINT"),
    ("BEGIN TRANSACTION", 403, "BEGIN"),
    ("EXPLAIN ANALYZE SELECT 1", 403, "EXPLAIN"),
    ("SET VARIABLE tasklake_spans = ['/etc/passwd']", 403, "SET"),
    ("SELECT 1; SELECT 2", 400, "one statement"),
    ("SELECT 1; ATTACH 'x' AS y", 400, "one statement"),
    ("", 400, ""),
    ("   -- nothing", 400, "no statement"),
    ("SELEC 1", 400, "syntax"),
    ("SELECT * FROM read_text('/etc/passwd')", 403, "not allowed"),
    ("SELECT * FROM read_csv('/etc/passwd')", 403, "not allowed"),
    ("SELECT * FROM read_parquet('/etc/*.parquet')", 403, "not allowed"),
    ("SELECT * FROM glob('/etc/*')", 403, "not allowed"),
    ("SELECT * FROM read_json_auto('http://169.254.169.254/latest')", 403, "not allowed"),
    ("SELECT * FROM sniff_csv('/etc/passwd')", 403, "not allowed"),
    ("SELECT getenv('HOME')", 400, "getenv"),
]


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """The app over the access lake with small limits: 1 s, 64 MiB, 5 rows."""
    from tests.service import access_env

    lake = tmp_path_factory.mktemp("limits") / "lake"
    access_env.build(lake)
    settings = access_settings(
        lake, query_timeout=1.0, query_memory_limit=64 << 20, query_max_rows=5
    )
    with serve(settings) as base:
        yield Client(base)


@pytest.mark.parametrize(("sql", "status", "word"), ESCAPES)
def test_every_escape_is_refused(access_api: Client, sql: str, status: int, word: str) -> None:
    for who in ("cx-reader", "reader"):
        resp = access_api.sql(who, sql)
        assert resp.status_code == (status if sql else 400), (who, resp.text)
        error = resp.json()["error"]
        assert error["status"] == resp.status_code and word.lower() in error["message"].lower()
    assert not Path("/tmp/tasklake-escape.csv").exists()
    assert not Path("/tmp/tasklake-export").exists()


def test_what_an_unscoped_token_reads_is_the_lake_only(
    access_api: Client, access_lake: Path
) -> None:
    inside = f"SELECT count(*) FROM read_parquet('{access_lake}/spans/**/*.parquet')"
    assert access_api.rows("reader", inside)[0][0] > 0  # the tables' own files: allowed
    for path in (f"{access_lake}/_store/x.duckdb", f"{access_lake}/../escape", "/etc/hostname"):
        resp = access_api.sql("reader", f"SELECT * FROM read_text('{path}')")
        assert resp.status_code == 403, resp.text
    # a team-scoped token may not even read its own lake's files
    resp = access_api.sql("cx-reader", inside)
    assert resp.status_code == 403


def test_settings_and_catalog_leak_nothing(access_api: Client) -> None:
    for who in ("cx-reader", "reader"):
        rows = access_api.rows(who, "SELECT name, value FROM duckdb_settings()")
        settings = dict((r[0], r[1]) for r in rows)
        assert settings["enable_external_access"] == "false"
        assert settings["lock_configuration"] == "true"
        secrets = access_api.sql(who, "SELECT * FROM duckdb_secrets()")
        assert secrets.status_code == 403 or secrets.json()["rows"] == [], secrets.text


def test_formats(access_api: Client) -> None:
    sql = "SELECT 1 AS n, 'a,b' AS s, MAP {'k': 'v'} AS m, 1.5::DECIMAL(10, 2) AS d"
    doc = access_api.sql("reader", sql).json()
    assert doc["columns"] == ["n", "s", "m", "d"]
    assert doc["types"] == ["INTEGER", "VARCHAR", "MAP(VARCHAR, VARCHAR)", "DECIMAL(10,2)"]
    assert doc["rows"] == [[1, "a,b", {"k": "v"}, 1.5]]
    assert (doc["row_count"], doc["truncated"]) == (1, False)
    csv = access_api.sql("reader", sql, format="csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text == 'n,s,m,d\r\n1,"a,b","{""k"":""v""}",1.5\r\n'
    arrow = access_api.sql("reader", sql, headers={"accept": "application/vnd.apache.arrow.stream"})
    table = pa.ipc.open_stream(io.BytesIO(arrow.content)).read_all()
    assert table.column_names == ["n", "s", "m", "d"] and table.num_rows == 1
    assert arrow.headers["x-tasklake-truncated"] == "false"
    bad = access_api.sql("reader", sql, format="xml")
    assert bad.status_code == 400
    extra = access_api.sql("reader", sql, rows=5)
    assert extra.status_code == 400 and "rows" in extra.text


def test_row_cap(limited: Client) -> None:
    doc = limited.sql("reader", "SELECT * FROM range(100)").json()
    assert (doc["row_count"], doc["truncated"], doc["max_rows"]) == (5, True, 5)
    assert [r[0] for r in doc["rows"]] == [0, 1, 2, 3, 4]
    csv = limited.sql("cx-reader", "SELECT * FROM attempts", format="csv")
    assert csv.headers["x-tasklake-truncated"] == "true" and csv.text.count("\r\n") == 6


def test_time_limit(limited: Client) -> None:
    slow = "SELECT count(*) FROM range(100000000) a, range(1000) b WHERE a.range * b.range = 7"
    for who in ("reader", "cx-reader"):
        resp = limited.sql(who, slow)
        assert resp.status_code == 503, resp.text
        assert resp.headers["retry-after"] and "query_timeout" in resp.json()["error"]["message"]
    assert limited.rows("reader", "SELECT 1") == [[1]]  # the sandbox is not left interrupted


def test_memory_limit(limited: Client) -> None:
    big = "SELECT list(range) FROM range(100000000)"
    for who in ("reader", "cx-reader"):
        resp = limited.sql(who, big)
        assert resp.status_code == 503, resp.text
        assert "query_memory_limit" in resp.json()["error"]["message"]


def test_the_parser_decides() -> None:
    assert check("WITH a AS (SELECT 1) SELECT * FROM a, spans s").names == {"a", "spans"}
    assert "cost_per_task_by" in check("FROM cost_per_task_by(by_team := true)").names
    assert check('FROM "LLM_Calls"').names == {"llm_calls"}
    with pytest.raises(SqlRefused) as refused:
        check("/* SELECT */ ATTACH 'x' AS y")
    assert refused.value.status == 403


def test_command_line_takes_the_same_path(access_lake: Path) -> None:
    def tasklake(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "service.cli", "sql", "--lake", str(access_lake), *args]
        return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)

    ok = tasklake(
        "--format", "csv", "-c", "SELECT team, count(*) AS n FROM attempts GROUP BY 1 ORDER BY 1"
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[0] == "team,n" and "cx," in ok.stdout
    for sql in ("SELECT * FROM read_text('/etc/passwd')", "ATTACH '/tmp/x.db' AS x"):
        refused = tasklake("-c", sql)
        assert refused.returncode == 1 and "not allowed" in refused.stderr
    slow = tasklake(
        "--query-timeout",
        "0.5",
        "-c",
        "SELECT count(*) FROM range(100000000) a, range(1000) b WHERE a.range * b.range = 7",
    )
    assert slow.returncode == 1 and "query_timeout" in slow.stderr
