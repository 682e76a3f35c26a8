-- Complete the model of spans from earlier loads (within an hour) whose (trace, service) had no model yet (model = service) from this load's spans: a request span often arrives in an earlier load than its GenAI child. Returns their start times, so their rollups are refreshed.
UPDATE spans AS s SET model = m.model
FROM (
    SELECT trace_id, service, min(model) AS model FROM _new_spans
    WHERE model <> service GROUP BY ALL
) AS m
WHERE s.trace_id = m.trace_id AND s.service = m.service AND s.model = s.service
  AND s.load_id <> $load_id
  AND s.start_time BETWEEN $lo - INTERVAL 1 HOUR AND $hi + INTERVAL 1 HOUR
RETURNING s.start_time
