"""Everything that writes the lake: OTLP receivers, normalization, pricing, the write-ahead
log, Delta commits and compaction. Depends on ``schemas`` only.

The names below are the public entry points the composition root (``service.server``) uses;
everything else is internal.
"""

from ingest.lake.compaction import compact_once
from ingest.otlp_grpc import start_grpc_server
from ingest.otlp_http import otlp_routes
from ingest.runtime import IngestRuntime, LakeLocked
from ingest.write_api import write_routes

__all__ = [
    "IngestRuntime",
    "LakeLocked",
    "compact_once",
    "otlp_routes",
    "start_grpc_server",
    "write_routes",
]
