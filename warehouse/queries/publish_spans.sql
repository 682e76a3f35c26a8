-- Stage the new spans of a load: drop spans already in the warehouse (anti-join in the batch's time range), complete each request's model from its service's spans, mark one request per (trace, service). Spans of the same traces from earlier loads (within an hour) count too: a trace's spans often arrive in several loads.
CREATE OR REPLACE TEMP TABLE _fresh_spans AS
WITH fresh AS (
    SELECT b.* FROM staged_unique_spans b
    ANTI JOIN (
        SELECT trace_id, span_id FROM spans WHERE start_time BETWEEN $lo AND $hi
    ) s USING (trace_id, span_id)
),
earlier AS (
    SELECT s.trace_id, s.service, s.model, s.is_request FROM spans s
    SEMI JOIN fresh f USING (trace_id, service)
    WHERE s.start_time BETWEEN $lo - INTERVAL 1 HOUR AND $hi + INTERVAL 1 HOUR
      AND (s.is_request OR s.model <> s.service)
),
service_model AS (
    SELECT trace_id, service, min(model) AS model
    FROM (
        SELECT trace_id, service, own_model AS model FROM fresh WHERE own_model IS NOT NULL
        UNION ALL
        SELECT trace_id, service, model FROM earlier WHERE model <> service
    )
    GROUP BY ALL
),
entry AS (
    SELECT trace_id, span_id,
           row_number() OVER (PARTITION BY trace_id, service ORDER BY start_time, span_id) = 1
               AS first_entry
    FROM fresh
    ANTI JOIN (SELECT DISTINCT trace_id, service FROM earlier WHERE is_request) r
        USING (trace_id, service)
    WHERE kind IN ('SERVER', 'CONSUMER') OR parent_span_id IS NULL
)
SELECT f.trace_id, f.span_id, f.parent_span_id, f.trace_state, f.service, f.environment,
       coalesce(f.own_model, m.model, f.service) AS model,
       f.version, f.response_model, f.operation, f.provider, f.name, f.kind,
       coalesce(e.first_entry, false) AS is_request,
       f.start_time, f.end_time, f.duration_ms, f.status_code, f.status_message,
       f.input_tokens, f.output_tokens, f.ttft_ms, f.sample_weight, f.host,
       f.resource_attributes::JSON AS resource_attributes, f.attributes::JSON AS attributes,
       $load_id AS load_id,
       f.cache_read_input_tokens, f.cache_creation_input_tokens, f.reasoning_output_tokens,
       f._file
FROM fresh f
LEFT JOIN service_model m USING (trace_id, service)
LEFT JOIN entry e USING (trace_id, span_id)
