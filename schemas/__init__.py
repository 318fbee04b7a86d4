"""The lake's contracts: Arrow schemas, view SQL, settings and JSON shapes.

Both ``ingest`` (writers) and ``service`` (readers) depend on this package; it depends on
neither.
"""
