-- The UTC days that the ledger has rows on and cost_allocation has none for, or the other way round: what warehouse/allocation.py rebuilds beside the days a publish touched.
WITH ledger AS (
    SELECT DISTINCT CAST(timezone('UTC', coalesce(ChargePeriodStart, BillingPeriodStart)) AS DATE)
        AS day
    FROM billing
    WHERE coalesce(ChargePeriodStart, BillingPeriodStart) IS NOT NULL
),
allocated AS (SELECT DISTINCT day FROM cost_allocation)
(SELECT day FROM ledger EXCEPT SELECT day FROM allocated)
UNION ALL
(SELECT day FROM allocated EXCEPT SELECT day FROM ledger)
