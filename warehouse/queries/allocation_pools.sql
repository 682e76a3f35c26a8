-- What warehouse/allocation.py splits: the billing rows charged on the UTC days in $days, attributed by billing_attribution.sql (spliced in, over [$lo, $hi)) and summed per pool: (day, environment, cost center, currency, kind) with the pool for modelled rows and the model for direct and unallocated ones.
-- kind: `modelled` (an on-prem/edge row of the cost model, split by its pool's GPU time),
-- `direct` (a rule named the model), `shared` (an environment but no model: split by the
-- allocation key) or `unallocated` (no environment). Amounts: the full cost (EffectiveCost)
-- and the marginal cost (a modelled row's energy; a cloud row's cost, but nothing for an
-- unused commitment, which is paid whatever runs), in the billing currency and converted
-- as spend.sql converts (per row, at the rate of its charge time; NULL where a row of the
-- pool has no rate). idle_cost: a modelled row's idle-free and unmonitored parts.
WITH attributed AS (
{billing_attribution}
),
{rates},
charged AS (
    SELECT a.*, CAST(timezone('UTC', coalesce(a.ChargePeriodStart, a.BillingPeriodStart)) AS DATE)
               AS day,
           coalesce(a.ChargePeriodStart, a.BillingPeriodStart) AS charged_at,
           b.x_Pool AS pool,
           CASE WHEN a.x_Modelled THEN coalesce(b.x_EnergyCost, 0)
                WHEN b.CommitmentDiscountStatus = 'Unused' THEN 0
                ELSE coalesce(a.EffectiveCost, 0) END AS marginal,
           coalesce(b.x_IdleFreeCost, 0) + coalesce(b.x_UnmonitoredCost, 0) AS idle
    FROM attributed AS a
    JOIN billing AS b ON b.rowid = a.row_id
),
converted AS (
    SELECT c.*, r.rate
    FROM charged AS c ASOF LEFT JOIN rates AS r
      ON c.BillingCurrency = r.currency AND c.charged_at >= r.since
    WHERE list_contains($days, c.day)
),
kinds AS (
    SELECT *,
           CASE WHEN environment = 'unallocated' THEN 'unallocated'
                WHEN x_Modelled THEN 'modelled'
                WHEN model <> 'unallocated' THEN 'direct'
                ELSE 'shared' END AS kind
    FROM converted
)
SELECT day, environment, cost_center, BillingCurrency AS currency, kind,
       CASE WHEN kind = 'modelled' THEN pool END AS pool,
       CASE WHEN kind IN ('direct', 'unallocated') THEN model ELSE 'unallocated' END AS model,
       CASE WHEN kind = 'direct' THEN model_how ELSE kind END AS method,
       sum(coalesce(EffectiveCost, 0)) AS cost,
       sum(marginal) AS marginal_cost,
       CASE WHEN bool_and(rate IS NOT NULL)
            THEN sum(CAST(coalesce(EffectiveCost, 0) * rate AS DECIMAL(38, 12))) END
           AS reporting_cost,
       CASE WHEN bool_and(rate IS NOT NULL)
            THEN sum(CAST(marginal * rate AS DECIMAL(38, 12))) END AS reporting_marginal_cost,
       sum(CASE WHEN kind = 'modelled' THEN idle ELSE 0 END) AS idle_cost,
       count(*) AS charges
FROM kinds
GROUP BY ALL
ORDER BY ALL
