"""A migration's progress, recorded beside the tables it writes (``<staging>/_migration.json``).

``copying`` (with the plan's fingerprints: which listing the staged batches come from),
``verified`` (counts equal; in place, the swap may start) and ``done``. In place, the record
ends up in ``_old_layout/migration.json`` once the swap finished; with ``--to``, it stays in
the new lake and says it holds a finished migration.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow.fs as pafs

from schemas.location import LakeLocation

STATE_FILE = "_migration.json"
COPYING = "copying"
VERIFIED = "verified"
DONE = "done"


@dataclass
class Count:
    """Rows of one table: before (in old data files, converted from the WAL) and after."""

    files: int = 0
    file_rows: int = 0
    wal_rows: int = 0
    after: int = 0

    @property
    def before(self) -> int:
        return self.file_rows + self.wal_rows


@dataclass
class State:
    source: str
    stage: str
    plan: dict[str, str]
    counts: dict[str, Count] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> State:
        doc: dict[str, Any] = json.loads(text)
        counts = {t: Count(**c) for t, c in doc.get("counts", {}).items()}
        return cls(doc["source"], doc["stage"], dict(doc["plan"]), counts)


def read_state(location: LakeLocation) -> State | None:
    fs, base = location.filesystem()
    try:
        with fs.open_input_stream(f"{base}/{STATE_FILE}") as fh:
            return State.from_json(fh.read().decode("utf-8"))
    except FileNotFoundError:
        return None


def write_state(location: LakeLocation, state: State, name: str = STATE_FILE) -> None:
    """Replace the record whole (local: rename; S3: one upload)."""
    data = state.to_json().encode("utf-8")
    if not location.local:
        fs, base = location.filesystem()
        with fs.open_output_stream(f"{base}/{name}") as fh:
            fh.write(data)
        return
    target = location.path / name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)


def holds_tables(location: LakeLocation, names: list[str]) -> list[str]:
    """Which of ``names`` already exist as Delta tables at ``location``."""
    fs, base = location.filesystem()
    return [
        n
        for n in names
        if fs.get_file_info(f"{base}/{n}/_delta_log").type != pafs.FileType.NotFound
    ]


def drop_tables(location: LakeLocation, names: list[str]) -> None:
    """Delete the staged tables (a run that starts over)."""
    fs, base = location.filesystem()
    for n in names:
        if fs.get_file_info(f"{base}/{n}").type != pafs.FileType.NotFound:
            fs.delete_dir(f"{base}/{n}")
