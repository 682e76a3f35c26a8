-- The UTC days among $days on which the ledger has rows (a row's day is that of its ChargePeriodStart, else its BillingPeriodStart), for warehouse/allocation.py's hook.
SELECT DISTINCT CAST(timezone('UTC', coalesce(ChargePeriodStart, BillingPeriodStart)) AS DATE) AS day
FROM billing
WHERE list_contains($days, CAST(timezone('UTC', coalesce(ChargePeriodStart, BillingPeriodStart)) AS DATE))
