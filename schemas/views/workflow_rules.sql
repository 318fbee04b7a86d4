-- workflow_rules: each workflow's acceptance rule ([workflows.<name>] in the config); the row
-- with a NULL workflow applies to every workflow without one.
CREATE OR REPLACE VIEW workflow_rules AS
SELECT * FROM (VALUES
    {workflow_rules_values}
) AS r(workflow, reopen_window, abandon_after, rework_counts_as_completed,
    budget_per_completed_task, target_success_rate, human_minutes_per_task);
