-- The UTC days among $days (all within [$lo, $hi)) on which the ledger has rows (a row's day is that of its ChargePeriodStart, else its BillingPeriodStart), for warehouse/allocation.py's hook; the range lets DuckDB skip the row groups outside it.
SELECT DISTINCT CAST(timezone('UTC', coalesce(ChargePeriodStart, BillingPeriodStart)) AS DATE) AS day
FROM billing
WHERE ((ChargePeriodStart >= $lo AND ChargePeriodStart < $hi)
       OR (ChargePeriodStart IS NULL AND BillingPeriodStart >= $lo AND BillingPeriodStart < $hi))
  AND list_contains($days, CAST(timezone('UTC', coalesce(ChargePeriodStart, BillingPeriodStart)) AS DATE))
