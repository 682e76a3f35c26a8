-- 008: cost allocated to models, and the token kinds billed apart, per hour of the rollup.
-- cost_allocation is derived, like the rollups: warehouse/allocation.py rebuilds the days
-- whose spans, GPU samples, billing rows or config changed, inside the transaction that
-- changed them. Per (day, environment, model, cost center, method, currency) it holds the
-- ledger's EffectiveCost split by the allocation key, rounded by largest remainder so that
-- each day's rows sum exactly to that day's ledger rows. `model` 'unallocated' is cost an
-- environment keeps (idle, not mapped to a workload, no usage to split by), environment
-- 'unallocated' is cost no rule placed.
CREATE TABLE IF NOT EXISTS cost_allocation (
    day DATE NOT NULL,
    environment VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    cost_center VARCHAR NOT NULL,
    method VARCHAR NOT NULL,
    currency VARCHAR,
    cost DECIMAL(38, 12) NOT NULL,
    marginal_cost DECIMAL(38, 12) NOT NULL,
    reporting_cost DECIMAL(38, 12),
    reporting_marginal_cost DECIMAL(38, 12),
    reporting_currency VARCHAR NOT NULL,
    charges BIGINT NOT NULL
);
ALTER TABLE rollup_hourly ADD COLUMN IF NOT EXISTS cached_input_tokens HUGEINT;
ALTER TABLE rollup_hourly ADD COLUMN IF NOT EXISTS reasoning_output_tokens HUGEINT;
-- the token kinds of the hours already rolled up, weighted as refresh_rollups.sql weights
-- tokens (request spans' own counts; a later refresh of the hour adds its child spans')
CREATE OR REPLACE TEMP MACRO _weighted_tokens(tokens, weight) AS
    CASE WHEN count(tokens) > 0 THEN
        coalesce(sum(tokens * weight::HUGEINT) FILTER (WHERE weight = floor(weight)), 0)
        + coalesce(round(sum(tokens * weight) FILTER (WHERE weight <> floor(weight)))::HUGEINT, 0)
    END;
CREATE OR REPLACE TEMP TABLE _tokens_008 AS
SELECT date_trunc('hour', start_time) AS hour, environment, model,
       coalesce(version, 'unknown') AS version,
       _weighted_tokens(cache_read_input_tokens::HUGEINT, sample_weight) AS cached,
       _weighted_tokens(reasoning_output_tokens::HUGEINT, sample_weight) AS reasoning
FROM spans
WHERE is_request AND (cache_read_input_tokens IS NOT NULL OR reasoning_output_tokens IS NOT NULL)
GROUP BY ALL;
UPDATE rollup_hourly AS h
SET cached_input_tokens = t.cached, reasoning_output_tokens = t.reasoning
FROM _tokens_008 AS t
WHERE h.hour = t.hour AND h.environment = t.environment AND h.model = t.model
  AND h.version = t.version;
DROP TABLE _tokens_008;
DROP MACRO _weighted_tokens;
