-- Every environment and model the warehouse has figures for, at any time: `hybridlens metrics` tells a --environment or --model that names none of them (a typo) apart from a quiet range.
SELECT 'environment' AS kind, environment AS name FROM rollup_hourly
UNION SELECT 'model', model FROM rollup_hourly
UNION SELECT 'environment', environment FROM rollup_gpu_hours
UNION SELECT 'environment', environment FROM cost_allocation
UNION SELECT 'model', model FROM cost_allocation
