-- The billing rows charged on the UTC days in $days, one by one, as the allocation sees them: the attribution of billing_attribution.sql (spliced in, over [$lo, $hi)), the kind of split each gets, and its amounts. allocation_pools.sql sums them into pools for cost_allocation; warehouse/focus_split.py splits each for the FOCUS export.
-- kind: `modelled` (an on-prem/edge row of the cost model, split by its pool's GPU time),
-- `direct` (a rule named the model), `shared` (an environment but no model: split by the
-- allocation key) or `unallocated` (no environment). idle: a modelled row's idle-free and
-- unmonitored parts. marginal: the marginal cost (a modelled row's energy; a cloud row's
-- cost, but nothing for an unused commitment, which is paid whatever runs). provider_split:
-- the row already carries a provider's split (AllocatedMethodId), an allocated charge.
WITH attributed AS (
{billing_attribution}
)
SELECT a.row_id,
       CAST(timezone('UTC', coalesce(a.ChargePeriodStart, a.BillingPeriodStart)) AS DATE)
           AS day,
       a.environment, a.cost_center,
       CASE WHEN a.environment = 'unallocated' THEN 'unallocated'
            WHEN a.x_Modelled THEN 'modelled'
            WHEN a.model <> 'unallocated' THEN 'direct'
            ELSE 'shared' END AS kind,
       b.x_Pool AS pool, a.model, a.model_how,
       coalesce(b.x_IdleFreeCost, 0) + coalesce(b.x_UnmonitoredCost, 0) AS idle,
       a.BillingCurrency AS currency,
       coalesce(a.ChargePeriodStart, a.BillingPeriodStart) AS charged_at,
       coalesce(a.EffectiveCost, 0) AS cost,
       CASE WHEN a.x_Modelled THEN coalesce(b.x_EnergyCost, 0)
            WHEN b.CommitmentDiscountStatus = 'Unused' THEN 0
            ELSE coalesce(a.EffectiveCost, 0) END AS marginal,
       b.AllocatedMethodId IS NOT NULL AS provider_split
FROM attributed AS a
JOIN billing AS b ON b.rowid = a.row_id
WHERE list_contains($days,
                    CAST(timezone('UTC', coalesce(a.ChargePeriodStart, a.BillingPeriodStart)) AS DATE))
