"""Where things live in the lake, and the seed that makes an empty lake queryable.

```
lake/spans/date=YYYY-MM-DD/<writer>-<ulid>.parquet   <table>/*/*.parquet (or schemas.snapshot)
lake/signals/date=.../  lake/costs/date=.../
lake/_gen/<table>/date=.../g<NNNNNN>/                 partition generations (see ingest.storage)
lake/_wal/<writer>-<lane>/                            write-ahead log (not for readers)
lake/_tmp/                                            files being written (not for readers)
```

Each table also holds ``date=1970-01-01/_schema-v<N>.parquet``: zero rows with the current
schema, so a view binds on an empty lake and files written before a column existed still
line up (the views read with ``union_by_name``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from schemas.spans import SCHEMA_VERSION, SPAN_SCHEMA

SPANS = "spans"
SIGNALS = "signals"
COSTS = "costs"
WAL_DIR = "_wal"
GEN_DIR = "_gen"
TMP_DIR = "_tmp"

SEED_PARTITION = "date=1970-01-01"

#: Every table readers see, with its Arrow schema and version. Issue-specific tables register
#: themselves here through ``register_table``.
TABLES: dict[str, tuple[pa.Schema, int]] = {SPANS: (SPAN_SCHEMA, SCHEMA_VERSION)}


def register_table(name: str, schema: pa.Schema, version: int) -> None:
    TABLES[name] = (schema, version)


#: Companions of a table's data files (per-file roll-ups in a subdirectory of the partition,
#: ``<table>/date=D/<subdir>/<data file name>``), each with a seed so views bind on an empty
#: lake. The subdir name carries the companion's version.
COMPANIONS: dict[tuple[str, str], pa.Schema] = {}


def register_companion(table: str, subdir: str, schema: pa.Schema) -> None:
    COMPANIONS[(table, subdir)] = schema


def companion_glob(lake: str | os.PathLike[str], table: str, subdir: str) -> str:
    return f"{Path(lake).as_posix()}/{table}/*/{subdir}/*.parquet"


def table_glob(lake: str | os.PathLike[str], table: str) -> str:
    """The glob of a reader that does not pin (``schemas.snapshot``). Not ``**``: partitions
    are symlinks, which ``**`` skips."""
    return f"{Path(lake).as_posix()}/{table}/*/*.parquet"


def partition_name(day: str) -> str:
    return f"date={day}"


def seed_file(lake: Path, table: str) -> Path:
    _, version = TABLES[table]
    return lake / table / SEED_PARTITION / f"_schema-v{version}.parquet"


def ensure_lake(lake: str | os.PathLike[str]) -> Path:
    """Create the lake's directories and schema seeds; safe to call from several processes."""
    root = Path(lake)
    for sub in (GEN_DIR, TMP_DIR, WAL_DIR):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for table, (schema, _) in TABLES.items():
        seed = seed_file(root, table)
        if seed.exists():
            continue
        seed.parent.mkdir(parents=True, exist_ok=True)
        for old in seed.parent.glob("_schema-v*.parquet"):
            old.unlink(missing_ok=True)
        tmp = root / TMP_DIR / f"{table}-seed-{os.getpid()}.parquet"
        pq.write_table(schema.empty_table(), tmp)
        os.replace(tmp, seed)
    for (table, subdir), schema in COMPANIONS.items():
        seed = root / table / SEED_PARTITION / subdir / "_schema.parquet"
        if seed.exists():
            continue
        seed.parent.mkdir(parents=True, exist_ok=True)
        tmp = root / TMP_DIR / f"{table}-{subdir}-seed-{os.getpid()}.parquet"
        pq.write_table(schema.empty_table(), tmp)
        os.replace(tmp, seed)
    return root


def is_vanished_file_error(exc: BaseException) -> bool:
    """True when a query failed because a file it had listed is gone.

    A query reads the files it listed (``schemas.snapshot``); compaction replaces merged files
    by a new generation and garbage collection later removes the old one. A query that opens a
    file after that fails ("No such file" when reading, "No files found" when binding an
    explicit path) instead of answering wrongly, and running it again lists anew: callers
    retry it.
    """
    text = str(exc)
    vanished = "No such file or directory" in text or "No files found that match" in text
    return vanished and ".parquet" in text
