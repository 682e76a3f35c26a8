-- The biggest unmatched resources: the rows of billing_attribution.sql (spliced in as `attributed`) that no rule gave anything ($dimension ''), or nothing gave $dimension, per resource, provider, service and currency, largest EffectiveCost first.
WITH attributed AS (
{billing_attribution}
)
SELECT ResourceId, ResourceName, ProviderName, ServiceName, BillingCurrency,
       sum(EffectiveCost) AS EffectiveCost, count(*) AS rows
FROM attributed
WHERE CASE $dimension
          WHEN 'environment' THEN environment_how = 'unallocated'
          WHEN 'model' THEN model_how = 'unallocated'
          WHEN 'cost_center' THEN cost_center_how = 'unallocated'
          ELSE how = 'unallocated' END
GROUP BY ALL
ORDER BY EffectiveCost DESC NULLS LAST, rows DESC, ResourceId NULLS LAST, ResourceName NULLS LAST,
         ProviderName, ServiceName NULLS LAST, BillingCurrency NULLS LAST
LIMIT $limit
