-- The distinct ResourceIds of the billing rows charged in [$lo, $hi), for matching [[attribution.resources]] patterns once per resource.
SELECT DISTINCT ResourceId
FROM billing
WHERE ResourceId IS NOT NULL
  AND coalesce(ChargePeriodStart, BillingPeriodStart) >= $lo
  AND coalesce(ChargePeriodStart, BillingPeriodStart) < $hi
ORDER BY ResourceId
