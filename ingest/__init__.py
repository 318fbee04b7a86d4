"""Everything that writes the lake: OTLP receivers, normalization, pricing, the write-ahead
log, Parquet publishing and compaction. Depends on ``schemas`` only."""
