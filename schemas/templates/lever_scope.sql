-- Template: the attempts the levers look at, inside a macro with the parameters start_at,
-- end_at, workflows, teams: every attempt of {analysis_attempts} whose task
-- ({analysis_tasks}: with its outcome at as_of()) started in [start_at, end_at) and belongs to
-- workflows and teams, with the task's workflow and outcome (counted_as) and whether it is
-- the task's last attempt (the latest to start; ties by attempt id): the one that produced a
-- completion.
SELECT a.attempt_id, a.task_key, t.workflow, t.counted_as, a.started_at, a.spend_usd,
    a.errors, a.retrievals, a.model_calls,
    row_number() OVER (PARTITION BY a.task_key ORDER BY a.started_at DESC, a.attempt_id DESC)
        = 1 AS last_attempt
FROM {analysis_attempts} a
JOIN (
    SELECT task_key, workflow, counted_as FROM {analysis_tasks}
    WHERE (start_at IS NULL OR started_at >= start_at::TIMESTAMPTZ)
      AND (end_at IS NULL OR started_at < end_at::TIMESTAMPTZ)
      AND (workflows IS NULL OR list_contains(workflows, workflow))
      AND (teams IS NULL OR list_contains(teams, team))
) t USING (task_key)
