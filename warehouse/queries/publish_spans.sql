-- Stage the new spans of a load: drop spans already in the warehouse (anti-join in the batch's time range), complete each request's model from its service's spans, mark one request per (trace, service). Spans of the same traces from earlier loads (within an hour) count too: a trace's spans often arrive in several loads, and an earlier request loses to an earlier-starting entry span of this load (publish_span_demote.sql). Only narrow key columns are materialized; the wide rows (attributes JSON) are read once, by the insert from the view _fresh_spans.
CREATE OR REPLACE TEMP TABLE _new_keys AS
SELECT b.trace_id, b.span_id, b.service, b.kind, b.parent_span_id, b.start_time, b.own_model,
       b._file
FROM _batch_spans b
ANTI JOIN (
    SELECT trace_id, span_id FROM spans WHERE start_time BETWEEN $lo AND $hi
) s USING (trace_id, span_id);
CREATE OR REPLACE TEMP TABLE _earlier_spans AS
SELECT s.trace_id, s.span_id, s.service, s.model, s.is_request, s.start_time FROM spans s
SEMI JOIN (SELECT DISTINCT trace_id, service FROM _new_keys) f USING (trace_id, service)
WHERE s.start_time BETWEEN $lo - INTERVAL 1 HOUR AND $hi + INTERVAL 1 HOUR
  AND (s.is_request OR s.model <> s.service);
CREATE OR REPLACE TEMP TABLE _span_entries AS
SELECT trace_id, span_id, fresh,
       row_number() OVER (PARTITION BY trace_id, service ORDER BY start_time, span_id) = 1
           AS first_entry
FROM (
    SELECT trace_id, service, span_id, start_time, true AS fresh FROM _new_keys
    WHERE kind IN ('SERVER', 'CONSUMER') OR parent_span_id IS NULL
    UNION ALL
    SELECT trace_id, service, span_id, start_time, false FROM _earlier_spans WHERE is_request
);
CREATE OR REPLACE TEMP TABLE _new_spans AS
WITH service_model AS (
    SELECT trace_id, service, min(model) AS model
    FROM (
        SELECT trace_id, service, own_model AS model FROM _new_keys WHERE own_model IS NOT NULL
        UNION ALL
        SELECT trace_id, service, model FROM _earlier_spans WHERE model <> service
    )
    GROUP BY ALL
)
SELECT k.trace_id, k.span_id, k.service, k.start_time, k._file,
       coalesce(k.own_model, m.model, k.service) AS model,
       coalesce(e.first_entry, false) AS is_request
FROM _new_keys k
LEFT JOIN service_model m USING (trace_id, service)
LEFT JOIN (SELECT trace_id, span_id, first_entry FROM _span_entries WHERE fresh) e
    USING (trace_id, span_id);
DROP TABLE _new_keys;
CREATE OR REPLACE TEMP VIEW _fresh_spans AS
SELECT f.trace_id, f.span_id, f.parent_span_id, f.trace_state, f.service, f.environment,
       n.model, f.version, f.response_model, f.operation, f.provider, f.name, f.kind,
       n.is_request, f.start_time, f.end_time, f.duration_ms, f.status_code, f.status_message,
       f.input_tokens, f.output_tokens, f.ttft_ms, f.sample_weight, f.host,
       f.resource_attributes::JSON AS resource_attributes, f.attributes::JSON AS attributes,
       f.cache_read_input_tokens, f.cache_creation_input_tokens, f.reasoning_output_tokens,
       f._file
FROM _batch_spans f
JOIN _new_spans n USING (trace_id, span_id)
