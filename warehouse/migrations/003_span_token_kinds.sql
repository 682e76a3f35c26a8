-- 003: token counts that are billed apart from plain input/output tokens: prompt-cache reads and writes, reasoning. Added last, so `publish_spans.sql` lists them after load_id.
ALTER TABLE spans ADD COLUMN IF NOT EXISTS cache_read_input_tokens BIGINT;
ALTER TABLE spans ADD COLUMN IF NOT EXISTS cache_creation_input_tokens BIGINT;
ALTER TABLE spans ADD COLUMN IF NOT EXISTS reasoning_output_tokens BIGINT;
