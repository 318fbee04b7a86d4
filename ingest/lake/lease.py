"""The compaction lease: one receiver compacts a lake at a time, with no lock service.

The lease is a tiny Delta table in the lake (``_compaction_lease``); taking or renewing it is
a commit at the next version with no retry. Delta commits are put-if-absent (conditional puts
on S3), so of several receivers racing for one version exactly one commit lands: that
receiver holds the lease until ``expires_ms`` in its commit's metadata, and renews it each
round. A holder that dies stops renewing; another takes over once the lease expires.

The lease only saves work: compaction commits are themselves checked for conflicts (two
compactors merging the same files cannot both commit), so a clock skew between receivers
that lets two compact for a moment costs a retried merge, never a wrong answer.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from schemas.location import LakeLocation

log = logging.getLogger(__name__)

LEASE_TABLE = "_compaction_lease"
_APP_ID = "tasklake-compactor-lease"
_SCHEMA = pa.schema([pa.field("holder", pa.string())])


@dataclass(frozen=True)
class LeaseState:
    holder: str | None
    expires_ms: int


class Lease:
    """``holder``'s view of the lake's compaction lease."""

    def __init__(self, location: LakeLocation, holder: str, ttl: float) -> None:
        self.uri = location.uri(LEASE_TABLE)
        self.holder = holder
        self.ttl = ttl
        self._table: DeltaTable | None = None

    def _open(self) -> DeltaTable:
        if self._table is None:
            try:
                self._table = DeltaTable(self.uri)
            except TableNotFoundError:
                try:
                    self._table = DeltaTable.create(self.uri, schema=_SCHEMA, name=LEASE_TABLE)
                except Exception:  # another receiver created it first
                    self._table = DeltaTable(self.uri)
        self._table.update_incremental()
        return self._table

    def state(self) -> LeaseState:
        table = self._open()
        last = table.history(1)
        meta = last[0] if last else {}
        holder = meta.get("tasklake.lease.holder")
        return LeaseState(
            str(holder) if holder else None, int(meta.get("tasklake.lease.expires_ms") or 0)
        )

    def acquire(self, now_ms: int | None = None) -> bool:
        """Take or renew the lease; True when this holder has it until ``ttl`` from now."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        table = self._open()
        current = self.state()
        if current.holder not in (None, self.holder) and now < current.expires_ms:
            return False
        version = table.version()
        try:
            table.create_write_transaction(
                [],
                mode="append",
                schema=_SCHEMA,
                commit_properties=CommitProperties(
                    app_transactions=[Transaction(_APP_ID, version + 1, now)],
                    custom_metadata={
                        "tasklake.lease.holder": self.holder,
                        "tasklake.lease.expires_ms": now + int(self.ttl * 1000),
                    },
                    max_commit_retries=0,
                ),
            )
        except CommitFailedError:
            self._table = None  # someone else committed this version: re-read next time
            return False
        if current.holder != self.holder:
            log.info("compaction lease taken by %s", self.holder)
        return True

    def release(self) -> None:
        """Give the lease up now (a clean stop), so another receiver need not wait it out."""
        table = self._open()
        if self.state().holder != self.holder:
            return
        with contextlib.suppress(CommitFailedError):  # someone took it meanwhile: fine
            table.create_write_transaction(
                [],
                mode="append",
                schema=_SCHEMA,
                commit_properties=CommitProperties(
                    app_transactions=[Transaction(_APP_ID, table.version() + 1)],
                    custom_metadata={"tasklake.lease.holder": "", "tasklake.lease.expires_ms": 0},
                    max_commit_retries=0,
                ),
            )
