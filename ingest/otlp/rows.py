"""The staged rows: the `spans` and `evaluations` schemas and how one row is built.

Rows are built whole before anything is appended: a span whose fields, events or links
are bad raises before its row exists, so a record is either staged or quarantined,
never both, and the accepted/ignored/rejected counts stay exact.

SPAN_SCHEMA's order is the staging order the publish SQL inserts positionally: columns
added by a migration (`ALTER TABLE spans ADD COLUMN`) come last, after `attributes`.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
import pyarrow as pa

from ingest.errors import RecordError
from ingest.otlp.fields import MAX_COUNT, count, seconds_to_ms, short, tracestate_weight
from ingest.otlp.mapping import MAPPED, Mapping, ResourceContext

EVALUATION_EVENT = "gen_ai.evaluation.result"
PASS_LABELS = frozenset({"pass", "passed", "true", "correct", "yes", "1", "success"})
FAIL_LABELS = frozenset({"fail", "failed", "false", "incorrect", "no", "0", "failure"})
_PROVIDER_ALIASES = {"az.ai.openai": "azure.ai.openai", "az.ai.inference": "azure.ai.inference"}
SPAN_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("parent_span_id", pa.string()),
        ("trace_state", pa.string()),
        ("service", pa.string()),
        ("environment", pa.string()),
        ("own_model", pa.string()),
        ("version", pa.string()),
        ("response_model", pa.string()),
        ("operation", pa.string()),
        ("provider", pa.string()),
        ("name", pa.string()),
        ("kind", pa.string()),
        ("start_time", pa.timestamp("ns", tz="UTC")),
        ("end_time", pa.timestamp("ns", tz="UTC")),
        ("duration_ms", pa.float64()),
        ("status_code", pa.string()),
        ("status_message", pa.string()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("ttft_ms", pa.float64()),
        ("sample_weight", pa.float64()),
        ("host", pa.string()),
        ("resource_attributes", pa.string()),
        ("attributes", pa.string()),
        # migration 003: billed apart from plain input/output tokens
        ("cache_read_input_tokens", pa.int64()),
        ("cache_creation_input_tokens", pa.int64()),
        ("reasoning_output_tokens", pa.int64()),
    ]
)
EVALUATION_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("evaluation_name", pa.string()),
        ("time", pa.timestamp("ns", tz="UTC")),
        ("score", pa.float64()),
        ("score_value", pa.float64()),
        ("score_label", pa.string()),
        ("explanation", pa.string()),
        ("response_id", pa.string()),
        ("origin", pa.string()),
    ]
)


class Counts(NamedTuple):
    """Items (spans, or log records) of one add call: staged, ignored on purpose, rejected.

    A container that cannot be read at all (`"logRecords": "x"`) counts as one rejected
    item: its items cannot be counted, but the sender must hear that something was lost.
    """

    accepted: int = 0
    ignored: int = 0
    rejected: int = 0

    @property
    def total(self) -> int:
        return self.accepted + self.ignored + self.rejected


_BILLED_APART = frozenset(
    {
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.reasoning.output_tokens",
    }
)


def _count(mapped: dict[str, Any], key: str) -> int | None:
    value = mapped.get(key)
    if value is None:
        return None
    if value.__class__ is int and 0 <= value < MAX_COUNT:  # the common case, kept cheap
        return int(value)
    return count(value, key)


def span_row(
    mapping: Mapping,
    ctx: ResourceContext,
    trace_id: str,
    span_id: str,
    parent: str | None,
    trace_state: str | None,
    name: str,
    kind: str,
    start: int,
    end: int,
    code: str,
    status_message: str | None,
    mapped: dict[str, Any],
    rest: dict[str, Any],
    rest_clean: bool = False,
) -> tuple[Any, ...]:
    """One span's row in SPAN_SCHEMA order from its attributes, split into those that
    become columns (`mapped`, keys in MAPPED) and the rest.

    `rest_clean` says the caller found nothing in `rest` for the deny list or the caps to
    change, so it is serialized as it is. Raises RecordError for a value it cannot keep.
    """
    if end < start:
        raise RecordError(
            f"span ends before it starts (end - start = {(end - start) / 1e6:.3f} ms)"
        )
    if mapped:  # the common cases inline, the rest through `short` and `count`
        get = mapped.get
        model = get("gen_ai.request.model")
        provider = get("gen_ai.provider.name") or get("gen_ai.system")
        provider = _PROVIDER_ALIASES.get(provider, provider) if isinstance(provider, str) else None
        ttft = get("gen_ai.server.time_to_first_token")
        if ttft is None:
            ttft = get("gen_ai.response.time_to_first_chunk")
        v = get("gen_ai.response.model")
        response_model = v if v is None or (v.__class__ is str and len(v) <= 256) else short(v)
        v = get("gen_ai.operation.name")
        operation = v if v is None or (v.__class__ is str and len(v) <= 256) else short(v)
        v = get("gen_ai.usage.input_tokens")
        if v is None:
            v = get("gen_ai.usage.prompt_tokens")
        input_tokens = (
            v
            if v is None or (v.__class__ is int and 0 <= v < MAX_COUNT)
            else count(v, "gen_ai.usage.input_tokens")
        )
        v = get("gen_ai.usage.output_tokens")
        if v is None:
            v = get("gen_ai.usage.completion_tokens")
        output_tokens = (
            v
            if v is None or (v.__class__ is int and 0 <= v < MAX_COUNT)
            else count(v, "gen_ai.usage.output_tokens")
        )
        if _BILLED_APART.isdisjoint(mapped):
            cache_read = cache_creation = reasoning = None
        else:
            cache_read = _count(mapped, "gen_ai.usage.cache_read.input_tokens")
            cache_creation = _count(mapped, "gen_ai.usage.cache_creation.input_tokens")
            reasoning = _count(mapped, "gen_ai.usage.reasoning.output_tokens")
        ttft_ms: float | None = None
        if ttft.__class__ is float and 0.0 <= ttft < 86400.0:  # `seconds_to_ms`, inline
            ttft_ms = ttft * 1000.0
        elif ttft is not None:
            ttft_ms = seconds_to_ms(ttft)
    else:  # most spans of a trace carry no gen_ai.* attribute at all
        model = provider = response_model = operation = ttft_ms = None
        input_tokens = output_tokens = cache_read = cache_creation = reasoning = None
    if model is None and ctx.model_attribute:
        model = (mapped if ctx.model_attribute in MAPPED else rest).get(ctx.model_attribute)
    if rest:
        attributes = orjson.dumps(rest if rest_clean else mapping.clean(rest)).decode()
    else:
        attributes = None
    return (
        trace_id,
        span_id,
        parent,
        short(trace_state, 512) if trace_state else None,
        ctx.service,
        ctx.environment,
        model if model is None or (model.__class__ is str and len(model) <= 256) else short(model),
        ctx.version,
        response_model,
        operation,
        provider,
        name if len(name) <= 1024 else short(name, 1024),
        kind,
        start,
        end,
        (end - start) / 1e6,
        code,
        short(status_message, 1024) if status_message else None,
        input_tokens,
        output_tokens,
        ttft_ms,
        ctx.weight or (tracestate_weight(trace_state) if trace_state else 1.0),
        ctx.host,
        ctx.json,
        attributes,
        cache_read,
        cache_creation,
        reasoning,
    )


def evaluation_row(
    mapping: Mapping, trace_id: str, span_id: str, time_ns: int, attrs: dict[str, Any], origin: str
) -> tuple[Any, ...]:
    """One evaluation's row in EVALUATION_SCHEMA order; raises RecordError when unusable."""
    name = attrs.get("gen_ai.evaluation.name")
    if not isinstance(name, str) or not name:
        raise RecordError("gen_ai.evaluation.result without gen_ai.evaluation.name")
    value = attrs.get("gen_ai.evaluation.score.value")
    label = attrs.get("gen_ai.evaluation.score.label")
    if value is not None:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise RecordError(f"gen_ai.evaluation.score.value is not a finite number: {value!r}")
        score: float | None = float(value)
    elif isinstance(label, str):
        low = label.strip().lower()
        score = 1.0 if low in PASS_LABELS else 0.0 if low in FAIL_LABELS else None
    else:
        score = None
    return (
        trace_id,
        span_id,
        short(name),
        time_ns,
        score,
        float(value) if value is not None else None,
        short(label) if isinstance(label, str) else None,
        short(attrs.get("gen_ai.evaluation.explanation"), mapping.max_bytes),
        short(attrs.get("gen_ai.response.id")),
        origin,
    )


