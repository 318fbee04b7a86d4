-- Helpers shared by the templates and views (loaded first).

-- An instant from int64 nanoseconds since the epoch (how the lake stores times: Delta
-- timestamps hold microseconds), to the microsecond, whatever the session's TimeZone.
CREATE OR REPLACE MACRO unix_nano_time(ns) AS
    to_timestamp(0) + to_microseconds(ns // 1000);

-- "Root spans first, then the earliest, then by span id": the rank a span's value competes
-- with for an attempt's "first value" (arg_min over it). A struct compares field by field, in
-- every engine; span ids are fixed-length lowercase hex, so their text order is their number's.
CREATE OR REPLACE MACRO span_rank(parent_span_id, start_ns, span_id) AS
    {'not_root': parent_span_id IS NOT NULL, 'start_ns': start_ns, 'span_id': span_id};

-- The role of a span that neither names one nor inherits one, from its operation:
--   chat, text_completion, completion, generate_content, llm  -> model
--   embeddings, embedding                                     -> embedder
--   retrieval, retriever                                      -> retriever
--   rerank, reranker                                          -> reranker
--   execute_tool, tool                                        -> tool
--   invoke_agent, create_agent, agent                         -> agent
--   invoke_workflow, workflow, chain, task                    -> orchestrator
--   guardrail -> guardrail; evaluator -> evaluator
--   anything else: model when it is a model call, else other
CREATE OR REPLACE MACRO derived_role(operation, is_model_call) AS CASE
    WHEN lower(operation) IN ('chat', 'text_completion', 'completion', 'generate_content', 'llm')
        THEN 'model'
    WHEN lower(operation) IN ('embeddings', 'embedding') THEN 'embedder'
    WHEN lower(operation) IN ('retrieval', 'retriever') THEN 'retriever'
    WHEN lower(operation) IN ('rerank', 'reranker') THEN 'reranker'
    WHEN lower(operation) IN ('execute_tool', 'tool') THEN 'tool'
    WHEN lower(operation) IN ('invoke_agent', 'create_agent', 'agent') THEN 'agent'
    WHEN lower(operation) IN ('invoke_workflow', 'workflow', 'chain', 'task') THEN 'orchestrator'
    WHEN lower(operation) = 'guardrail' THEN 'guardrail'
    WHEN lower(operation) = 'evaluator' THEN 'evaluator'
    WHEN is_model_call THEN 'model'
    ELSE 'other'
END;

-- The UTC calendar day of an instant, whatever the session's TimeZone.
CREATE OR REPLACE MACRO utc_day(t) AS
    DATE '1970-01-01' + (epoch_us(t) // 86400000000)::INTEGER;

-- "Now" for outcomes: SET VARIABLE as_of = TIMESTAMPTZ '...' makes answers reproducible.
CREATE OR REPLACE MACRO as_of() AS coalesce(getvariable('as_of')::TIMESTAMPTZ, now());

-- A task's outcome at a time, from its decision (task_rows.sql): pending while it waits.
CREATE OR REPLACE MACRO outcome_at(final_outcome, waits, decided_at, at_time) AS
    CASE WHEN waits AND at_time <= decided_at THEN 'pending' ELSE final_outcome END;

-- The five buckets every task is counted in: completed + failed + escalated + abandoned +
-- pending = tasks. `reopened` and `rework` (when the rule does not count it) are failures.
CREATE OR REPLACE MACRO counted_as(outcome) AS
    CASE WHEN outcome IN ('completed', 'pending', 'escalated', 'abandoned') THEN outcome
         ELSE 'failed' END;

-- A row whose model calls are all unpriced (model_calls > 0, no inference spend and every one
-- of them unpriced) has no known cost: its per-unit figures are NULL, never $0.
CREATE OR REPLACE MACRO all_unpriced(model_calls, inference_usd, unpriced_spans) AS
    model_calls > 0 AND inference_usd = 0 AND unpriced_spans >= model_calls;

-- What tokens cost at a price list (USD per token of each kind; input includes cache reads
-- and writes, output includes reasoning, each part at its own price), exact: the arithmetic
-- of ingest's price overrides (ingest/convert/price.py), for what-if figures.
CREATE OR REPLACE MACRO tokens_cost(input, cache_read, cache_write, output, reasoning,
        input_price, cache_read_price, cache_write_price, output_price, reasoning_price) AS
    (coalesce(input, 0) - coalesce(cache_read, 0) - coalesce(cache_write, 0)) * input_price
    + coalesce(cache_read, 0) * cache_read_price
    + coalesce(cache_write, 0) * cache_write_price
    + (coalesce(output, 0) - coalesce(reasoning, 0)) * output_price
    + coalesce(reasoning, 0) * reasoning_price;
