"""Stage 3: WAL records to lake rows. Normalization across emitter conventions, pricing, the
converter process of each lane.
"""
