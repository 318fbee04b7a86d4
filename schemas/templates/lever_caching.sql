-- Template: the caching lever of each workflow, from {lever_calls} (model calls): the share
-- of input tokens read from cache, what those cache reads saved against the input price
-- (cache reads x (input - cache read price)), the input still paid at full price (uncached
-- input) on models whose price list reads cache for less, and what that input would save at
-- the cache read price: the dollars at stake (an upper bound: every such token a cache read).
-- Prices: each model's in force on priced_on (model_prices).
SELECT workflow,
    count(*)::BIGINT AS calls,
    try_cast(sum(input_tokens) AS BIGINT) AS input_tokens,
    try_cast(sum(cache_read_tokens) AS BIGINT) AS cache_read_tokens,
    sum(cache_read_tokens) / nullif(sum(input_tokens), 0) AS cache_read_share,
    coalesce(sum(coalesce(cache_read_tokens, 0) * (input_per_token - cache_read_per_token))
        FILTER (WHERE cache_pricing), 0)::DECIMAL(38, 12) AS saved_by_cache_usd,
    coalesce(sum(uncached_input_tokens) FILTER (WHERE cache_pricing), 0)::BIGINT
        AS full_price_input_tokens,
    coalesce(sum(uncached_input_tokens * input_per_token) FILTER (WHERE cache_pricing), 0)
        ::DECIMAL(38, 12) AS full_price_input_usd,
    coalesce(sum(uncached_input_tokens * (input_per_token - cache_read_per_token))
        FILTER (WHERE cache_pricing), 0)::DECIMAL(38, 12) AS usd_at_stake,
    count(*) FILTER (WHERE input_per_token IS NULL)::BIGINT AS calls_without_prices
FROM {lever_calls}
WHERE kind = 'model'
GROUP BY workflow
