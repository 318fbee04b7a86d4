-- Template: the model calls (billed spans: trace_spans.sql) and retrievals of each attempt in
-- each trace, from {trace_spans}: one row per such span, the span-level facts the levers read
-- (levers_*.sql). kind: model or retrieval; role as resolved; provider and model (the
-- response model, else the requested one) of model calls; their token counts (input includes
-- cache reads and writes, output includes reasoning) and cost; error: the span's status is
-- an error; after_retrieval: a model call that starts once a retrieval of its attempt ended
-- (in the same trace), so its prompt may carry what was retrieved. A retrieval's
-- total_tokens are the tokens it reported (NULL: none reported).
WITH s AS (
    SELECT *,
        min(start_time_unix_nano + duration_ns) FILTER (WHERE operation = 'retrieval')
            OVER (PARTITION BY trace_id, attempt_id) AS first_retrieval_end_ns
    FROM {trace_spans}
    WHERE billed OR operation = 'retrieval'
)
SELECT
    trace_id,
    attempt_id,
    CASE WHEN billed THEN 'model' ELSE 'retrieval' END AS kind,
    resolved_role AS role,
    CASE WHEN billed THEN provider END AS provider,
    CASE WHEN billed THEN coalesce(response_model, request_model) END AS model,
    input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens,
    total_tokens,
    CASE WHEN billed THEN cost_usd END AS cost_usd,
    coalesce(status_code = 2, false) AS error,
    coalesce(billed AND start_time_unix_nano >= first_retrieval_end_ns, false)
        AS after_retrieval
FROM s
