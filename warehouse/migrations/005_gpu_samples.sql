-- 005: GPU telemetry. One row per GPU (or MIG instance) per sample, whichever collector
-- read it (DCGM exposition, nvidia-smi log, Prometheus API, OTLP metrics, NVML), and the
-- hourly rollup that GPU-hours, idle capacity and the on-prem cost model read.
-- Units are the sources' own where they agree: utilization in percent (0-100, as DCGM
-- reports it), SM and graphics-engine activity as ratios (0-1), memory in MiB, power in
-- W, the energy counter in mJ (DCGM's TOTAL_ENERGY_CONSUMPTION; a counter since boot).
CREATE TABLE IF NOT EXISTS gpu_samples (
    ts TIMESTAMPTZ NOT NULL,
    environment VARCHAR NOT NULL,
    pool VARCHAR,
    host VARCHAR NOT NULL,
    gpu_uuid VARCHAR NOT NULL,
    gpu_index INTEGER,
    mig_instance VARCHAR NOT NULL,      -- GPU_I_ID; '' for a whole GPU (part of the key)
    mig_profile VARCHAR,                -- GPU_I_PROFILE, e.g. '1g.10gb'
    gpu_share DOUBLE NOT NULL,          -- the share of the GPU this row stands for (1g.10gb = 1/7)
    gpu_model VARCHAR,                  -- the hardware: 'NVIDIA H100 80GB HBM3'
    workload VARCHAR,                   -- what holds the GPU (from pod labels or a host rule); NULL: nothing
    namespace VARCHAR,
    pod VARCHAR,
    container VARCHAR,
    utilization DOUBLE,                 -- percent 0-100; a MIG instance's is GR_ENGINE_ACTIVE x 100
    sm_active DOUBLE,                   -- ratio 0-1 (DCGM_FI_PROF_SM_ACTIVE)
    gr_engine_active DOUBLE,            -- ratio 0-1 (DCGM_FI_PROF_GR_ENGINE_ACTIVE)
    memory_used_mib DOUBLE,
    memory_free_mib DOUBLE,
    power_w DOUBLE,
    energy_mj DOUBLE,                   -- the energy counter since boot, in mJ
    temperature_c DOUBLE,
    source VARCHAR NOT NULL,            -- the collector that read it: dcgm, nvidia-smi, ...
    load_id BIGINT NOT NULL
);

-- One row per hour and GPU (or MIG instance): what pages, `metrics` and the cost model
-- read. `gpu_hours` is the time the samples stand for (each until the next, capped) times
-- `gpu_share`; `state` is the hour's kind: busy (mean utilization at or above the idle
-- threshold), idle-held (below it, a workload mapped) or idle-free.
CREATE TABLE IF NOT EXISTS rollup_gpu_hours (
    hour TIMESTAMPTZ NOT NULL,
    environment VARCHAR NOT NULL,
    pool VARCHAR,
    host VARCHAR NOT NULL,
    gpu_uuid VARCHAR NOT NULL,
    mig_instance VARCHAR NOT NULL,
    gpu_model VARCHAR,
    gpu_share DOUBLE NOT NULL,
    workload VARCHAR,
    samples BIGINT NOT NULL,
    gpu_hours DOUBLE NOT NULL,
    util_mean DOUBLE,
    util_max DOUBLE,
    sm_active_mean DOUBLE,
    memory_used_mib_mean DOUBLE,
    memory_headroom_mib_min DOUBLE,
    power_w_mean DOUBLE,
    energy_wh DOUBLE,
    state VARCHAR NOT NULL
);
