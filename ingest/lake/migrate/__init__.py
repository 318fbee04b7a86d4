"""``tasklake migrate``: a lake in the old layout (partition symlinks into generations) into
Delta tables, every row kept and counted.

``old_layout`` and ``old_wal`` read the old lake without changing it; ``plan`` lists what to
move and fingerprints it; ``copy`` writes it into a staging lake, batch by batch, resumable,
and counts rows before and after; ``state`` records a run's progress beside the staged
tables; ``swap`` puts staged tables in place of the old ones; ``command`` runs the steps;
``guard`` is what every other command checks first, so that an old lake is sent here.
"""
