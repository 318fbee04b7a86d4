"""Stage 2: the write-ahead log. What makes a 200 mean "this survives kill -9": lanes of segment
files, and the records (spans, signals, cost entries) they hold.
"""
