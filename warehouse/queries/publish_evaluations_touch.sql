-- The start times of the spans this load's evaluations score, however old (a human review weeks on): first within two days of the batch, then, only for those not found there, anywhere (an empty build side makes that second scan stop at once).
CREATE OR REPLACE TEMP TABLE _evaluated AS
SELECT e.trace_id, e.span_id, s.start_time
FROM (SELECT DISTINCT trace_id, span_id FROM _new_evaluations) e
LEFT JOIN (
    SELECT trace_id, span_id, start_time FROM spans
    WHERE start_time BETWEEN $lo - INTERVAL 2 DAY AND $hi + INTERVAL 1 HOUR
) s USING (trace_id, span_id);
SELECT start_time FROM _evaluated WHERE start_time IS NOT NULL
UNION ALL
SELECT s.start_time FROM spans s
SEMI JOIN (SELECT trace_id, span_id FROM _evaluated WHERE start_time IS NULL) e
    USING (trace_id, span_id)
