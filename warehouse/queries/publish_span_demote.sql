-- Demote the requests of earlier loads that this load's entry spans supersede: a nested SERVER span of a service loaded before the service's outer entry span stops counting when the outer one arrives. Returns their start times, so their rollups are refreshed.
UPDATE spans AS s SET is_request = false
FROM (SELECT trace_id, span_id FROM _span_entries WHERE NOT fresh AND NOT first_entry) AS d
WHERE s.trace_id = d.trace_id AND s.span_id = d.span_id AND s.is_request
  AND s.load_id <> $load_id
  AND s.start_time BETWEEN $lo - INTERVAL 1 HOUR AND $hi + INTERVAL 1 HOUR
RETURNING s.start_time