_TRANSPOSE_ROWS = 512


def _transpose(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows to columns, in C, a few hundred rows at a time: one `zip(*rows)` over tens of
    thousands of rows walks them all once per column, missing the cache on every row
    (3-5.5 us a span for the 28 columns, against 1.1-1.6 us in slices that stay cached)."""
    columns: list[list[Any]] = [[] for _ in SPAN_SCHEMA]
    for at in range(0, len(rows), _TRANSPOSE_ROWS):
        chunk = rows[at : at + _TRANSPOSE_ROWS]
        for column, values in zip(columns, zip(*chunk, strict=True), strict=True):
            column.extend(values)
    return columns


@dataclass
class Rows:
    """Staged spans (one tuple per span) and evaluations (columns), plus the quarantine."""

    mapping: Mapping
    rows: list[tuple[Any, ...]] = field(default_factory=list)  # SPAN_SCHEMA order
    evaluations: dict[str, list[Any]] = field(
        default_factory=lambda: {n: [] for n in EVALUATION_SCHEMA.names}
    )
    quarantine: list[tuple[str, str, str]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    accepted: int = 0  # items of the signal, over every add call so far (see Counts)
    ignored: int = 0
    rejected: int = 0
    latest_ns: int = 0  # the latest time a record may carry, set at each add call

    @property
    def spans(self) -> dict[str, list[Any]]:
        """The staged spans as columns (rows are kept as tuples: one append per span)."""
        columns = list(zip(*self.rows, strict=True)) if self.rows else [()] * len(SPAN_SCHEMA)
        return {name: list(col) for name, col in zip(SPAN_SCHEMA.names, columns, strict=True)}

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def evaluation_count(self) -> int:
        return len(self.evaluations["trace_id"])

    @property
    def counts(self) -> Counts:
        return Counts(self.accepted, self.ignored, self.rejected)

    def extend(self, other: Rows) -> None:
        """Add what `other` staged after what this holds (the spool's run of small requests)."""
        self.rows.extend(other.rows)
        for name, values in other.evaluations.items():
            self.evaluations[name].extend(values)
        self.quarantine.extend(other.quarantine)
        self.skipped.update(other.skipped)
        self.warnings.update(other.warnings)
        self.accepted += other.accepted
        self.ignored += other.ignored
        self.rejected += other.rejected

    def to_arrow(self) -> tuple[pa.Table, pa.Table]:
        if self.rows:
            arrays = [
                pa.array(col, type=f.type)
                for col, f in zip(_transpose(self.rows), SPAN_SCHEMA, strict=True)
            ]
            spans = pa.Table.from_arrays(arrays, schema=SPAN_SCHEMA)
        else:
            spans = SPAN_SCHEMA.empty_table()
        evals = pa.Table.from_pydict(self.evaluations, schema=EVALUATION_SCHEMA)
        return spans, evals

    def clear(self) -> None:
        self.rows.clear()
        for col in self.evaluations.values():
            col.clear()

    # -- what the walks call ------------------------------------------------------------------
    def reject(self, location: str, error: str, raw: str, items: int = 1) -> None:
        """Quarantine one record (or a container of `items` records) with its reason."""
        self.quarantine.append((location, error, raw))
        self.rejected += items

    def ignore(self, reason: str, items: int = 1) -> None:
        self.skipped[reason] += items
        self.ignored += items

    def add_evaluation(self, row: tuple[Any, ...]) -> None:
        for column, value in zip(self.evaluations.values(), row, strict=True):
            column.append(value)

    def check_time(self, what: str, t: int) -> int:
        """`t`, unless it lies further past the time of ingest than the clock skew allowed."""
        if t > self.latest_ns:
            raise self.mapping.future_error(what, t)
        return t
