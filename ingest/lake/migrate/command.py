"""``tasklake migrate [--to LAKE]``: the steps, the decisions between them, and what is said.

In place (default): stage into ``<lake>/_migrating/``, verify, swap (``swap``); the old
layout stays in ``<lake>/_old_layout/`` until the user deletes it. With ``--to``: stage into
that lake (a directory or ``s3://``), verify, done; the source is only read. Either way:

- refused while a server holds the lake (its writer locks; they are held meanwhile);
- records the WAL acknowledged but never converted are converted (``old_wal``): nothing has
  to be drained with the old version first;
- an interrupted run is resumed by running it again (``plan``, ``state``); if the old lake
  changed meanwhile, the staged tables are dropped and it starts over;
- rows are counted per table before and after; any difference fails (exit 1) before the old
  lake is touched;
- on a migrated lake (or a finished ``--to``) it says so and exits 0.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import TextIO

from ingest.convert.lane import HANDLERS, build_handlers
from ingest.lake.migrate import old_wal
from ingest.lake.migrate.copy import Copier, rows_in
from ingest.lake.migrate.errors import LakeChanged, MigrationError
from ingest.lake.migrate.old_layout import (
    WAL_DIR,
    TableLayout,
    is_old_layout,
    old_tables,
    table_layout,
)
from ingest.lake.migrate.plan import WAL_KEY, Plan
from ingest.lake.migrate.state import (
    COPYING,
    DONE,
    VERIFIED,
    State,
    drop_tables,
    holds_tables,
    read_state,
    write_state,
)
from ingest.lake.migrate.swap import OLD_DIR, RECORD, STAGING_DIR, swap
from schemas.delta import Tables
from schemas.lake import TABLES
from schemas.location import LakeLocation
from schemas.settings import Settings
from schemas.views import write_views_file


def migrate(settings: Settings, to: str | None = None, out: TextIO | None = None) -> int:
    """Run the command, saying what it does on ``out`` (stdout); the exit status (0: migrated,
    or nothing to do)."""
    out = out or sys.stdout
    try:
        source = settings.location
        if not source.local:
            raise MigrationError(
                f"{source.root} is not a local lake; the old layout was only ever local"
            )
        root = source.path
        if not root.is_dir():
            raise MigrationError(f"no lake at {root}")
        if to is None:
            return _in_place(root, settings, out)
        return _into(root, LakeLocation.parse(to), settings, out)
    except MigrationError as exc:
        print(f"tasklake migrate: {exc}", file=sys.stderr)
        return 1


# ---------------------------------------------------------------------- in place


def _in_place(root: Path, settings: Settings, out: TextIO) -> int:
    staging = LakeLocation.parse(root / STAGING_DIR)
    if not old_tables(root) and not (root / STAGING_DIR).exists():
        _say_nothing_to_do(root, out)  # even while today's server runs on it
        return 0
    with old_wal.hold(root):
        state = read_state(staging)
        if state is None and (root / STAGING_DIR).exists():
            shutil.rmtree(root / STAGING_DIR)  # a run stopped before its first record
        if state is not None and state.stage == VERIFIED and _unchanged(root, state):
            print(f"tasklake migrate: finishing the interrupted swap in {root}", file=out)
        else:
            old = old_tables(root)
            if not old and state is None:
                _say_nothing_to_do(root, out)
                return 0
            _check_layouts(root)
            if (root / OLD_DIR).is_dir() and not any((root / OLD_DIR).iterdir()):
                (root / OLD_DIR).rmdir()  # made by a swap interrupted before its first move
            if (root / OLD_DIR).exists():
                raise MigrationError(
                    f"{root / OLD_DIR} exists (the old layout of an earlier migration?); move"
                    " or delete it first"
                )
            print(f"tasklake migrate: {root} (old layout) -> Delta tables, in place", file=out)
            state = _stage(root, staging, settings, out)
            if not _report(state, out):
                print(
                    f"nothing was swapped: the old lake is untouched; the staged tables are in"
                    f" {root / STAGING_DIR} (delete it to start over)",
                    file=out,
                )
                return 1
            state.stage = VERIFIED
            write_state(staging, state)
        swap(root, state)
    write_views_file(LakeLocation.parse(root), settings)
    print(
        f"done: {root} holds Delta tables. The old layout is kept in {root / OLD_DIR}"
        f" (an old-layout lake, with the record {RECORD}); delete it when you no longer need"
        f" it: rm -rf '{root / OLD_DIR}'",
        file=out,
    )
    return 0


def _unchanged(root: Path, state: State) -> bool:
    """A verified staging still matches what is left of the old lake (a swap can resume).
    Once a table is swapped, a change can no longer be staged: that is refused."""
    plan = Plan.scan(root)
    now = plan.fingerprints()
    remaining = old_tables(root) + ([WAL_KEY] if (root / WAL_DIR).is_dir() else [])
    changed = [k for k in remaining if now.get(k) != state.plan.get(k)]
    if not changed:
        return True
    if all((root / STAGING_DIR / t).is_dir() for t in TABLES):
        return False  # nothing swapped yet: stage again
    raise MigrationError(
        f"{root} changed during an interrupted swap ({', '.join(changed)}): the old version"
        " wrote to it meanwhile? Nothing more was moved; the swapped tables are in place, the"
        f" rest is still in the old layout and {root / STAGING_DIR}"
    )


def _say_nothing_to_do(root: Path, out: TextIO) -> None:
    if any(table_layout(root, t) is TableLayout.DELTA for t in TABLES):
        print(f"tasklake migrate: {root} holds Delta tables already; nothing to do", file=out)
        if (root / OLD_DIR).exists():
            print(
                f"the old layout of its migration is in {root / OLD_DIR}; delete it when you no"
                " longer need it",
                file=out,
            )
    else:
        print(f"tasklake migrate: no tables in {root}; nothing to migrate", file=out)


def _check_layouts(root: Path) -> None:
    mixed = [t for t in TABLES if table_layout(root, t) is TableLayout.MIXED]
    if mixed:
        raise MigrationError(
            f"{', '.join(str(root / t) for t in mixed)} hold both a Delta log and old partition"
            " symlinks (a newer tasklake ran on the old lake?); move the _delta_log aside if"
            " it holds nothing you need, then run tasklake migrate again"
        )


# ---------------------------------------------------------------------- into another lake


def _into(root: Path, dest: LakeLocation, settings: Settings, out: TextIO) -> int:
    if dest.local and dest.path.is_relative_to(root):
        raise MigrationError(
            f"{dest.root} is inside the source lake {root}; to migrate in place, omit --to"
        )
    state = read_state(dest)
    if state is not None and state.source != str(root):
        raise MigrationError(f"{dest.root} holds a migration of another lake ({state.source})")
    if state is not None and state.stage == DONE:
        print(f"tasklake migrate: {root} was migrated into {dest.root} already", file=out)
        return 0
    if not is_old_layout(root):
        print(f"tasklake migrate: {root} is not an old-layout lake; nothing to migrate", file=out)
        return 0
    _check_layouts(root)
    print(f"tasklake migrate: {root} (old layout) -> Delta tables in {dest.root}", file=out)
    with old_wal.hold(root):
        state = _stage(root, dest, settings, out)
    if not _report(state, out):
        print(f"the source is untouched; the tables in {dest.root} are incomplete", file=out)
        return 1
    state.stage = DONE
    write_state(dest, state)
    write_views_file(dest, settings)
    print(f"done: {dest.root} holds Delta tables; {root} is untouched", file=out)
    return 0


# ---------------------------------------------------------------------- staging


def _stage(root: Path, dest: LakeLocation, settings: Settings, out: TextIO) -> State:
    """Copy ``root`` into ``dest``'s tables (resuming a run of the same listing) and count."""
    plan = Plan.scan(root)
    fingerprints = plan.fingerprints()
    state = read_state(dest)
    if state is not None and state.plan != fingerprints:
        print("the old lake changed since the interrupted run: starting over", file=out)
        drop_tables(dest, list(TABLES))
        state = None
    if state is None:
        found = holds_tables(dest, list(TABLES))
        if found:
            raise MigrationError(
                f"{dest.root} already holds tables ({', '.join(found)}); migrate into an"
                " empty location"
            )
        state = State(str(root), COPYING, fingerprints)
        write_state(dest, state)
    else:
        print("resuming the interrupted migration", file=out)
    if plan.backlog:
        lanes = ", ".join(f"{lane.name} ({lane.backlog} bytes)" for lane in plan.backlog)
        print(f"converting what the write-ahead log still holds: {lanes}", file=out)
    handlers = build_handlers(settings, HANDLERS) if plan.backlog else {}
    tables = Tables(dest)
    copier = Copier(
        plan,
        tables,
        settings,
        lambda table, number, rows: print(f"  {table}: batch {number}, {rows} rows", file=out),
    )
    counts = copier.run(handlers)
    for table, count in counts.items():
        count.after = rows_in(tables, table)
    if Plan.scan(root).fingerprints() != fingerprints:
        raise LakeChanged(
            f"{root} changed while it was copied (is the old tasklake, or its compaction,"
            " running?); stop it and run tasklake migrate again: it starts over"
        )
    state.counts = counts
    return state


def _report(state: State, out: TextIO) -> bool:
    """Print the counts; True when every table kept every row."""
    ok = True
    for table, c in state.counts.items():
        same = c.before == c.after
        ok &= same
        print(
            f"{table:8} before {c.before} rows ({c.file_rows} in {c.files} files"
            f" + {c.wal_rows} from the write-ahead log), after {c.after}"
            + ("" if same else "  <-- DIFFERENT"),
            file=out,
        )
    if ok:
        print("every row kept", file=out)
    else:
        print("row counts differ: the migration is not finished", file=out)
    return ok
