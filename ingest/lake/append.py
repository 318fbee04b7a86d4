"""Rows appended to a table in one commit: for tools and tests that write a lake directly
(``tasklake migrate``, the benchmark's lake generator), not for ingest (see ``committer``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyarrow as pa
from deltalake import CommitProperties, Transaction

from ingest.lake.files import FileWriter, NewFile
from ingest.lake.parquet import FLUSH_LEVEL
from schemas.delta import Tables
from schemas.lake import PARTITION, TABLES


def append_rows(
    tables: Tables,
    table: str,
    rows: pa.Table,
    *,
    prefix: str,
    level: int | None = FLUSH_LEVEL,
    row_group_rows: int = 100_000,
    metadata: Mapping[str, str] | None = None,
    op: str = "append",
) -> list[NewFile]:
    """Write ``rows`` (in the table's row schema) as one file per day and commit them."""
    spec = TABLES[table]
    writer = FileWriter(tables.location)
    files = [
        writer.write(
            spec,
            day,
            part,
            prefix=prefix,
            row_group_rows=row_group_rows,
            level=level,
            metadata=metadata,
        )
        for day, part in spec.split_by_day(spec.to_lake(rows))
    ]
    if files:
        commit_files(tables, table, files, op=op)
    return files


def commit_files(
    tables: Tables,
    table: str,
    files: Sequence[NewFile],
    *,
    op: str,
    transaction: Transaction | None = None,
) -> None:
    """One blind-append commit adding ``files`` (written whole, see ``files``) to ``table``.

    ``transaction`` (an application transaction, recorded in the same commit) lets a writer
    that may be interrupted tell afterwards how far it got; it commits even without files.
    """
    spec = TABLES[table]
    tables.current(table).create_write_transaction(
        [f.add_action() for f in files],
        mode="append",
        schema=spec.delta_schema,
        partition_by=[PARTITION],
        commit_properties=CommitProperties(
            app_transactions=[transaction] if transaction is not None else None,
            custom_metadata={"tasklake.op": op},
        ),
    )
