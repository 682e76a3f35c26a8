"""The one builder from readings to `gpu_samples` rows, whatever format they were read from.

Every GPU format (DCGM exposition, nvidia-smi log, Prometheus API, OTLP metrics, NVML)
hands its readings here, so the rules that decide what a row means exist once: which
environment, pool and node a GPU belongs to, what workload holds it, what share of a GPU
a MIG instance is, and which values are measurements rather than DCGM's "blank"
sentinels. A value that cannot be a measurement becomes NULL and is counted; a reading
that cannot be keyed (no GPU UUID, no host), or is dated past the allowed clock skew or
before 2000, is rejected with a sentence, so one bad series never turns into a row of garbage.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from functools import lru_cache

import pyarrow as pa

from ingest.contract import Rejected
from ingest.gpu.readings import (
    ENERGY,
    FB_FREE,
    FB_USED,
    GR_ENGINE_ACTIVE,
    POWER,
    SM_ACTIVE,
    TEMP,
    UTIL,
    Reading,
    ReadOptions,
)
from ingest.gpu.shared_gpus import Holders, fold
from warehouse.config import Config
from warehouse.gpu_definitions import mig_share

# gpu_samples without load_id (publish stamps it), in the migrations' order.
SCHEMA = pa.schema(
    [
        ("ts", pa.timestamp("us", tz="UTC")),
        ("environment", pa.string()),
        ("pool", pa.string()),
        ("host", pa.string()),
        ("gpu_uuid", pa.string()),
        ("gpu_index", pa.int32()),
        ("mig_instance", pa.string()),
        ("mig_profile", pa.string()),
        ("gpu_share", pa.float64()),
        ("gpu_model", pa.string()),
        ("workload", pa.string()),
        ("namespace", pa.string()),
        ("pod", pa.string()),
        ("container", pa.string()),
        ("utilization", pa.float64()),
        ("sm_active", pa.float64()),
        ("gr_engine_active", pa.float64()),
        ("memory_used_mib", pa.float64()),
        ("memory_free_mib", pa.float64()),
        ("power_w", pa.float64()),
        ("energy_mj", pa.float64()),
        ("temperature_c", pa.float64()),
        ("source", pa.string()),
        ("host_id", pa.string()),  # migration 011
        ("workloads", pa.list_(pa.string())),  # migration 012
    ]
)

# DCGM marks a field it has no value for with "blank" sentinels at the top of each type's
# range (dcgm_structs.h: DCGM_INT32_BLANK 0x7ffffff0, DCGM_INT64_BLANK 0x7ffffffffffffff0,
# DCGM_FP64_BLANK 2**47, each followed by NOT_FOUND, NOT_SUPPORTED, NOT_PERMISSIONED ...).
# The exporter prints them as numbers: they are absences, not measurements.
_BLANKS = (0x7FFFFFF0, float(2**47), float(0x7FFFFFFFFFFFFFF0))
_BLANK_SPAN = 16
_INT64_BLANKS = (9.2e18, float(2**63))  # INT64 blanks, however the exporter rounded them

# field -> (column, lowest, highest): physical bounds, generous; outside them a value is
# a broken sensor or a unit mistake, stored as NULL and counted.
_MIB_MAX = 16 * 1024 * 1024  # 16 TiB of frame buffer, in MiB
_COLUMNS: tuple[tuple[str, str, float, float], ...] = (
    (UTIL, "utilization", 0.0, 100.0),
    (SM_ACTIVE, "sm_active", 0.0, 1.0),
    (GR_ENGINE_ACTIVE, "gr_engine_active", 0.0, 1.0),
    (FB_USED, "memory_used_mib", 0.0, _MIB_MAX),
    (FB_FREE, "memory_free_mib", 0.0, _MIB_MAX),
    (POWER, "power_w", 0.0, 100_000.0),
    (ENERGY, "energy_mj", 0.0, float(2**47) - 1),
    (TEMP, "temperature_c", -100.0, 250.0),
)
_RATIO_SLACK = 1e-6  # DCGM's ratios can print as 1.0000001

# The labels each column is read from, first match wins (old-style k8s names, newer
# dcgm-exporter's lower-case `hostname`, NVLink series' `gpu_uuid`/`model_name`).
HOST_LABELS = ("Hostname", "hostname")
# The cloud's id of the host (an EC2 instance's `i-...`), which a bill names where the host's
# own name (`ip-10-0-1-23.ec2.internal`) is not it: OpenTelemetry's `host.id`, the name
# Prometheus gives it (`host_id`), and the label EC2 service discovery is usually relabelled to.
HOST_ID_LABELS = ("host.id", "host_id", "instance_id")
UUID_LABELS = ("UUID", "uuid", "gpu_uuid")
MODEL_LABELS = ("modelName", "model_name")
POD_LABELS = ("pod", "pod_name")
NAMESPACE_LABELS = ("namespace", "pod_namespace")
CONTAINER_LABELS = ("container", "container_name")
# Where the data itself names its environment (OTLP resource attributes, and the same
# names as Prometheus sanitizes them).
ENVIRONMENT_LABELS = (
    "deployment.environment.name",
    "deployment.environment",
    "deployment_environment_name",
    "deployment_environment",
    "environment",
)
MAX_LABEL_CHARS = 256  # a longer label value is cut (and counted): names, not payloads
UNKNOWN = "unknown"


Built = tuple[pa.Table, list[Rejected], Counter[str]]
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # as the DCGM and OTLP readers' epochs


def rows(
    readings: Iterable[Reading],
    config: Config,
    options: ReadOptions,
    source: str,
    *,
    now: datetime | None = None,
) -> Built:
    """`gpu_samples` rows (without `load_id`) for `readings`, the readings rejected with a
    sentence each, and counts of what was nulled or skipped (for the load report).

    `now` is the time of ingest the clock-skew rule measures from (the clock by default)."""
    rules = Rules.from_config(config, options)
    latest = (now or datetime.now(UTC)) + timedelta(hours=config.ingest.max_clock_skew_hours)
    columns: dict[str, list[object]] = {name: [] for name in SCHEMA.names}
    rejected: list[Rejected] = []
    counts: Counter[str] = Counter()
    holders = Holders()
    for reading in readings:
        error = _add(reading, rules, latest, source, columns, counts, holders)
        if error is not None:
            rejected.append(Rejected(reading.location, error, _excerpt(reading)))
    columns["workloads"].extend(holders.column())  # `_add` leaves it empty
    return pa.Table.from_pydict(columns, schema=SCHEMA), rejected, counts


@dataclass(frozen=True)
class Rules:
    """The parts of the config that decide a row's environment, pool, node and workload."""

    pools: tuple[tuple[str, str, tuple[str, ...]], ...]  # (environment, pool, host globs)
    matches: tuple[tuple[str, tuple[tuple[tuple[str, str], ...], ...]], ...]
    node_label: str
    workloads: tuple[tuple[str, str, str, str], ...]  # (workload, namespace, pod, host)
    environment: str

    @classmethod
    def from_config(cls, config: Config, options: ReadOptions) -> Rules:
        return cls(
            pools=tuple(
                (env.name, pool.name, pool.hosts)
                for env in config.environments
                for pool in env.gpu_pools
                if pool.hosts
            ),
            matches=tuple((env.name, env.match) for env in config.environments if env.match),
            node_label=config.gpu.node_label,
            workloads=tuple((w.workload, w.namespace, w.pod, w.host) for w in config.gpu.workloads),
            environment=options.environment,
        )

    def place(self, host: str, labels: dict[str, str]) -> tuple[str, str | None]:
        """(environment, pool): a pool's host globs, then the environments' `match` rules on
        the labels, then the data's own name, then `--environment`, then `unknown`."""
        pool = _pool_of(self.pools, host)
        if pool is not None:
            return pool
        for name, rules in self.matches:
            if any(all(labels.get(k) == v for k, v in rule) for rule in rules):
                return name, None
        for key in ENVIRONMENT_LABELS:
            value = labels.get(key)
            if value:
                return value[:MAX_LABEL_CHARS], None
        return self.environment or UNKNOWN, None

    def workload(self, host: str, namespace: str | None, pod: str | None) -> str | None:
        """The first `[[gpu.workloads]]` rule whose given globs all match, else the pod."""
        for workload, ns_glob, pod_glob, host_glob in self.workloads:
            if _glob(ns_glob, namespace) and _glob(pod_glob, pod) and _glob(host_glob, host):
                return workload
        return pod


