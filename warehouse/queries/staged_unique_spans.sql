-- The staged spans with in-batch duplicates of (trace_id, span_id) removed (run only when there are some).
CREATE OR REPLACE TEMP TABLE staged_unique_spans AS
SELECT * FROM staged_spans
QUALIFY row_number() OVER (PARTITION BY trace_id, span_id ORDER BY start_time) = 1
