-- Spend per group ({columns}) in the reporting currency: each line item's {measure} times the rate of its BillingCurrency on its charge day (the latest `[[billing.rates]]` entry on or before it; the reporting currency's own rate is 1). A line item without a rate keeps a NULL rate, and `money.spend` refuses the read naming the currency, so no cost is ever silently dropped or left unconverted. A day is provisional while its end plus the billing lag is after $now. The ledger read is `billing`, or its rows with their attributed environment, model and cost center (billing_attribution.sql as a subquery) when a group needs them; the placeholders are allow-listed by money.py.
WITH {rates},
items AS (
    SELECT *, {measure} AS amount,
           date_trunc('day', timezone('UTC', ChargePeriodStart)) AS charge_day
    FROM {ledger}
    WHERE ChargePeriodStart >= $start AND ChargePeriodStart < $end
),
converted AS (
    SELECT i.*, r.rate
    FROM items i ASOF LEFT JOIN rates r
      ON i.BillingCurrency = r.currency AND i.ChargePeriodStart >= r.since
)
SELECT {columns},
       sum(CAST(amount * rate AS DECIMAL(38, 12))) AS cost,
       count(*) AS line_items,
       list(DISTINCT BillingCurrency ORDER BY BillingCurrency) AS billed_in,
       bool_or(timezone('UTC', charge_day) + INTERVAL 1 DAY + to_hours($lag_hours::BIGINT) > $now)
           AS provisional,
       count(*) FILTER (WHERE rate IS NULL) AS unconverted,
       min(ChargePeriodStart) FILTER (WHERE rate IS NULL) AS unconverted_from,
       list(DISTINCT BillingCurrency) FILTER (WHERE rate IS NULL) AS unconverted_currencies
FROM converted
GROUP BY ALL
ORDER BY ALL