def bounded(field: str, value: float, low: float, high: float) -> tuple[float | None, str]:
    """The value as a measurement, or None and the reason it is not one."""
    if math.isnan(value) or math.isinf(value):
        return None, "NaN or infinite values"
    if _INT64_BLANKS[0] <= value <= _INT64_BLANKS[1] or any(
        b <= value < b + _BLANK_SPAN for b in _BLANKS
    ):
        return None, "DCGM blank values (no reading)"
    slack = _RATIO_SLACK if high == 1.0 else 0.0
    if not low <= value <= high + slack:
        return None, f"out-of-range values ({field.removeprefix('DCGM_FI_')})"
    return min(value, high), ""


# -- one reading ---------------------------------------------------------------------------
def _add(
    reading: Reading,
    rules: Rules,
    latest: datetime,
    source: str,
    columns: dict[str, list[object]],
    counts: Counter[str],
    holders: Holders,
) -> str | None:
    """Append one row to `columns`; the sentence why not, when it cannot be a row.

    A reading of a GPU that already has a row at its time (another pod's series of a
    time-sliced GPU, with the same values) folds into that row (`shared_gpus`)."""
    labels = reading.labels
    ts = reading.ts
    if ts.tzinfo is None:
        return "the sample's time has no time zone (a bug in its format reader)"
    if ts > latest:
        hours = (ts - latest).total_seconds() / 3600
        return (
            f"sample time {ts.astimezone(UTC).isoformat()} is {hours:.1f} h past the time of "
            "ingest plus ingest.max_clock_skew_hours: a clock in the future"
        )
    if ts < EARLIEST:  # the cost model's day before it would not exist (year 1)
        return (
            f"sample time {ts.astimezone(UTC).isoformat()} is before 2000-01-01: a zero, a "
            "wrong unit or a clock never set"
        )
    uuid = _label(labels, UUID_LABELS, counts)
    if not uuid:
        return "no UUID label: the GPU cannot be told apart from the others on its host"
    host = _label(labels, (rules.node_label,), counts) if rules.node_label else None
    if not host:
        host = _label(labels, HOST_LABELS, counts)
    if not host:
        wanted = f"{rules.node_label}, " if rules.node_label else ""
        return f"no host label ({wanted}Hostname or hostname): the GPU has no node"
    model = _label(labels, MODEL_LABELS, counts)
    mig_instance = _label(labels, ("GPU_I_ID",), counts) or ""
    profile = _label(labels, ("GPU_I_PROFILE",), counts)
    share = 1.0
    if mig_instance:
        if not profile:
            return f"MIG instance {mig_instance} has no GPU_I_PROFILE: its share is unknown"
        found = mig_share(profile, model)
        if found is None:
            return f"GPU_I_PROFILE {profile!r} is not a MIG profile (like 1g.10gb)"
        share = found
    values: dict[str, float | None] = {}
    for field, column, low, high in _COLUMNS:
        raw = reading.fields.get(field)
        if raw is None:
            values[column] = None
            continue
        value, why = bounded(field, float(raw), low, high)
        if why:
            counts[why] += 1
        values[column] = value
    if mig_instance:
        # DCGM reports no GPU_UTIL per MIG instance: the graphics engine's activity stands in
        gr = values["gr_engine_active"]
        values["utilization"] = None if gr is None else gr * 100.0
    if all(v is None for v in values.values()):
        counts["samples with no usable value"] += 1
        return None
    namespace = _label(labels, NAMESPACE_LABELS, counts)
    pod = _label(labels, POD_LABELS, counts)
    workload = rules.workload(host, namespace, pod)
    into = holders.another((host, uuid, mig_instance, ts), workload, counts)  # the table's key
    if into is not None:
        holder = {"workload": workload, "namespace": namespace, "pod": pod,
                  "container": _label(labels, CONTAINER_LABELS, counts)}  # fmt: skip
        fold(columns, into, values, holder)
        return None
    environment, pool = rules.place(host, labels)
    index = _index(labels.get("gpu"))
    row: dict[str, object] = {
        "ts": ts.astimezone(UTC),
        "environment": environment,
        "pool": pool,
        "host": host,
        "host_id": _label(labels, HOST_ID_LABELS, counts),
        "gpu_uuid": uuid,
        "gpu_index": index,
        "mig_instance": mig_instance,
        "mig_profile": profile if mig_instance else None,
        "gpu_share": share,
        "gpu_model": model,
        "workload": workload,
        "namespace": namespace,
        "pod": pod,
        "container": _label(labels, CONTAINER_LABELS, counts),
        "source": source,
        **values,
    }
    for name, cells in columns.items():
        if name != "workloads":  # `rows` fills it once every reading is in
            cells.append(row[name])
    return None


