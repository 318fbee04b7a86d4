-- autonomy_by(end_at, workflows, teams, full_cost): per workflow, whether quality and cost are
-- proven over its autonomy window, and the verdict (autonomy.sql); GET /api/v1/autonomy
-- selects from it.
CREATE OR REPLACE MACRO {macro_prefix}autonomy_by({autonomy_params}) AS TABLE
{autonomy};
