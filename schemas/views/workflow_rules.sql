-- workflow_rules: each workflow's acceptance rule, targets and analysis thresholds
-- ([workflows.<name>] in the config; schemas/settings.py RULES documents each key); the row
-- with a NULL workflow applies to every workflow without one. autonomy_z: the standard normal
-- quantile of autonomy_confidence (the z of the one-sided Wilson lower bound).
CREATE OR REPLACE VIEW workflow_rules AS
SELECT * FROM (VALUES
    {workflow_rules_values}
) AS r({workflow_rules_columns});
