-- compare_by(workflow_name, a_version, a_team, a_start, a_end, b_..., start_at, end_at, teams,
-- full_cost): two cohorts of one workflow side by side, rows 'a' and 'b' (compare_sides.sql);
-- GET /api/v1/compare selects from it.
CREATE OR REPLACE MACRO {macro_prefix}compare_by({compare_params}) AS TABLE
{compare_sides};

-- compare_decomposition_by(same parameters): the change of cost per completed task from a to
-- b split exactly into price per token, tokens per attempt, attempts per completed task and
-- the non-inference components (decomposition.sql: LMDI).
CREATE OR REPLACE MACRO {macro_prefix}compare_decomposition_by({compare_params}) AS TABLE
{decomposition(sides=compare_sides)};
