"""A lane's outbox: flushes whose files are written and durable but not yet committed.

A converter flush writes its data files into the tables' locations, then one manifest
``<lane WAL dir>/outbox/<wal end>.json`` naming them and the WAL range they hold (fsynced,
renamed into place). From then on the flush is safe: the committer commits every manifest
exactly once (``committer``), even after a crash, and the WAL below a manifest's end is not
needed again once it is committed. Manifests of a lane are committed in WAL order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.lake.files import NewFile

OUTBOX = "outbox"
_SUFFIX = ".json"


@dataclass(frozen=True)
class Manifest:
    lane: str  # ``<writer id>-<lane>``: the app id of the lane's Delta transactions
    wal_start: int
    wal_end: int
    files: tuple[NewFile, ...]

    def tables(self) -> list[str]:
        return sorted({f.table for f in self.files})

    def files_of(self, table: str) -> list[NewFile]:
        return [f for f in self.files if f.table == table]

    def as_dict(self) -> dict[str, Any]:
        return {
            "lane": self.lane,
            "wal_start": self.wal_start,
            "wal_end": self.wal_end,
            "files": [f.as_dict() for f in self.files],
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Manifest:
        return cls(
            lane=str(doc["lane"]),
            wal_start=int(doc["wal_start"]),
            wal_end=int(doc["wal_end"]),
            files=tuple(NewFile.from_dict(f) for f in doc["files"]),
        )


def outbox(wal_dir: Path) -> Path:
    return wal_dir / OUTBOX


def _name(wal_end: int) -> str:
    return f"{wal_end:020d}{_SUFFIX}"


def write_manifest(wal_dir: Path, manifest: Manifest) -> Path:
    """Make ``manifest`` durable in the lane's outbox (write, fsync, rename, fsync dir)."""
    box = outbox(wal_dir)
    box.mkdir(parents=True, exist_ok=True)
    target = box / _name(manifest.wal_end)
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(manifest.as_dict(), fh, separators=(",", ":"))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    fd = os.open(box, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return target


def read_manifests(wal_dir: Path) -> list[Manifest]:
    """The lane's waiting manifests in WAL order (leftover temp files are ignored)."""
    box = outbox(wal_dir)
    try:
        names = sorted(n for n in os.listdir(box) if n.endswith(_SUFFIX))
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        with open(box / name, encoding="utf-8") as fh:
            out.append(Manifest.from_dict(json.load(fh)))
    return out


def remove_manifests(wal_dir: Path, manifests: Sequence[Manifest]) -> None:
    box = outbox(wal_dir)
    for m in manifests:
        (box / _name(m.wal_end)).unlink(missing_ok=True)


def last_end(wal_dir: Path) -> int:
    """The WAL end of the lane's newest waiting manifest; 0 when none wait."""
    waiting = read_manifests(wal_dir)
    return waiting[-1].wal_end if waiting else 0
