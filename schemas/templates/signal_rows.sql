-- Template: stored signal rows of {raw} (every stored copy of each signal_id it touches),
-- one per signal_id: the first received wins, whole (sending a signal twice counts once).
WITH raw AS (
    SELECT *,
        (epoch_ms(received_at)::HUGEINT << 64)
        + hash(occurred_at, outcome, task_id, correlation_id, workflow, reason,
               rework_cost_usd, rework_minutes)::HUGEINT AS arrival
    FROM {raw}
)
SELECT
    signal_id,
    arg_min_null(task_id, arrival) AS task_id,
    arg_min_null(correlation_id, arrival) AS correlation_id,
    arg_min_null(outcome, arrival) AS outcome,
    arg_min_null(occurred_at, arrival) AS occurred_at,
    arg_min_null(workflow, arrival) AS workflow,
    arg_min_null(reason, arrival) AS reason,
    arg_min_null(rework_cost_usd, arrival) AS rework_cost_usd,
    arg_min_null(rework_minutes, arrival) AS rework_minutes,
    arg_min_null(attributes, arrival) AS attributes,
    arg_min_null(attribute_types, arrival) AS attribute_types,
    arg_min_null(source, arrival) AS source,
    min(received_at) AS received_at
FROM raw
GROUP BY signal_id
