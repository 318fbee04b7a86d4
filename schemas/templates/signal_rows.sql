-- Template: stored signal rows of {raw} (every stored copy of each signal_id it touches),
-- one per signal_id: the first received wins, whole (sending a signal twice counts once).
-- Copies received in the same millisecond: the smallest content (every column but the maps),
-- so every engine keeps the same copy.
SELECT signal_id, task_id, correlation_id, outcome, occurred_at, workflow, reason,
    rework_cost_usd, rework_minutes, attributes, attribute_types, source, received_at
FROM (
    SELECT *,
        row_number() OVER (
            PARTITION BY signal_id
            ORDER BY received_at NULLS LAST, occurred_at NULLS LAST, outcome NULLS LAST,
                task_id NULLS LAST, correlation_id NULLS LAST, workflow NULLS LAST,
                reason NULLS LAST, rework_cost_usd NULLS LAST, rework_minutes NULLS LAST
        ) AS copy_no
    FROM {raw}
)
WHERE copy_no = 1
