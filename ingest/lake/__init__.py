"""The lake stage: data files into Delta tables, committed once, compacted and vacuumed.

``files`` writes a table partition's data file in the table's location; ``manifest`` is a
lane's durable list of written-but-uncommitted files; ``committer`` commits them to the Delta
logs exactly once (one commit per table per round, for every lane of the receiver);
``compaction`` merges small files; ``lease`` keeps compaction to one receiver at a time.
"""
