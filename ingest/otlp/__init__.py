"""OTLP traces and logs (JSON or protobuf) into rows for `spans` and `evaluations`.

The mapping follows DESIGN.md: environment from the config's resolver rules, then
`deployment.environment.name`, then `deployment.environment`; the model from
`gen_ai.request.model` or the attribute the config names for the service (the request
span's model is completed from its descendants when the batch is published). Prompt and
completion content is dropped or redacted by the deny list, every value is capped and so
is each span's total size, and records dated too far past the time of ingest are refused.
A bad span or log record becomes a quarantine entry and never stops its neighbours.

The package's seams: `mapping` (the config's decisions), `fields` (one field's decoding),
`json_walk` and `proto_walk` (one request's structure), `rows` (schemas and row
building), `signal` (which signal a protobuf payload is), `batch` (the entry points).
"""

from ingest.otlp.batch import METRICS_SKIPPED, Batch
from ingest.otlp.fields import KINDS, MAX_NS, MIN_NS, STATUSES, BadRecord
from ingest.otlp.mapping import Mapping
from ingest.otlp.rows import EVALUATION_EVENT, EVALUATION_SCHEMA, SPAN_SCHEMA, Counts
from ingest.otlp.signal import Signal, detect_signal

__all__ = [
    "EVALUATION_EVENT",
    "EVALUATION_SCHEMA",
    "KINDS",
    "MAX_NS",
    "METRICS_SKIPPED",
    "MIN_NS",
    "SPAN_SCHEMA",
    "STATUSES",
    "BadRecord",
    "Batch",
    "Counts",
    "Mapping",
    "Signal",
    "detect_signal",
]
