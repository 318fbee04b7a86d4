"""Staged tables into the lake's place, the old layout aside: the in-place migration's last step.

Renames only, within one filesystem, in an order where every interruption is finished by
running the step again: per table, the old directory moves to ``_old_layout/<table>`` and
then the staged table into its place; then the old leftovers (``_gen``, ``_wal``, ``_tmp``,
``_store``, ``views.sql``) follow. Partition symlinks are relative, so ``_old_layout/`` is
itself a readable old-layout lake: nothing of the old lake is deleted.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ingest.lake.migrate.old_layout import LEFTOVERS, TableLayout, table_layout
from ingest.lake.migrate.state import DONE, State, write_state
from ingest.wal.log import fsync_dir
from schemas.lake import TABLES
from schemas.location import LakeLocation

STAGING_DIR = "_migrating"
OLD_DIR = "_old_layout"
RECORD = "migration.json"


def swap(root: Path, state: State) -> None:
    """Finish (or do) the swap of ``root/_migrating`` into ``root``; record ``state`` as done
    in ``_old_layout/migration.json``."""
    staging = root / STAGING_DIR
    aside = root / OLD_DIR
    aside.mkdir(exist_ok=True)
    for table in sorted(TABLES):  # a fixed order, whatever registered first
        staged = staging / table
        if not staged.is_dir():
            continue  # swapped by an interrupted run
        live = root / table
        if table_layout(root, table) is TableLayout.DELTA:
            raise RuntimeError(f"{live} is a Delta table already; {staged} cannot replace it")
        if _exists(live):
            os.rename(live, aside / table)
        os.rename(staged, live)
    for name in LEFTOVERS:
        if _exists(root / name) and not _exists(aside / name):
            os.rename(root / name, aside / name)
    fsync_dir(aside)
    fsync_dir(root)
    state.stage = DONE
    write_state(LakeLocation.parse(aside), state, RECORD)
    shutil.rmtree(staging)


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()
