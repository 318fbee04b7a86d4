-- Template: the rows of {signals_table} (every stored copy of every signal) with occurred_at
-- as an instant (the table keeps it in nanoseconds).
SELECT s.* EXCLUDE (occurred_at_unix_nano, date),
    unix_nano_time(s.occurred_at_unix_nano) AS occurred_at
FROM {signals_table} s
