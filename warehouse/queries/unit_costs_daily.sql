-- Unit costs per UTC day, environment and model over [$start, $end): the allocated cost of metrics_cost.sql (spliced in, grouped by day, environment and model: reporting currency; full, or marginal with $marginal) beside the requests, tokens, GPU-hours held (busy or idle-held, by the model's workload) and accuracy (the evaluation each model's config names, 'accuracy' by default) of the same day, and the ratios; only rows that cost something.
WITH cost AS (
{metrics_cost}
),
work AS (
    SELECT CAST(timezone('UTC', hour) AS DATE) AS day, environment, model,
           sum(requests) AS requests, sum(input_tokens) AS input_tokens,
           sum(output_tokens) AS output_tokens, sum(cached_input_tokens) AS cached_input_tokens,
           sum(reasoning_output_tokens) AS reasoning_output_tokens
    FROM rollup_hourly
    WHERE hour >= $start AND hour < $end
    GROUP BY ALL
),
gpu AS (
    SELECT CAST(timezone('UTC', hour) AS DATE) AS day, environment, workload AS model,
           sum(gpu_hours) AS gpu_hours
    FROM workload_gpu_hours()
    WHERE hour >= $start AND hour < $end AND workload IS NOT NULL
      AND state IN ('busy', 'idle-held')
    GROUP BY ALL
),
named AS (
    SELECT unnest($eval_models) AS model, unnest($eval_names) AS evaluation_name
),
scores AS (
    SELECT CAST(timezone('UTC', a.hour) AS DATE) AS day, a.environment, a.model,
           sum(a.score_sum) / sum(a.n) AS accuracy
    FROM rollup_accuracy AS a
    LEFT JOIN named USING (model)
    WHERE a.evaluation_name = coalesce(named.evaluation_name, 'accuracy')
      AND a.hour >= $start AND a.hour < $end
    GROUP BY ALL
)
SELECT day, environment, model, cost::DOUBLE AS cost,
       coalesce(requests, 0) AS requests, input_tokens, output_tokens, cached_input_tokens,
       reasoning_output_tokens, gpu_hours, accuracy,
       cost / nullif(requests, 0) * 1000 AS cost_per_1k_requests,
       cost / nullif(coalesce(input_tokens, 0) + coalesce(output_tokens, 0), 0) * 1000000
           AS cost_per_1m_tokens,
       cost / nullif(gpu_hours, 0) AS cost_per_gpu_hour,
       cost / nullif(requests * accuracy, 0) AS cost_per_correct_answer,
       unconverted, unconverted_currencies, unconverted_from
FROM cost
LEFT JOIN work USING (day, environment, model)
LEFT JOIN gpu USING (day, environment, model)
LEFT JOIN scores USING (day, environment, model)
ORDER BY day, environment, model
