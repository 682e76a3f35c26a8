-- Requests, errors and tokens per group from the hourly rollup ({group} is an allow-listed column list).
SELECT {group},
       sum(requests) AS requests, sum(errors) AS errors,
       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
       sum(cached_input_tokens) AS cached_input_tokens,
       sum(reasoning_output_tokens) AS reasoning_output_tokens,
       sum(ttft_ms_sum) AS ttft_ms_sum, sum(ttft_n) AS ttft_n
FROM rollup_hourly
WHERE ($start::TIMESTAMPTZ IS NULL OR hour >= $start)
  AND ($end::TIMESTAMPTZ IS NULL OR hour < $end)
  AND (len($environments) = 0 OR list_contains($environments, environment))
  AND (len($models) = 0 OR list_contains($models, model))
GROUP BY ALL
