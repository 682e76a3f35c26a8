-- Per environment and model over the UTC days whose midnight is in [$start, $end): the allocated cost on both bases (reporting currency) and the requests served, for the hybrid counterfactual (warehouse/allocation_reads.py); models only, not what environments keep or no rule placed.
WITH cost AS (
    SELECT environment, model, sum(reporting_cost)::DOUBLE AS full_cost,
           sum(reporting_marginal_cost)::DOUBLE AS marginal_cost
    FROM cost_allocation
    WHERE timezone('UTC', day::TIMESTAMP) >= $start AND timezone('UTC', day::TIMESTAMP) < $end
      AND model <> 'unallocated' AND environment <> 'unallocated'
    GROUP BY ALL
),
work AS (
    SELECT environment, model, sum(requests) AS requests
    FROM rollup_hourly
    WHERE hour >= $start AND hour < $end
    GROUP BY ALL
)
SELECT environment, model, coalesce(full_cost, 0) AS full_cost,
       coalesce(marginal_cost, 0) AS marginal_cost, coalesce(requests, 0) AS requests
FROM cost FULL JOIN work USING (environment, model)
ORDER BY environment, model
