-- Split the measures of Azure's actual and amortized cost details of one provider, billing account and period once both are loaded: BilledCost stays on the actual rows, EffectiveCost, ListCost, ContractedCost and the quantities on the amortized rows, each zeroed on the other, so a sum over the table counts every measure once. Reads the new rows; returns the changed rows' times.
UPDATE billing AS t SET
    BilledCost = CASE WHEN p.dataset = 'amortized' THEN 0 ELSE t.BilledCost END,
    EffectiveCost = CASE WHEN p.dataset = 'actual' THEN 0 ELSE t.EffectiveCost END,
    ListCost = CASE WHEN p.dataset = 'actual' THEN 0 ELSE t.ListCost END,
    ContractedCost = CASE WHEN p.dataset = 'actual' THEN 0 ELSE t.ContractedCost END,
    PricingQuantity = CASE WHEN p.dataset = 'actual' AND t.PricingQuantity IS NOT NULL THEN 0
                           ELSE t.PricingQuantity END,
    ConsumedQuantity = CASE WHEN p.dataset = 'actual' AND t.ConsumedQuantity IS NOT NULL THEN 0
                            ELSE t.ConsumedQuantity END
FROM (
    WITH families AS (
        SELECT DISTINCT regexp_extract(x_ReplaceUnit, '^(.*)/[^/]*$', 1) AS family
        FROM _new_billing
        WHERE x_ReplaceUnit LIKE '%/actual' OR x_ReplaceUnit LIKE '%/amortized'
    ), units AS (
        SELECT f.family, f.family || '/' || d.dataset AS unit, d.dataset
        FROM families AS f, (VALUES ('actual'), ('amortized')) AS d (dataset)
    ), present AS (
        SELECT family FROM units
        WHERE unit IN (SELECT DISTINCT x_ReplaceUnit FROM billing)
        GROUP BY family HAVING count(*) = 2
    )
    SELECT unit, dataset FROM units WHERE family IN (SELECT family FROM present)
) AS p
WHERE t.x_ReplaceUnit = p.unit
  AND CASE WHEN p.dataset = 'amortized' THEN t.BilledCost <> 0
           ELSE coalesce(t.EffectiveCost <> 0 OR t.ListCost <> 0 OR t.ContractedCost <> 0
                         OR t.PricingQuantity <> 0 OR t.ConsumedQuantity <> 0, false) END
RETURNING t.ChargePeriodStart
