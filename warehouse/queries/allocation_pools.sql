-- What warehouse/allocation.py splits: the rows of allocation_rows.sql (spliced in) summed per pool: (day, environment, cost center, currency, kind) with the pool for modelled rows and the model for direct and unallocated ones; the full and marginal cost in the billing currency and converted as spend.sql converts (per row, at the rate of its charge time; NULL where a row of the pool has no rate), and a modelled pool's idle cost.
WITH charged AS (
{allocation_rows}
),
{rates},
converted AS (
    SELECT c.*, r.rate
    FROM charged AS c ASOF LEFT JOIN rates AS r
      ON c.currency = r.currency AND c.charged_at >= r.since
)
SELECT day, environment, cost_center, currency, kind,
       CASE WHEN kind = 'modelled' THEN pool END AS pool,
       CASE WHEN kind IN ('direct', 'unallocated') THEN model ELSE 'unallocated' END AS model,
       CASE WHEN kind = 'direct' THEN model_how ELSE kind END AS method,
       sum(cost) AS cost,
       sum(marginal) AS marginal_cost,
       CASE WHEN bool_and(rate IS NOT NULL)
            THEN sum(CAST(cost * rate AS DECIMAL(38, 12))) END AS reporting_cost,
       CASE WHEN bool_and(rate IS NOT NULL)
            THEN sum(CAST(marginal * rate AS DECIMAL(38, 12))) END AS reporting_marginal_cost,
       sum(CASE WHEN kind = 'modelled' THEN idle ELSE 0 END) AS idle_cost,
       count(*) AS charges
FROM converted
GROUP BY ALL
ORDER BY ALL
