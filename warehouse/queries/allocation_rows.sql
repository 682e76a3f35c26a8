-- The billing rows charged on the UTC days in $days, one by one, as warehouse/focus_split.py splits each to models for the FOCUS export: the attribution of billing_attribution.sql (spliced in, over [$lo, $hi)) and the kind and pool allocation_pools.sql sums the row under, with its idle-free and unmonitored cost.
-- kind, as in allocation_pools.sql: `modelled`, `direct`, `shared` or `unallocated`. A row
-- that already carries a provider's split (AllocatedMethodId) is left out: it is an
-- allocated charge, not an origin charge, and is exported as it came.
WITH attributed AS (
{billing_attribution}
),
charged AS (
    SELECT a.row_id, a.environment, a.model, a.cost_center, a.model_how, a.x_Modelled,
           CAST(timezone('UTC', coalesce(a.ChargePeriodStart, a.BillingPeriodStart)) AS DATE)
               AS day,
           b.x_Pool AS pool,
           coalesce(b.x_IdleFreeCost, 0) + coalesce(b.x_UnmonitoredCost, 0) AS idle
    FROM attributed AS a
    JOIN billing AS b ON b.rowid = a.row_id
    WHERE b.AllocatedMethodId IS NULL
)
SELECT row_id, day, environment, cost_center,
       CASE WHEN environment = 'unallocated' THEN 'unallocated'
            WHEN x_Modelled THEN 'modelled'
            WHEN model <> 'unallocated' THEN 'direct'
            ELSE 'shared' END AS kind,
       pool, model, model_how, idle
FROM charged
WHERE list_contains($days, day)
ORDER BY row_id
