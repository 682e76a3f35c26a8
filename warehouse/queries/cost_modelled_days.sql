-- The UTC days the cost model has already written for each of $environments (what a refresh need not fill again).
SELECT DISTINCT x_Environment AS environment,
       CAST(timezone('UTC', ChargePeriodStart) AS DATE) AS day
FROM billing
WHERE x_Modelled AND list_contains($environments, x_Environment)
