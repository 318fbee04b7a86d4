-- Template: the rows of {costs_table} (every stored copy of every cost entry) with the period
-- bounds as instants (the table keeps them in nanoseconds).
SELECT c.* EXCLUDE (period_start_unix_nano, period_end_unix_nano, date),
    unix_nano_time(c.period_start_unix_nano) AS period_start,
    unix_nano_time(c.period_end_unix_nano) AS period_end
FROM {costs_table} c
