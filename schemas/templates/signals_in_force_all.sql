-- Template: every signal (the signals view) in force at as_of().
SELECT * FROM signals WHERE occurred_at <= as_of()
