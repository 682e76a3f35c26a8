-- Stage the new evaluation results of a load, deduplicated by (trace, span, evaluation name, time).
CREATE OR REPLACE TEMP TABLE _fresh_evaluations AS
WITH batch AS (
    SELECT * FROM staged_evaluations
    QUALIFY row_number() OVER (
        PARTITION BY trace_id, span_id, evaluation_name, time ORDER BY origin
    ) = 1
)
SELECT b.trace_id, b.span_id, b.evaluation_name, b.time, b.score, b.score_value,
       b.score_label, b.explanation, b.response_id, b.origin, $load_id AS load_id, b._file
FROM batch b
ANTI JOIN (
    SELECT trace_id, span_id, evaluation_name, time FROM evaluations
    WHERE time BETWEEN $lo AND $hi
) e USING (trace_id, span_id, evaluation_name, time)
