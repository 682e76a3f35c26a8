-- 012: every workload that holds a time-sliced GPU. Kubernetes time-slicing gives one GPU
-- to several pods, and dcgm-exporter writes its series once per pod with the same values:
-- `workload` stays the first one read, and `workloads` lists them all (sorted, distinct)
-- where there are two or more, so the allocation can split the GPU's hours between them.
-- NULL where one workload, or none, holds the GPU (every row written before this one).
ALTER TABLE gpu_samples ADD COLUMN IF NOT EXISTS workloads VARCHAR[];
ALTER TABLE rollup_gpu_hours ADD COLUMN IF NOT EXISTS workloads VARCHAR[];

-- The GPU-hours each workload held: a time-sliced GPU's hour in equal parts to its
-- workloads (the pods take turns, and DCGM measures the GPU, not the pod), any other
-- hour whole to its workload (NULL: nothing mapped). The allocation, the unit costs and
-- the attribution's GPU-host rule read this, so they split a shared GPU alike.
CREATE OR REPLACE MACRO workload_gpu_hours() AS TABLE
SELECT hour, environment, pool, host, host_id, gpu_uuid, mig_instance, state,
       unnest(coalesce(workloads, [workload])) AS workload,
       gpu_hours / len(coalesce(workloads, [workload])) AS gpu_hours
FROM rollup_gpu_hours;
