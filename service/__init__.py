"""Everything that reads the lake: the REST API, the dashboard, the CLI. Depends on ``schemas``;
``tasklake serve`` composes it with ``ingest``'s public entry points."""
