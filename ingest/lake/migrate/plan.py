"""What one migration moves: every table's partitions as listed now, the WAL's unconverted
records, and the batches they are committed in.

The batches of a table are numbered 1, 2, ...: first the partitions, in name order, a batch
per ``BATCH_FILES`` data files (whole partitions), then one per WAL lane with a backlog. A
batch's number is the version of the application transaction its commit carries
(``APP_ID``), so a table's transaction version says how many batches it holds. Numbers are
stable only for the same listing: ``fingerprints`` names it, and a run resumes another's
batches only when they are equal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.lake.migrate import old_layout, old_wal
from ingest.lake.migrate.old_layout import OldPartition
from ingest.lake.migrate.old_wal import OldLane
from schemas.lake import TABLES

#: The application id of migration commits.
APP_ID = "tasklake-migrate"
#: Source data files per commit (whole partitions; a partition with more is one batch).
BATCH_FILES = 256
#: Changes whenever batching changes: a run never resumes batches numbered another way.
PLAN_FORMAT = f"v1:{BATCH_FILES}"
WAL_KEY = "_wal"


@dataclass(frozen=True)
class Plan:
    root: Path
    partitions: Mapping[str, Sequence[OldPartition]]  # every table of TABLES
    lanes: Sequence[OldLane]  # every lane, backlog or not

    @classmethod
    def scan(cls, root: Path) -> Plan:
        """List the lake now: partitions resolved once, minus files of unfinished flushes."""
        lanes = old_wal.lanes(root)
        withdrawn = frozenset().union(*(lane.withdrawn for lane in lanes))
        return cls(
            root,
            {t: old_layout.partitions(root, t, withdrawn) for t in TABLES},
            lanes,
        )

    @property
    def backlog(self) -> list[OldLane]:
        """The lanes with records to convert."""
        return [lane for lane in self.lanes if lane.backlog]

    def fingerprints(self) -> dict[str, str]:
        out = {t: f"{PLAN_FORMAT}:{old_layout.fingerprint(p)}" for t, p in self.partitions.items()}
        out[WAL_KEY] = old_wal.fingerprint(self.lanes)
        return out

    def batches(self, table: str) -> list[tuple[int, list[OldPartition]]]:
        """``(number, partitions)`` of the table's file batches."""
        out: list[tuple[int, list[OldPartition]]] = []
        current: list[OldPartition] = []
        files = 0
        for part in self.partitions[table]:
            if current and files + len(part.files) > BATCH_FILES:
                out.append((len(out) + 1, current))
                current, files = [], 0
            current.append(part)
            files += len(part.files)
        if current:
            out.append((len(out) + 1, current))
        return out

    def wal_number(self, table: str, lane_index: int) -> int:
        """The batch number of the ``lane_index``-th lane of ``backlog`` in ``table``."""
        return len(self.batches(table)) + lane_index + 1

    def files(self, table: str) -> int:
        return sum(len(p.files) for p in self.partitions[table])

    def file_rows(self, table: str) -> int:
        return sum(p.rows for p in self.partitions[table])
