-- task_facts_in(traces, keys): the decisions of the tasks of those traces and task keys (NULL:
-- all), from their attempts and the signals in force at as_of() (task_rows.sql).
CREATE OR REPLACE MACRO task_facts_in(traces, keys) AS TABLE
{task_rows(attempts=attempts_of_keys, signals=signals_in_force)};

-- tasks_in(traces, keys): those tasks with their outcome at as_of().
CREATE OR REPLACE MACRO tasks_in(traces, keys) AS TABLE
SELECT * FROM {task_outcomes(task_facts=task_facts_of_keys)};

-- tasks: every task with its spend and outcome.
CREATE OR REPLACE VIEW tasks AS SELECT * FROM tasks_in(NULL, NULL);
