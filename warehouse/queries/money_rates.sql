-- The `rates` common table expression of the queries that convert money (spliced in as {rates} by warehouse/money.py): $rates, the configured [[billing.rates]], and the reporting currency $reporting at rate 1 since always; read with an ASOF join on the charge time.
rates AS (
    SELECT r.currency AS currency, r.since::TIMESTAMPTZ AS since, r.rate::DECIMAL(24, 12) AS rate
    FROM (SELECT unnest($rates) AS r)
    UNION ALL
    SELECT $reporting, '1900-01-01'::TIMESTAMPTZ, 1::DECIMAL(24, 12)
)
