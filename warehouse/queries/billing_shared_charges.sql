-- Per file of the loads $load_ids, in units written from more than one file: its distinct charges (a charge: the line item's columns that say what was charged, not how much) and how many of them another file of the same unit holds too. Parts of one export run never share a charge; two runs of it (an export and its restatement) share every charge the restatement kept, and the ingest loads the rows that are byte for byte the same once, so what the later run adds is mostly charges the earlier one has.
WITH loaded AS (
    SELECT * FROM billing WHERE list_contains($load_ids, load_id) AND NOT x_Modelled
),
units AS (  -- first, so a delivery of one file per unit hashes nothing
    SELECT x_ReplaceUnit AS unit FROM loaded GROUP BY 1 HAVING count(DISTINCT x_SourceUri) > 1
),
items AS (
    SELECT x_ReplaceUnit AS unit, x_SourceUri AS uri,
           hash(ChargePeriodStart, ChargePeriodEnd, SubAccountId, RegionId, ServiceName,
                ResourceId, ResourceName, SkuId, SkuPriceId, PricingCategory, PricingUnit,
                ConsumedUnit, ChargeCategory, ChargeClass, ChargeDescription, ChargeFrequency,
                CommitmentDiscountId, CommitmentDiscountStatus, Tags::VARCHAR) AS charge
    FROM loaded SEMI JOIN units ON loaded.x_ReplaceUnit = units.unit
),
charges AS (
    SELECT unit, charge, count(DISTINCT uri) AS in_files
    FROM items
    GROUP BY ALL
)
SELECT i.unit, i.uri, count(DISTINCT i.charge) AS charges,
       count(DISTINCT i.charge) FILTER (WHERE c.in_files > 1) AS shared
FROM items i JOIN charges c USING (unit, charge)
GROUP BY ALL
ORDER BY i.unit, i.uri
