-- Template: the signals of {signals} in force at as_of().
SELECT * FROM {signals} WHERE occurred_at <= as_of()
