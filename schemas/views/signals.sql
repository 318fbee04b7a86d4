-- signals_in(keys): completion signals, one per signal_id. keys NULL: all; else the signals
-- naming one of keys as task_id or correlation_id.
CREATE OR REPLACE MACRO signals_in(keys) AS TABLE
{signal_rows(raw=signals_of_keys)};

-- signals: every signal once.
CREATE OR REPLACE VIEW signals AS SELECT * FROM signals_in(NULL);
