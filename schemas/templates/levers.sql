-- Template: the five levers of each workflow in dollars, inside a macro with the parameters
-- start_at, end_at, workflows, teams: one row per workflow with each lever's measurement as a
-- struct (lever_routing.sql, lever_caching.sql, lever_retrieval.sql, lever_prompt_size.sql,
-- lever_failed_runs.sql; each holds usd_at_stake) and ranking: the levers by usd_at_stake,
-- largest first (ties in the design's order of impact: routing, caching, retrieval, prompt
-- size, failed runs). The levers overlap (a call can be rerouted and trimmed): their dollars are
-- each lever's own, not to be added up.
WITH scope AS MATERIALIZED (
    SELECT * FROM {lever_scope}
),
calls AS MATERIALIZED (
    SELECT * FROM {lever_calls(lever_scope=scope)}
),
routing AS (
    SELECT * FROM {lever_routing(lever_calls=calls)}
),
routing_w AS (
    SELECT workflow,
        {'usd_at_stake': coalesce(sum(saving_usd), 0)::DECIMAL(38, 12),
         'calls': sum(calls)::BIGINT,
         'spend_usd': sum(spend_usd)::DECIMAL(38, 12),
         'models': list({'role': role, 'provider': provider, 'model': model, 'calls': calls,
                         'spend_usd': spend_usd, 'success_rate': success_rate,
                         'candidate_provider': candidate_provider,
                         'candidate_model': candidate_model,
                         'candidate_success_rate': candidate_success_rate,
                         'cost_on_candidate_usd': cost_on_candidate_usd,
                         'saving_usd': saving_usd}
                        ORDER BY spend_usd DESC NULLS LAST, role, provider, model)}
            AS routing
    FROM routing GROUP BY workflow
),
caching AS (
    SELECT workflow, c AS caching FROM {lever_caching(lever_calls=calls)} c
),
retrieval AS (
    SELECT workflow, r AS retrieval
    FROM {lever_retrieval(lever_calls=calls, lever_scope=scope)} r
),
prompt AS (
    SELECT * FROM {lever_prompt_size(lever_calls=calls)}
),
prompt_w AS (
    SELECT workflow,
        {'usd_at_stake': sum(excess_input_usd)::DECIMAL(38, 12),
         'workflow_input_p50': any_value(workflow_input_p50),
         'roles': list({'role': role, 'calls': calls, 'input_tokens_p50': input_tokens_p50,
                        'input_tokens_p95': input_tokens_p95,
                        'excess_input_usd': excess_input_usd}
                       ORDER BY excess_input_usd DESC, role)} AS prompt_size
    FROM prompt GROUP BY workflow
),
failed AS (
    SELECT workflow, f AS failed_runs FROM {lever_failed_runs(lever_scope=scope)} f
),
w AS (
    SELECT f.workflow, r.routing, c.caching, t.retrieval, p.prompt_size, f.failed_runs
    FROM failed f
    LEFT JOIN routing_w r ON r.workflow IS NOT DISTINCT FROM f.workflow
    LEFT JOIN caching c ON c.workflow IS NOT DISTINCT FROM f.workflow
    LEFT JOIN retrieval t ON t.workflow IS NOT DISTINCT FROM f.workflow
    LEFT JOIN prompt_w p ON p.workflow IS NOT DISTINCT FROM f.workflow
)
SELECT workflow,
    list_sort([
        {'usd_at_stake': coalesce(routing.usd_at_stake, 0), 'tie': 5, 'lever': 'routing'},
        {'usd_at_stake': coalesce(caching.usd_at_stake, 0), 'tie': 4, 'lever': 'caching'},
        {'usd_at_stake': coalesce(retrieval.usd_at_stake, 0), 'tie': 3, 'lever': 'retrieval'},
        {'usd_at_stake': coalesce(prompt_size.usd_at_stake, 0), 'tie': 2, 'lever': 'prompt_size'},
        {'usd_at_stake': coalesce(failed_runs.usd_at_stake, 0), 'tie': 1, 'lever': 'failed_runs'}
    ], 'DESC') AS ranking,
    routing, caching, retrieval, prompt_size, failed_runs
FROM w
ORDER BY workflow NULLS LAST
