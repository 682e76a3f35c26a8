-- 002: token sums in rollup_hourly become HUGEINT and are scaled by the sampling weight.
-- An hour of spans with 2^53 - 1 tokens each (a poisoned load) overflowed the BIGINT sums
-- and made every publish of that hour fail; and tokens were summed as observed while
-- requests were scaled. The rollup is rebuilt here from the raw spans with the formula of
-- queries/refresh_rollups.sql, so a file written by schema 001 gives today's figures.
ALTER TABLE rollup_hourly ALTER input_tokens SET DATA TYPE HUGEINT;
ALTER TABLE rollup_hourly ALTER output_tokens SET DATA TYPE HUGEINT;
CREATE OR REPLACE TEMP TABLE _tokens_002 AS
WITH service_tokens AS (
    SELECT trace_id, service, sum(input_tokens::HUGEINT) AS input_tokens,
           sum(output_tokens::HUGEINT) AS output_tokens
    FROM spans
    WHERE NOT is_request AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL)
    GROUP BY ALL
),
requests AS (
    SELECT date_trunc('hour', r.start_time) AS hour, r.environment, r.model,
           coalesce(r.version, 'unknown') AS version, r.sample_weight,
           coalesce(r.input_tokens, t.input_tokens)::HUGEINT AS input_tokens,
           coalesce(r.output_tokens, t.output_tokens)::HUGEINT AS output_tokens
    FROM spans r
    LEFT JOIN service_tokens t USING (trace_id, service)
    WHERE r.is_request
)
SELECT hour, environment, model, version,
       CASE WHEN count(input_tokens) > 0 THEN
           coalesce(sum(input_tokens * sample_weight::HUGEINT)
                    FILTER (WHERE sample_weight = floor(sample_weight)), 0)
           + coalesce(round(sum(input_tokens * sample_weight)
                            FILTER (WHERE sample_weight <> floor(sample_weight)))::HUGEINT, 0)
       END AS input_tokens,
       CASE WHEN count(output_tokens) > 0 THEN
           coalesce(sum(output_tokens * sample_weight::HUGEINT)
                    FILTER (WHERE sample_weight = floor(sample_weight)), 0)
           + coalesce(round(sum(output_tokens * sample_weight)
                            FILTER (WHERE sample_weight <> floor(sample_weight)))::HUGEINT, 0)
       END AS output_tokens
FROM requests GROUP BY ALL;
UPDATE rollup_hourly AS h
SET input_tokens = t.input_tokens, output_tokens = t.output_tokens
FROM _tokens_002 AS t
WHERE h.hour = t.hour AND h.environment = t.environment AND h.model = t.model
  AND h.version = t.version;
DROP TABLE _tokens_002;
