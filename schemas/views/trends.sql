-- trends_by(period, start_at, end_at, workflows, teams, full_cost): cost per completed task of
-- each workflow per day, week or month, with its factors and components
-- (trend_periods.sql); GET /api/v1/trends selects from it.
CREATE OR REPLACE MACRO {macro_prefix}trends_by({trends_params}) AS TABLE
{trend_periods};

-- trend_diagnosis_by(same parameters): per workflow, whether its cost per completed task is
-- rising, flat with growth, improving or stable over its recent periods, and why
-- (diagnosis.sql).
CREATE OR REPLACE MACRO {macro_prefix}trend_diagnosis_by({trends_params}) AS TABLE
{diagnosis(periods=trend_periods)};
