"""GPU telemetry collectors: DCGM expositions, nvidia-smi logs, Prometheus, OTLP metrics, NVML.

Each format is read into `Reading`s spelled in DCGM's names (`readings.py`); one builder
(`samples.py`) turns readings into `gpu_samples` rows, so environment, pool, workload and
MIG rules are applied once, whatever the source.
"""
