-- Evaluation score sums per group, counting only the evaluation each model's config names ('accuracy' by default).
WITH named AS (
    SELECT unnest($eval_models) AS model, unnest($eval_names) AS evaluation_name
)
SELECT {group},
       sum(a.n) AS accuracy_n, sum(a.score_sum) AS score_sum,
       sum(a.score_sumsq) AS score_sumsq, sum(a.n_binary) AS n_binary
FROM rollup_accuracy a
LEFT JOIN named USING (model)
WHERE a.evaluation_name = coalesce(named.evaluation_name, 'accuracy')
  AND ($start::TIMESTAMPTZ IS NULL OR a.hour >= $start)
  AND ($end::TIMESTAMPTZ IS NULL OR a.hour < $end)
  AND (len($environments) = 0 OR list_contains($environments, a.environment))
  AND (len($models) = 0 OR list_contains($models, a.model))
GROUP BY ALL