def _label(labels: dict[str, str], names: tuple[str, ...], counts: Counter[str]) -> str | None:
    """The first non-empty label of `names` (dcgm-exporter writes `pod=""` for a GPU no pod
    holds), cut to MAX_LABEL_CHARS."""
    for name in names:
        value = labels.get(name)
        if value:
            if len(value) > MAX_LABEL_CHARS:
                counts["label values cut to 256 characters"] += 1
                return value[:MAX_LABEL_CHARS]
            return value
    return None


def _index(text: str | None) -> int | None:
    if text is None or not text.isdigit() or len(text) > 6:
        return None
    return int(text)


def _glob(pattern: str, value: str | None) -> bool:
    """An empty glob matches anything; a given one needs a value that matches it."""
    if not pattern:
        return True
    return value is not None and fnmatchcase(value, pattern)


@lru_cache(maxsize=4096)
def _pool_of(
    pools: tuple[tuple[str, str, tuple[str, ...]], ...], host: str
) -> tuple[str, str] | None:
    """The first (environment, pool) whose host globs match; hosts repeat on every sample."""
    for environment, pool, globs in pools:
        if any(fnmatchcase(host, g) for g in globs):
            return environment, pool
    return None


def _excerpt(reading: Reading) -> str:
    labels = ",".join(f"{k}={v!r}" for k, v in list(reading.labels.items())[:12])
    return f"{reading.ts.isoformat()} {{{labels}}}"[:300]
