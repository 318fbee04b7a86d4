"""Everything that writes the lake. Depends on ``schemas`` only. The folders are the stages a
span goes through, in order:

- ``receive/``: the doors (OTLP/HTTP, OTLP/gRPC, the REST write API): read, admit, validate;
- ``wal/``: the write-ahead log that makes a 200 mean stored;
- ``convert/``: WAL records to lake rows (normalize across conventions, price);
- ``lake/``: Delta commits, compaction, the compactor lease, migration.

``runtime`` wires them into lanes; ``pipeline`` is the one export path the doors share.

The names below are the public entry points the composition root (``service.server``) uses;
everything else is internal.
"""

from ingest.lake.compaction import compact_once
from ingest.receive.otlp_grpc import start_grpc_server
from ingest.receive.otlp_http import otlp_routes
from ingest.receive.write_api import write_routes
from ingest.runtime import IngestRuntime, LakeLocked

__all__ = [
    "IngestRuntime",
    "LakeLocked",
    "compact_once",
    "otlp_routes",
    "start_grpc_server",
    "write_routes",
]
