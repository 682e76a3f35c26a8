"""The DCGM <-> hw.* table, and the grouping of OTLP data points into GPU readings.

Kept apart from the OTLP walk (`otlp_metrics.py`) because the table is what the docs render
and what a reader checks a unit against, and the grouping is where the conventions' rules
live: `hw.type = gpu` on the generic hw.power / hw.energy, the `general` task only, memory
free from limit - usage, a delta energy sum accumulated into a counter per series.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ingest.errors import RecordError
from ingest.gpu.readings import (
    ENERGY,
    FB_FREE,
    FB_USED,
    FIELDS,
    GR_ENGINE_ACTIVE,
    POWER,
    SM_ACTIVE,
    TEMP,
    UTIL,
    Parsed,
    Reading,
)
from ingest.otlp.fields import json_attrs, ns, proto_attrs

DELTA, CUMULATIVE = 1, 2  # AggregationTemporality
NO_RECORDED_VALUE = 1  # DataPointFlags bit
MIB = 1024 * 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FieldMap:
    """One row of the DCGM <-> hw.* table: a reading field and where OTLP carries it."""

    field: str  # the DCGM field of the reading (also the metric name the receiver forwards)
    hw: str | None  # the hw.* metric, None where the conventions have none
    hw_unit: str  # the unit the hw.* metric is in
    scale: float  # hw value x scale = the DCGM unit
    dcgm_unit: str
    note: str


# The one DCGM <-> hw.* mapping; docs/gpu-otlp.md renders it (`mapping_markdown`).
MAPPING: tuple[FieldMap, ...] = (
    FieldMap(UTIL, "hw.gpu.utilization", "1", 100.0, "%", "ratio to percent; task general"),
    FieldMap(FB_USED, "hw.gpu.memory.usage", "By", 1 / MIB, "MiB", "bytes to MiB"),
    FieldMap(FB_FREE, "hw.gpu.memory.limit", "By", 1 / MIB, "MiB", "free = limit - usage"),
    FieldMap(POWER, "hw.power", "W", 1.0, "W", "`hw.type = gpu` only"),
    FieldMap(ENERGY, "hw.energy", "J", 1000.0, "mJ", "J to mJ; deltas summed to a counter"),
    FieldMap(TEMP, None, "", 1.0, "°C", "DCGM series only"),
    FieldMap(GR_ENGINE_ACTIVE, None, "", 1.0, "ratio 0-1", "DCGM series only"),
    FieldMap(SM_ACTIVE, None, "", 1.0, "ratio 0-1", "DCGM series only"),
)
BY_HW = {m.hw: m for m in MAPPING if m.hw}
_LIMIT = "hw.gpu.memory.limit"
_GENERIC = ("hw.power", "hw.energy")  # shared by every kind of hardware: need hw.type = gpu

# attribute -> the dcgm-exporter label the reading carries it as (all attributes are kept
# under their own names as well, so `match` rules and `gpu.node_label` can name them)
LABELS: tuple[tuple[str, str], ...] = (
    ("hw.id", "UUID"),
    ("hw.model", "modelName"),
    ("host.name", "Hostname"),
    ("k8s.pod.name", "pod"),
    ("k8s.namespace.name", "namespace"),
    ("k8s.container.name", "container"),
)
_NOT_IDENTITY = ("hw.gpu.task", "hw.type")  # differ between a GPU's metrics, not its identity
MAX_ATTRS = 128  # a series with more attributes is not a GPU's: refused, not stored


def mapping_markdown() -> str:
    """The mapping table as docs/gpu-otlp.md shows it (a test keeps the two the same)."""
    lines = [
        "| DCGM field (reading) | unit | hw.* metric | hw unit | note |",
        "|---|---|---|---|---|",
    ]
    for m in MAPPING:
        hw = f"`{m.hw}`" if m.hw else "—"
        lines.append(f"| `{m.field}` | {m.dcgm_unit} | {hw} | {m.hw_unit or '—'} | {m.note} |")
    lines += ["", "| attribute | label |", "|---|---|"]
    lines += [f"| `{attr}` | `{label}` |" for attr, label in LABELS]
    return "\n".join(lines) + "\n"


# -- grouping -----------------------------------------------------------------------------
_Key = tuple[tuple[tuple[str, str], ...], int]  # (identity, time in ns)


class PointGroups:
    """Collects data points by (identity, time) and turns them into readings at the end."""

    def __init__(self) -> None:
        self.parsed = Parsed()
        self.values: dict[_Key, dict[str, float]] = {}
        self.labels: dict[_Key, dict[str, str]] = {}
        self.where: dict[_Key, str] = {}
        self.limits: dict[_Key, float] = {}  # hw.gpu.memory.limit in MiB
        self.deltas: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]] = {}
        # (resource, point attributes) -> (the resource, kept alive so its id stays its own;
        # identity; labels): a GPU's attributes repeat on every point of every metric
        self.identities: dict[tuple[int, tuple[tuple[str, str], ...]], tuple[Any, ...]] = {}

    def add(
        self,
        metric: str,
        field: str,
        scale: float,
        delta: bool,
        point: Any,
        resource: dict[str, str],
        where: str,
    ) -> None:
        if not isinstance(point, dict):
            raise RecordError("wrong schema: a data point is not an object")
        attrs = attributes(point.get("attributes"))
        if len(attrs) + len(resource) > MAX_ATTRS:
            raise RecordError(f"more than {MAX_ATTRS} attributes: not a GPU series")
        kind = attrs.get("hw.type") or resource.get("hw.type")
        if metric in _GENERIC and kind != "gpu":
            self.parsed.skipped["hw.* data points of other hardware (hw.type not gpu)"] += 1
            return
        if metric.startswith("hw.") and kind not in (None, "gpu"):
            self.parsed.skipped["hw.* data points of other hardware (hw.type not gpu)"] += 1
            return
        if metric == "hw.gpu.utilization" and attrs.get("hw.gpu.task", "general") != "general":
            self.parsed.skipped["hw.gpu.utilization of decoder/encoder tasks"] += 1
            return
        if int(point.get("flags") or 0) & NO_RECORDED_VALUE:
            self.parsed.skipped["data points with no recorded value"] += 1
            return
        t = ns(point.get("timeUnixNano"), "timeUnixNano")
        value = _number(point)
        seen = (id(resource), tuple(attrs.items()))
        known = self.identities.get(seen)
        if known is None:
            labels = {**resource, **attrs}
            for attr, label in LABELS:
                if labels.get(attr) and not labels.get(label):
                    labels[label] = labels[attr]
            kept = {k: v for k, v in labels.items() if k not in _NOT_IDENTITY}
            known = self.identities[seen] = (resource, tuple(sorted(kept.items())), kept)
        _, identity, kept = known
        key = (identity, t)
        if key not in self.labels:
            self.labels[key] = dict(kept)
            self.where[key] = where
            self.values[key] = {}
        if metric == _LIMIT:
            self.limits[key] = value * scale
            return
        if delta and field == ENERGY:  # only a counter can be summed from deltas
            if not math.isfinite(value):
                self.parsed.skipped["delta data points that are NaN or infinite"] += 1
                return
            self.deltas.setdefault(identity, []).append((t, value * scale))
            return
        if field in self.values[key]:
            self.parsed.skipped["duplicate data points"] += 1
        self.values[key][field] = value * scale

    def finish(self) -> Parsed:
        for identity, points in self.deltas.items():
            total = 0.0
            for t, amount in sorted(points):
                total += amount  # the series' energy since its first delta in this input
                self.values[(identity, t)][ENERGY] = total
        for key, mib in self.limits.items():
            used = self.values[key].get(FB_USED)
            if used is not None and FB_FREE not in self.values[key]:
                self.values[key][FB_FREE] = mib - used
        for key in sorted(self.values, key=lambda k: (k[1], k[0])):
            fields = self.values[key]
            if not fields:
                self.parsed.skipped["series with only a memory limit"] += 1
                continue
            ts = _datetime(key[1])
            self.parsed.readings.append(Reading(ts, self.labels[key], fields, self.where[key]))
        return self.parsed


# -- values -------------------------------------------------------------------------------
def _number(point: dict[str, Any]) -> float:
    if "asDouble" in point:
        raw = point["asDouble"]
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise RecordError(f"asDouble {str(raw)[:40]!r} is not a number")
        try:
            return float(raw)  # proto3 JSON spells non-finite values "NaN", "Infinity"
        except ValueError:
            raise RecordError(f"asDouble {str(raw)[:40]!r} is not a number") from None
    if "asInt" in point:
        try:
            return float(int(point["asInt"]))
        except (TypeError, ValueError, OverflowError):
            raise RecordError(f"asInt {str(point['asInt'])[:40]!r} is not an integer") from None
    raise RecordError("the data point has neither asDouble nor asInt")


class Decoded(dict[str, Any]):
    """Attributes a protobuf walk has decoded already (`proto_doc`), told apart from JSON's
    list of {key, value}, which `json_attrs` checks and decodes."""


def attributes(value: Any) -> dict[str, str]:
    """The label strings of an OTLP attribute list, from JSON or from `proto_doc`."""
    return label_strings(value if isinstance(value, Decoded) else json_attrs(value))


def proto_doc(request: Any) -> dict[str, Any]:
    """An ExportMetricsServiceRequest as the OTLP/JSON shape the walk reads, built from the
    fields it reads only (MessageToDict costs a hundred times the parse); a metric that is
    not a GPU metric keeps its name and one empty entry per data point, so the walk counts
    each point as skipped without decoding it."""
    resources = []
    for rm in request.resource_metrics:
        scopes = []
        for sm in rm.scope_metrics:
            metrics: list[dict[str, Any]] = []
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                if kind is None:
                    metrics.append({"name": m.name})
                    continue
                data = getattr(m, kind)
                wanted = kind in ("gauge", "sum") and (m.name in BY_HW or m.name in FIELDS)
                points = [_proto_point(p) for p in data.data_points] if wanted else [
                    {} for _ in data.data_points
                ]  # fmt: skip
                body: dict[str, Any] = {"dataPoints": points}
                if kind == "sum":
                    body["aggregationTemporality"] = data.aggregation_temporality
                metrics.append({"name": m.name, kind: body})
            scopes.append({"metrics": metrics})
        resource = {"attributes": Decoded(proto_attrs(rm.resource.attributes))}
        resources.append({"resource": resource, "scopeMetrics": scopes})
    return {"resourceMetrics": resources}


def _proto_point(p: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "timeUnixNano": p.time_unix_nano,
        "flags": p.flags,
        "attributes": Decoded(proto_attrs(p.attributes)),
    }
    which = p.WhichOneof("value")
    if which == "as_double":
        out["asDouble"] = p.as_double
    elif which == "as_int":
        out["asInt"] = p.as_int
    return out


def label_strings(attrs: dict[str, Any]) -> dict[str, str]:
    """Attributes as label strings (labels are strings in every GPU format)."""
    out = {}
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, str):
            out[key] = value
        else:
            out[key] = (
                orjson.dumps(value).decode() if isinstance(value, list | dict) else str(value)
            )
    return out


def _datetime(t: int) -> datetime:
    return _EPOCH + timedelta(microseconds=t // 1000)
