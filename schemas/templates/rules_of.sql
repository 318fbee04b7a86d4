-- Template: the rule of each workflow of {workflows} (rows with a workflow column; NULL: no
-- workflow) as one struct, rules: its own row of workflow_rules, else the default row.
SELECT w.workflow, CASE WHEN r.workflow IS NULL THEN d ELSE r END AS rules
FROM (SELECT DISTINCT workflow FROM {workflows}) w
LEFT JOIN workflow_rules r ON r.workflow = w.workflow
CROSS JOIN (SELECT * FROM workflow_rules WHERE workflow IS NULL) d
