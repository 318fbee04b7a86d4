-- Template: the retrieval lever of each workflow, from {lever_scope} (attempts) and
-- {lever_calls}: retrievals and retrieved tokens (as reported by the retrieval spans; NULL
-- when none reported) per attempt, and the model calls that follow a retrieval
-- (after_retrieval, call_parts.sql) with their input tokens. Dollars at stake: the input of
-- those calls above the workflow's p50 input per call, at their models' input prices (the
-- part of the prompt-size lever that retrieved context feeds).
WITH a AS (
    SELECT workflow, count(*)::BIGINT AS attempts FROM {lever_scope} GROUP BY workflow
),
c AS (
    SELECT workflow,
        count(*) FILTER (WHERE kind = 'retrieval')::BIGINT AS retrievals,
        try_cast(sum(total_tokens) FILTER (WHERE kind = 'retrieval') AS BIGINT)
            AS retrieved_tokens,
        count(*) FILTER (WHERE kind = 'model' AND after_retrieval)::BIGINT
            AS calls_after_retrieval,
        try_cast(sum(input_tokens) FILTER (WHERE kind = 'model' AND after_retrieval)
            AS BIGINT) AS input_tokens_after_retrieval,
        coalesce(sum(excess_input_usd) FILTER (WHERE kind = 'model' AND after_retrieval), 0)
            ::DECIMAL(38, 12) AS usd_at_stake
    FROM {lever_calls}
    GROUP BY workflow
)
SELECT a.workflow, a.attempts,
    coalesce(c.retrievals, 0) AS retrievals,
    coalesce(c.retrievals, 0) / a.attempts AS retrievals_per_attempt,
    c.retrieved_tokens,
    c.retrieved_tokens / a.attempts AS retrieved_tokens_per_attempt,
    coalesce(c.calls_after_retrieval, 0) AS calls_after_retrieval,
    c.input_tokens_after_retrieval,
    c.input_tokens_after_retrieval / nullif(c.calls_after_retrieval, 0)
        AS input_tokens_per_call_after_retrieval,
    coalesce(c.usd_at_stake, 0)::DECIMAL(38, 12) AS usd_at_stake
FROM a LEFT JOIN c ON c.workflow IS NOT DISTINCT FROM a.workflow
