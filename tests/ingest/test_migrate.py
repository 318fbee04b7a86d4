"""``tasklake migrate``: an old-layout lake, built by hand, into Delta tables through the CLI,
checked through the views (real files, real DuckDB) and through the tables' own files."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.lake import append
from ingest.lake.migrate import copy, plan
from ingest.lake.migrate.swap import OLD_DIR, RECORD, STAGING_DIR
from ingest.wal.log import WalWriter
from schemas.delta import Tables
from schemas.lake import COSTS, SIGNALS, SPANS
from service.cli import main
from tests.ingest.old_lake import LANE, NEWER_COLUMNS, OldLake, wal_span_id
from tests.lakes import at, connect, new_lake, span, span_table
from tests.s3 import S3

#: A migration in place rewrites an old local layout (symlinked generations) where it lies.
IN_PLACE = pytest.mark.local_lake("migrates an old local layout in place")


@pytest.fixture
def old(tmp_path: Path) -> OldLake:
    return OldLake(tmp_path / "lake").build()


def migrate(lake: Path | str, *args: str) -> int:
    return main(["migrate", "--lake", str(lake), *args])


def stored_span_ids(lake: str | Path) -> Counter[str]:
    """Every span id in the spans table's newest version, copies counted (the ``spans`` view
    would hide a row migrated twice)."""
    tables = Tables(lake)
    fs, _ = tables.location.filesystem()
    out: Counter[str] = Counter()
    for f in tables.version_of(SPANS).files:
        with fs.open_input_file(tables.location.fs_path(f.uri)) as fh:
            out.update(pq.read_table(fh, columns=["span_id"]).column("span_id").to_pylist())
    return out


def figures(lake: Path | str) -> dict[str, Any]:
    """What the views answer over the lake."""
    con = connect(lake)
    q = con.execute
    return {
        "starts": dict(q("SELECT span_id, start_time_unix_nano FROM spans").fetchall()),
        "spend": dict(q("SELECT attempt_id, spend_usd FROM attempts").fetchall()),
        "signals": {r[0] for r in q("SELECT signal_id FROM signals").fetchall()},
        "costs": q("SELECT sum(amount_usd) FROM costs").fetchone()[0],  # type: ignore[index]
    }


def assert_figures(lake: Path | str, old: OldLake) -> None:
    got = figures(lake)
    want = old.expected
    assert got["starts"] == want.span_starts  # every span, its nanoseconds exactly
    assert got["spend"] == want.spend_by_attempt
    assert sum(got["spend"].values()) == want.spend
    assert got["signals"] == want.signal_ids
    assert got["costs"] == want.cost_total


def outside_staging(root: Path) -> dict[str, tuple[object, ...]]:
    """``tree`` but for the staged tables (what a refused or failed run may leave)."""
    return {k: v for k, v in tree(root).items() if not k.startswith(STAGING_DIR)}


def tree(root: Path) -> dict[str, tuple[object, ...]]:
    """Every entry under ``root`` (symlinks not followed): kind, target or content, mtime."""
    out: dict[str, tuple[object, ...]] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory, name)
            rel = str(path.relative_to(root))
            st = path.lstat()
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir", st.st_mtime_ns)
            else:
                out[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest(), st.st_mtime_ns)
    return out


# ---------------------------------------------------------------------- in place


@IN_PLACE
def test_in_place_keeps_every_row_and_the_old_layout(
    old: OldLake, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = old.root
    # tiny row groups and files: the bounded-memory paths (waits per day, rotation) run too
    assert migrate(lake, "--row-group-rows", "1", "--compaction-target-rows", "2") == 0
    said = capsys.readouterr().out
    assert "spans    before 4 rows (4 in 3 files + 0 from the write-ahead log), after 4" in said
    assert "signals  before 2 rows (2 in 1 files" in said
    assert "costs    before 1 rows (1 in 1 files" in said
    assert "every row kept" in said and f"rm -rf '{lake / OLD_DIR}'" in said

    assert_figures(lake, old)
    assert old.expected.spend == Decimal("1.875")  # 0.25 + 1.5 + 0.125, never the stale 9
    assert stored_span_ids(lake) == old.expected.span_ids  # once each
    con = connect(lake)
    row = con.execute(
        "SELECT flags, dropped_attributes_count FROM spans WHERE name = 'agent'"
    ).fetchone()
    assert row == (257, None)  # uint32 in the old files, BIGINT now
    llm = con.execute("SELECT dropped_attributes_count FROM spans WHERE name = 'llm-1'")
    assert llm.fetchone() == (7,)
    older = con.execute(
        f"SELECT {', '.join(NEWER_COLUMNS)}, input_tokens FROM spans WHERE name = 'llm-2'"
    ).fetchone()
    assert older == (None, None, None, 5)  # columns its schema lacked are null, the rest kept

    # the old layout is aside, whole and still readable as one
    aside = lake / OLD_DIR
    for table in (SPANS, SIGNALS, COSTS):
        assert (lake / table / "_delta_log").is_dir()
        assert (aside / table / "date=1970-01-01").is_dir()
    link = aside / SPANS / "date=2026-01-05"
    assert link.is_symlink() and (link / "_rollup_attempts").is_dir()
    assert len(list(link.glob("w1-*.parquet"))) == 2
    for name in ("_gen", "_wal", "_tmp", "_store", "views.sql"):
        assert (aside / name).exists()
    assert (aside / RECORD).is_file()
    assert not (lake / STAGING_DIR).exists()
    assert "LOAD delta" in (lake / "views.sql").read_text()  # today's, for duckdb -init


@IN_PLACE
def test_a_second_run_is_a_no_op(old: OldLake, capsys: pytest.CaptureFixture[str]) -> None:
    assert migrate(old.root) == 0
    versions = Tables(old.root).snapshot().versions
    capsys.readouterr()
    assert migrate(old.root) == 0
    assert "holds Delta tables already; nothing to do" in capsys.readouterr().out
    assert Tables(old.root).snapshot().versions == versions


@IN_PLACE
def test_other_commands_refuse_an_old_lake(
    old: OldLake, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["views", "--lake", str(old.root)]) == 2
    assert "run tasklake migrate first" in capsys.readouterr().err


@IN_PLACE
def test_refused_while_a_server_holds_the_lake(
    old: OldLake, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tree(old.root)
    fd = os.open(old.wal_dir() / "writer.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert migrate(old.root) == 1
    finally:
        os.close(fd)
    assert "a tasklake server is running" in capsys.readouterr().err
    assert tree(old.root) == before


@IN_PLACE
def test_a_file_with_columns_this_version_does_not_know_is_refused(
    old: OldLake, capsys: pytest.CaptureFixture[str]
) -> None:
    gen = old.root / "_gen" / SPANS / "date=2026-01-06" / "g000001"
    newer = span_table([span("t9", "newer")]).append_column("from_the_future", pa.array([1]))
    old.write(gen, newer)
    before = tree(old.root)
    assert migrate(old.root) == 1
    assert "columns this version of tasklake does not know (from_the_future)" in (
        capsys.readouterr().err
    )
    assert outside_staging(old.root) == before


# ---------------------------------------------------------------------- the WAL


@IN_PLACE
def test_records_the_wal_still_holds_are_converted(
    old: OldLake, capsys: pytest.CaptureFixture[str]
) -> None:
    """Past the checkpoint: a trace record and a signals record. An unfinished flush had
    already published a file with the trace's spans: the old converter would have withdrawn
    it and converted the record again, so only the record's rows count."""
    old.checkpoint(old.append_spans(3, 1))  # span 3: converted, in the data files
    end = old.append_spans(10, 4)
    old.append_signals(
        [{"task_id": "T9", "outcome": "completed", "occurred_at": "2026-02-16T05:00:00Z"}]
    )
    copies = span_table([span("t10", "copy-1"), span("t10", "copy-2")])
    published = old.write(old.generation(SPANS, "2026-02-16", 1), copies)
    old.pending(end, [(SPANS, "date=2026-02-16", published.name)])
    assert migrate(old.root) == 0
    said = capsys.readouterr().out
    assert f"{LANE} (" in said
    assert "spans    before 8 rows (4 in 3 files + 4 from the write-ahead log), after 8" in said
    assert "signals  before 3 rows (2 in 1 files + 1 from the write-ahead log), after 3" in said
    ids = stored_span_ids(old.root)
    wal_ids = {wal_span_id(n) for n in range(10, 14)}
    assert ids == old.expected.span_ids + Counter(wal_ids)  # no copy, no span 3


