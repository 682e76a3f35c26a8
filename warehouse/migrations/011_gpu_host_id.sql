-- 011: the cloud's own id of a GPU's host, where the source names it (OpenTelemetry's
-- `host.id`, Prometheus' `host_id` or `instance_id`): an EC2 instance's `i-...`, which is
-- the bill's ResourceId while the host's name is `ip-10-0-1-23.ec2.internal`, so the
-- attribution finds the GPU host behind a cloud line item by either. Added last, so
-- refresh_gpu_hours.sql lists it after `state`; NULL where the source does not say.
ALTER TABLE gpu_samples ADD COLUMN IF NOT EXISTS host_id VARCHAR;
ALTER TABLE rollup_gpu_hours ADD COLUMN IF NOT EXISTS host_id VARCHAR;
