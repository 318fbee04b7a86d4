-- outcome_reasons_by(start_at, end_at, workflows, teams): escalation, failure and abandonment
-- reasons of each workflow ranked by tasks and spend (outcome_reasons.sql); GET
-- /api/v1/reasons selects from it.
CREATE OR REPLACE MACRO {macro_prefix}outcome_reasons_by({reasons_params}) AS TABLE
{outcome_reasons};

-- time_saved_by(start_at, end_at, workflows, teams): hours of human work each workflow saved,
-- their value and the net value after its fully loaded spend (time_saved.sql); GET
-- /api/v1/time-saved selects from it.
CREATE OR REPLACE MACRO {macro_prefix}time_saved_by({reasons_params}) AS TABLE
{time_saved};
