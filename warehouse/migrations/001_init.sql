-- 001: the traces slice: spans, evaluations, bookkeeping, config and rollups.
CREATE TABLE IF NOT EXISTS _meta (
    key VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

CREATE SEQUENCE IF NOT EXISTS load_ids START 1;

-- One row per input per load (a load may publish several small files at once).
CREATE TABLE IF NOT EXISTS ingest_log (
    load_id BIGINT NOT NULL,
    source VARCHAR NOT NULL,
    uri VARCHAR NOT NULL,
    content_hash VARCHAR,
    byte_offset BIGINT,
    rows BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    quarantined BIGINT NOT NULL,
    skipped VARCHAR,
    started_at TIMESTAMPTZ NOT NULL,
    duration_ms DOUBLE NOT NULL,
    status VARCHAR NOT NULL,
    message VARCHAR
);

CREATE TABLE IF NOT EXISTS quarantine (
    load_id BIGINT NOT NULL,
    source VARCHAR NOT NULL,
    uri VARCHAR NOT NULL,
    location VARCHAR NOT NULL,
    error VARCHAR NOT NULL,
    raw_excerpt VARCHAR,
    quarantined_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS config (
    stored_at TIMESTAMPTZ NOT NULL,
    origin VARCHAR NOT NULL,
    body JSON NOT NULL
);

CREATE TABLE IF NOT EXISTS spans (
    trace_id VARCHAR NOT NULL,
    span_id VARCHAR NOT NULL,
    parent_span_id VARCHAR,
    trace_state VARCHAR,
    service VARCHAR NOT NULL,
    environment VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    version VARCHAR,
    response_model VARCHAR,
    operation VARCHAR,
    provider VARCHAR,
    name VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    is_request BOOLEAN NOT NULL,
    start_time TIMESTAMPTZ NOT NULL,
    end_time TIMESTAMPTZ NOT NULL,
    duration_ms DOUBLE NOT NULL,
    status_code VARCHAR NOT NULL,
    status_message VARCHAR,
    input_tokens BIGINT,
    output_tokens BIGINT,
    ttft_ms DOUBLE,
    sample_weight DOUBLE NOT NULL,
    host VARCHAR,
    resource_attributes JSON,
    attributes JSON,
    load_id BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS evaluations (
    trace_id VARCHAR NOT NULL,
    span_id VARCHAR NOT NULL,
    evaluation_name VARCHAR NOT NULL,
    time TIMESTAMPTZ NOT NULL,
    score DOUBLE,
    score_value DOUBLE,
    score_label VARCHAR,
    explanation VARCHAR,
    response_id VARCHAR,
    origin VARCHAR NOT NULL,
    load_id BIGINT NOT NULL
);

-- Hourly request rollup per (environment, model, version): counts, tokens and the
-- latency sums; the mergeable latency histogram lives in rollup_latency.
CREATE TABLE IF NOT EXISTS rollup_hourly (
    hour TIMESTAMPTZ NOT NULL,
    environment VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    requests DOUBLE NOT NULL,
    requests_raw BIGINT NOT NULL,
    errors DOUBLE NOT NULL,
    input_tokens BIGINT,
    output_tokens BIGINT,
    ttft_ms_sum DOUBLE,
    ttft_n BIGINT,
    tpot_ms_sum DOUBLE,  -- time per output token after the first, summed over requests
    tpot_n BIGINT
);

-- Log-bucketed latency histogram (bucket i covers (gamma^(i-1), gamma^i] ms), mergeable by
-- summing counts; gamma is in _meta('latency_gamma').
CREATE TABLE IF NOT EXISTS rollup_latency (
    hour TIMESTAMPTZ NOT NULL,
    environment VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    bucket INTEGER NOT NULL,
    n DOUBLE NOT NULL
);

-- Requests and errors per environment minute (all models together), for uptime.
CREATE TABLE IF NOT EXISTS rollup_minutes (
    minute TIMESTAMPTZ NOT NULL,
    environment VARCHAR NOT NULL,
    requests DOUBLE NOT NULL,
    errors DOUBLE NOT NULL
);

-- Evaluation scores per hour of the evaluated span, for accuracy with intervals.
CREATE TABLE IF NOT EXISTS rollup_accuracy (
    hour TIMESTAMPTZ NOT NULL,
    environment VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    evaluation_name VARCHAR NOT NULL,
    n BIGINT NOT NULL,
    score_sum DOUBLE NOT NULL,
    score_sumsq DOUBLE NOT NULL,
    n_binary BIGINT NOT NULL
);
