-- Template: the decisions of the tasks named by the enclosing macro's `traces` and `keys`.
SELECT * FROM task_facts_in(traces, keys)