@IN_PLACE
def test_an_unconvertible_record_stops_the_migration(
    old: OldLake, capsys: pytest.CaptureFixture[str]
) -> None:
    writer = WalWriter(old.wal_dir(), segment_bytes=1 << 20)
    writer.append(99, b"?", 0).result(timeout=10)
    writer.close()
    before = tree(old.root)
    assert migrate(old.root) == 1
    assert "no handler for record kind 99" in capsys.readouterr().err
    assert outside_staging(old.root) == before


# ---------------------------------------------------------------------- interruptions


def interrupted(lake: Path, monkeypatch: pytest.MonkeyPatch, *, after_commits: int) -> None:
    """Run the migration, killed right after its ``after_commits``-th commit."""
    real = append.commit_files
    calls = 0

    def commit(*args: Any, **kwargs: Any) -> None:
        nonlocal calls
        real(*args, **kwargs)
        calls += 1
        if calls == after_commits:
            raise KeyboardInterrupt

    monkeypatch.setattr(copy, "commit_files", commit)
    with pytest.raises(KeyboardInterrupt):
        migrate(lake)
    monkeypatch.setattr(copy, "commit_files", real)


@IN_PLACE
def test_an_interrupted_copy_resumes(
    old: OldLake, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(plan, "BATCH_FILES", 1)  # a batch per partition
    interrupted(old.root, monkeypatch, after_commits=2)
    assert (old.root / SPANS / "date=2026-01-05").is_symlink()  # the old lake untouched
    capsys.readouterr()
    assert migrate(old.root) == 0
    assert "resuming the interrupted migration" in capsys.readouterr().out
    assert stored_span_ids(old.root) == old.expected.span_ids  # each once: no batch twice
    assert_figures(old.root, old)


@IN_PLACE
def test_a_lake_changed_since_the_interrupted_run_is_copied_again(
    old: OldLake, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    interrupted(old.root, monkeypatch, after_commits=1)
    # meanwhile the old version compacted day 2 into a new generation, with one more span
    rows = [span("t4", "late", op="chat", cost="2", correlation_id="c4", start=at(days=1))]
    gen = old.generation(SPANS, "2026-01-06", 2)
    old.spans(gen, rows)
    for f in (old.root / "_gen" / SPANS / "date=2026-01-06" / "g000001").glob("w1-*"):
        os.link(f, gen / f.name)
    capsys.readouterr()
    assert migrate(old.root) == 0
    assert "changed since the interrupted run: starting over" in capsys.readouterr().out
    assert stored_span_ids(old.root) == old.expected.span_ids
    assert_figures(old.root, old)


@IN_PLACE
def test_an_interrupted_swap_is_finished_by_the_next_run(
    old: OldLake, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = os.rename
    calls = {"n": 0}

    def crash_on_fourth(src: Any, dst: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 4:  # costs swapped, signals moved aside, not yet replaced
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(os, "rename", crash_on_fourth)
    with pytest.raises(KeyboardInterrupt):
        migrate(old.root)
    monkeypatch.setattr(os, "rename", real)
    assert not (old.root / SIGNALS).exists()
    assert main(["views", "--lake", str(old.root)]) == 2
    assert "run tasklake migrate again to finish it" in capsys.readouterr().err
    assert migrate(old.root) == 0
    assert "finishing the interrupted swap" in capsys.readouterr().out
    assert_figures(old.root, old)
    assert (old.root / OLD_DIR / SIGNALS / "date=2026-01-06").is_symlink()


@IN_PLACE
def test_counts_that_differ_fail_and_swap_nothing(
    old: OldLake, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ingest.lake.migrate import command

    monkeypatch.setattr(command, "rows_in", lambda tables, table: 1)
    before = tree(old.root)
    assert migrate(old.root) == 1
    said = capsys.readouterr().out
    assert "spans    before 4 rows (4 in 3 files + 0 from the write-ahead log), after 1" in said
    assert "row counts differ" in said and "the old lake is untouched" in said
    assert outside_staging(old.root) == before


# ---------------------------------------------------------------------- --to


def test_to_another_lake_leaves_the_source_untouched(
    old: OldLake, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tree(old.root)
    target = new_lake(tmp_path, "new")  # in TASKLAKE_TEST_LAKE=s3: into S3
    assert migrate(old.root, "--to", target) == 0
    assert "every row kept" in capsys.readouterr().out
    assert tree(old.root) == before
    assert_figures(target, old)
    assert migrate(old.root, "--to", target) == 0
    assert "was migrated into" in capsys.readouterr().out
    assert stored_span_ids(target) == old.expected.span_ids


def test_to_refuses_a_location_holding_tables(
    old: OldLake, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = new_lake(tmp_path, "busy")
    Tables(target).ensure([SPANS])
    assert migrate(old.root, "--to", target) == 1
    assert "already holds tables (spans)" in capsys.readouterr().err


def test_to_an_s3_lake(old: OldLake, s3: S3, capsys: pytest.CaptureFixture[str]) -> None:
    before = tree(old.root)
    target = s3.lake("migrated")
    assert migrate(old.root, "--to", target) == 0
    assert "every row kept" in capsys.readouterr().out
    assert tree(old.root) == before
    assert stored_span_ids(target) == old.expected.span_ids
