-- Monitored GPU-hours per environment and pool over whole hours [$start, $end), for the unmonitored rule (warehouse/gpu_definitions.py) against each configured pool's capacity.
SELECT environment, pool, sum(gpu_hours) AS monitored_gpu_hours
FROM rollup_gpu_hours
WHERE hour >= $start AND hour < $end AND pool IS NOT NULL
GROUP BY ALL
