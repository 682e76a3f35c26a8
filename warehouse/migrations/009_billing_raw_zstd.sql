-- `x_SourceRow` (each source line item as one JSON object, unique per row) is stored with
-- zstd: DuckDB's default analysis tries dictionary and FSST on every row group of it, which
-- on a million-row export cost more than writing the other hundred columns, for a file of
-- about the same size (docs/billing.md, Performance). The column keeps its name, type,
-- values and place (last).
ALTER TABLE billing RENAME COLUMN x_SourceRow TO x_SourceRow_before_009;
ALTER TABLE billing ADD COLUMN x_SourceRow JSON USING COMPRESSION zstd;
UPDATE billing SET x_SourceRow = x_SourceRow_before_009;
ALTER TABLE billing DROP COLUMN x_SourceRow_before_009;
