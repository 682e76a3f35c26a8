-- Recompute every rollup for request spans that start in [$lo, $hi); run after each publish.
DELETE FROM rollup_hourly WHERE hour >= $lo AND hour < $hi;
DELETE FROM rollup_latency WHERE hour >= $lo AND hour < $hi;
DELETE FROM rollup_minutes WHERE minute >= $lo AND minute < $hi;
DELETE FROM rollup_accuracy WHERE hour >= $lo AND hour < $hi;
CREATE OR REPLACE TEMP TABLE _requests AS
WITH nearby AS (
    SELECT trace_id, service, is_request, input_tokens, output_tokens,
           cache_read_input_tokens, reasoning_output_tokens
    FROM spans
    WHERE start_time >= $lo - INTERVAL 1 HOUR AND start_time < $hi + INTERVAL 1 HOUR
),
service_tokens AS (
    SELECT trace_id, service, sum(input_tokens::HUGEINT) AS input_tokens,
           sum(output_tokens::HUGEINT) AS output_tokens,
           sum(cache_read_input_tokens::HUGEINT) AS cached_input_tokens,
           sum(reasoning_output_tokens::HUGEINT) AS reasoning_output_tokens
    FROM nearby
    WHERE NOT is_request AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL
                              OR cache_read_input_tokens IS NOT NULL
                              OR reasoning_output_tokens IS NOT NULL)
    GROUP BY ALL
)
SELECT date_trunc('hour', r.start_time) AS hour, date_trunc('minute', r.start_time) AS minute,
       r.environment, r.model, coalesce(r.version, 'unknown') AS version,
       r.duration_ms, r.status_code = 'ERROR' AS is_error, r.sample_weight, r.ttft_ms,
       coalesce(r.input_tokens, t.input_tokens)::HUGEINT AS input_tokens,
       coalesce(r.output_tokens, t.output_tokens)::HUGEINT AS output_tokens,
       coalesce(r.cache_read_input_tokens, t.cached_input_tokens)::HUGEINT AS cached_input_tokens,
       coalesce(r.reasoning_output_tokens, t.reasoning_output_tokens)::HUGEINT
           AS reasoning_output_tokens,
       CASE WHEN r.ttft_ms IS NOT NULL AND coalesce(r.output_tokens, t.output_tokens) > 1
            THEN greatest(r.duration_ms - r.ttft_ms, 0)
                 / (coalesce(r.output_tokens, t.output_tokens) - 1) END AS tpot_ms
FROM spans r
LEFT JOIN service_tokens t USING (trace_id, service)
WHERE r.is_request AND r.start_time >= $lo AND r.start_time < $hi;
-- Tokens are scaled by the sampling weight like the request counts, exactly (HUGEINT: a
-- poisoned hour of 2^53 - 1 tokens per span does not overflow) where the weight is whole,
-- rounded to whole tokens where it is not.
CREATE OR REPLACE TEMP MACRO _weighted_tokens(tokens, weight) AS
    CASE WHEN count(tokens) > 0 THEN
        coalesce(sum(tokens * weight::HUGEINT) FILTER (WHERE weight = floor(weight)), 0)
        + coalesce(round(sum(tokens * weight) FILTER (WHERE weight <> floor(weight)))::HUGEINT, 0)
    END;
INSERT INTO rollup_hourly BY NAME
SELECT hour, environment, model, version, sum(sample_weight) AS requests,
       count(*) AS requests_raw,
       coalesce(sum(sample_weight) FILTER (WHERE is_error), 0) AS errors,
       _weighted_tokens(input_tokens, sample_weight) AS input_tokens,
       _weighted_tokens(output_tokens, sample_weight) AS output_tokens,
       _weighted_tokens(cached_input_tokens, sample_weight) AS cached_input_tokens,
       _weighted_tokens(reasoning_output_tokens, sample_weight) AS reasoning_output_tokens,
       sum(ttft_ms) AS ttft_ms_sum, count(ttft_ms) AS ttft_n, sum(tpot_ms) AS tpot_ms_sum,
       count(tpot_ms) AS tpot_n
FROM _requests GROUP BY ALL;
INSERT INTO rollup_latency
SELECT hour, environment, model, version,
       CASE WHEN duration_ms <= 0 THEN -100000
            ELSE ceil(ln(duration_ms) / ln($gamma))::INTEGER END AS bucket,
       sum(sample_weight)
FROM _requests GROUP BY ALL;
-- the days of these hours, summed again from the hours (migration 010)
DELETE FROM rollup_latency_daily
WHERE day >= timezone('UTC', date_trunc('day', timezone('UTC', $lo::TIMESTAMPTZ))) AND day < $hi;
INSERT INTO rollup_latency_daily
SELECT timezone('UTC', date_trunc('day', timezone('UTC', hour))) AS day, environment, model,
       version, bucket, sum(n)
FROM rollup_latency
WHERE hour >= timezone('UTC', date_trunc('day', timezone('UTC', $lo::TIMESTAMPTZ)))
  AND hour < timezone('UTC', date_trunc('day', timezone('UTC', $hi::TIMESTAMPTZ
                                                                 - INTERVAL 1 MICROSECOND)))
             + INTERVAL 1 DAY
GROUP BY ALL;
INSERT INTO rollup_minutes
SELECT minute, environment, sum(sample_weight),
       coalesce(sum(sample_weight) FILTER (WHERE is_error), 0)
FROM _requests GROUP BY ALL;
INSERT INTO rollup_accuracy
SELECT date_trunc('hour', s.start_time), s.environment, s.model,
       coalesce(s.version, 'unknown'), e.evaluation_name,
       count(*), sum(e.score), sum(e.score * e.score),
       count(*) FILTER (WHERE e.score = 0 OR e.score = 1)
FROM evaluations e
JOIN spans s USING (trace_id, span_id)
WHERE s.start_time >= $lo AND s.start_time < $hi AND e.score IS NOT NULL
GROUP BY ALL;
DROP TABLE _requests;
