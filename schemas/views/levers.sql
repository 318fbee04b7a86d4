-- levers_by(start_at, end_at, workflows, teams): the five levers of each workflow with their
-- measurements and dollars at stake, ranked (levers.sql); GET /api/v1/levers selects from it.
-- The measurements of each lever alone: lever_routing_by (per role and model, with the
-- smaller model each could move to), lever_prompt_size_by (per role).
CREATE OR REPLACE MACRO {macro_prefix}levers_by({reasons_params}) AS TABLE
{levers};

CREATE OR REPLACE MACRO {macro_prefix}lever_routing_by({reasons_params}) AS TABLE
{lever_routing};

CREATE OR REPLACE MACRO {macro_prefix}lever_prompt_size_by({reasons_params}) AS TABLE
{lever_prompt_size};
