"""Why a migration stops: every refusal is a ``MigrationError`` whose message says what to do
(the command prints it and exits 1, nothing half-done is left visible)."""

from __future__ import annotations


class MigrationError(RuntimeError):
    """The migration cannot go on; the message says why and what to do."""


class LakeBusy(MigrationError):
    """A tasklake process (old or new) holds the lake."""


class LakeChanged(MigrationError):
    """The old lake changed while it was read: something of the old version is running."""


class UnconvertibleRecord(MigrationError):
    """A WAL record today's handlers cannot turn into rows."""

    def __init__(self, where: str, why: str) -> None:
        super().__init__(
            f"{where}: {why}. Nothing was changed. Start the old tasklake once on this lake so"
            " that it converts its write-ahead log (it keeps what it cannot convert in"
            " _wal/_quarantine), stop it, then migrate."
        )
