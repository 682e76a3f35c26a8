"""The demo's GPU telemetry files, in the formats real fleets produce them.

- OTLP metrics JSON lines (`gpu/<env>/<date>.jsonl`): the OpenTelemetry hardware
  conventions (`hw.gpu.utilization`, `hw.gpu.memory.usage`/`limit`, `hw.power`, `hw.energy`
  with `hw.type = gpu`), as OpenLIT's GPU collector emits them, one line per host and hour,
  every 5 minutes. Pods are on the data points (`k8s.pod.name`, `k8s.namespace.name`), as
  the Collector's k8sattributes processor adds them.
- An nvidia-smi `--query-gpu ... --format=csv` log (`gpu/edge-munich/nvidia-smi/<host>.csv`)
  for the edge box that has no exporter: units in header and values, no energy counter.
- dcgm-exporter scrapes of the last day, one file a minute
  (`gpu/dc-frankfurt/dcgm/<date>T<HHMM>Z.prom`) with a `# scraped at` comment and no sample
  timestamps, as a scrape saved by `curl` is. On Kubernetes `Hostname` is the exporter pod,
  so each series also has the `kubernetes_node` label Prometheus relabeling adds.
"""

# %-formatting over pre-built pieces is what keeps millions of points fast to write.
# ruff: noqa: UP031

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import zstandard

from sample_data.gpu_inventory import Gpu
from sample_data.gpu_load import Day
from sample_data.ids import instance_id
from sample_data.otlp_json import attrs
from sample_data.traffic_shape import NS_PER_MIN, NS_PER_S

STEP_MIN = 5
MIB = 1_048_576
RESOURCE = {  # environment -> resource attributes beside host.name
    "dc-frankfurt": [("k8s.cluster.name", "fra-dc-prod")],
    "aws-us-east-1": [("cloud.provider", "aws"), ("cloud.region", "us-east-1")],
    "gcp-europe-west4": [("cloud.provider", "gcp"), ("cloud.region", "europe-west4")],
    "edge-munich": [("deployment.environment", "edge-munich")],
}
SCOPE = '{"name":"openlit.otel.gpu","version":"1.4.0"}'
POINT = '{"timeUnixNano":%s,"%s":%s,"attributes":[%s]}'
METRIC = '{"name":"%s","unit":"%s","%s":{%s"dataPoints":[%s]}}'
RESOURCE_METRICS = '{"resource":{"attributes":[%s]},"scopeMetrics":[{"scope":%s,"metrics":[%s]}]}'
CUMULATIVE = '"aggregationTemporality":2,"isMonotonic":true,'


def otlp_lines(env: str, host: str, gpus: Sequence[Gpu], days: Sequence[Day], day_ns: int) -> str:
    """One JSON line per hour of one host's GPUs, a point every 5 minutes.

    One resource per pod on the host (the k8sattributes processor puts the pod there), the
    GPU's `hw.id` on each point; the memory limit, which does not change, once an hour.
    """
    groups: dict[tuple[str, str], list[int]] = {}
    for i, g in enumerate(gpus):
        groups.setdefault((g.namespace, g.pod), []).append(i)
    resources = {}
    for namespace, pod in groups:
        pairs = [("host.name", host), *RESOURCE[env]]
        if ("cloud.provider", "aws") in pairs:  # the resourcedetection processor's ec2 detector
            pairs.append(("host.id", instance_id(host)))
        if pod:
            pairs += [("k8s.namespace.name", namespace), ("k8s.pod.name", pod)]
        resources[(namespace, pod)] = attrs(pairs)
    ident = [attrs([("hw.id", g.uuid), ("hw.model", g.model_name)]) for g in gpus]
    typed = [
        attrs([("hw.id", g.uuid), ("hw.model", g.model_name), ("hw.type", "gpu")]) for g in gpus
    ]
    series = [  # name, unit, instrument, value kind, per-GPU minutes, point attributes
        ("hw.gpu.utilization", "1", "gauge", "asDouble", [d.util / 100 for d in days], ident),
        ("hw.gpu.memory.usage", "By", "gauge", "asInt", [d.memory_used * MIB for d in days], ident),
        ("hw.gpu.memory.limit", "By", "gauge", "asInt",
         [np.full(1440, g.memory_mib * MIB) for g in gpus], ident),
        ("hw.power", "W", "gauge", "asDouble", [d.power for d in days], typed),
        ("hw.energy", "J", "sum", "asDouble", [d.energy_mj / 1000 for d in days], typed),
    ]  # fmt: skip
    texts = [[_texts(v[::STEP_MIN], kind) for v in values] for _, _, _, kind, values, _ in series]
    out: list[str] = []
    per_hour = 60 // STEP_MIN
    for hour in range(24):
        steps = range(hour * per_hour, (hour + 1) * per_hour)
        stamps = ['"%d"' % (day_ns + s * STEP_MIN * NS_PER_MIN) for s in steps]
        blocks = []
        for key, members in groups.items():
            metrics = []
            for (name, unit, instrument, kind, _, pieces), text in zip(series, texts, strict=True):
                every = steps[:1] if name == "hw.gpu.memory.limit" else steps
                points = ",".join(
                    POINT % (stamps[i], kind, text[g][s], pieces[g])
                    for g in members
                    for i, s in enumerate(every)
                )
                extra = CUMULATIVE if instrument == "sum" else ""
                metrics.append(METRIC % (name, unit, instrument, extra, points))
            blocks.append(RESOURCE_METRICS % (resources[key], SCOPE, ",".join(metrics)))
        out.append('{"resourceMetrics":[%s]}\n' % ",".join(blocks))
    return "".join(out)


def _texts(values: np.ndarray, kind: str) -> list[str]:
    """Numbers as OTLP/JSON writes them: int64 as a decimal string, doubles plainly."""
    if kind == "asInt":
        return ['"%d"' % v for v in np.rint(values).astype(np.int64).tolist()]
    return ["%.6g" % v for v in values.tolist()]


NVIDIA_SMI_HEADER = (
    "timestamp, name, pci.bus_id, uuid, index, utilization.gpu [%], memory.used [MiB], "
    "memory.free [MiB], power.draw [W], temperature.gpu\n"
)


def nvidia_smi_rows(gpus: Sequence[Gpu], days: Sequence[Day], day_ns: int) -> str:
    """Five-minute rows of `nvidia-smi --query-gpu=... --format=csv -l 300`, time in UTC."""
    rows: list[str] = []
    for m in range(0, 1440, STEP_MIN):
        stamp = datetime.fromtimestamp((day_ns + m * NS_PER_MIN) / NS_PER_S, UTC)
        text = stamp.strftime("%Y/%m/%d %H:%M:%S.") + "%03d" % (17 + m % 400)
        for gpu, d in zip(gpus, days, strict=True):
            free = gpu.memory_mib - d.memory_used[m]
            rows.append(
                "%s, %s, 00000000:%02X:00.0, %s, %d, %d %%, %d MiB, %d MiB, %.2f W, %d\n"
                % (text, gpu.model_name, 1 + gpu.index, gpu.uuid, gpu.index, d.util[m],
                   d.memory_used[m], free, d.power[m], d.temperature[m])
            )  # fmt: skip
    return "".join(rows)


DCGM_FIELDS = (  # name, type, help (dcgm-exporter's default-counters.csv wording)
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Frame buffer memory free (in MiB)."),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Frame buffer memory used (in MiB)."),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter",
     "Total energy consumption since boot (in mJ)."),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active."),
    ("DCGM_FI_PROF_SM_ACTIVE", "gauge", "The ratio of cycles an SM has at least 1 warp assigned."),
)  # fmt: skip


def dcgm_labels(gpu: Gpu, exporter: str) -> str:
    pairs = [
        ("gpu", str(gpu.index)),
        ("UUID", gpu.uuid),
        ("pci_bus_id", "00000000:%02X:00.0" % (0x18 + 0x10 * gpu.index)),
        ("device", f"nvidia{gpu.index}"),
        ("modelName", gpu.model_name),
        ("Hostname", exporter),
        ("DCGM_FI_DRIVER_VERSION", "570.133.20"),
        ("container", gpu.pod.rsplit("-", 1)[0] if gpu.pod else ""),
        ("namespace", gpu.namespace),
        ("pod", gpu.pod),
        ("kubernetes_node", gpu.host),
    ]
    return ",".join('%s="%s"' % (k, v) for k, v in pairs)


def dcgm_scrapes(gpus: Sequence[Gpu], days: Sequence[Day], stamps: Sequence[datetime]) -> list[str]:
    """Each minute's scrape of the exporters of `gpus`, as one exposition per minute."""
    labels = [dcgm_labels(g, "nvidia-dcgm-exporter-" + g.host[-2:] + "x4k") for g in gpus]
    columns = [[_dcgm_values(name, g, d) for g, d in zip(gpus, days, strict=True)]
               for name, _, _ in DCGM_FIELDS]  # fmt: skip
    heads = [
        f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"
        for name, kind, help_text in DCGM_FIELDS
    ]
    out = []
    for m, stamp in enumerate(stamps):
        parts = ["# scraped at %s\n" % stamp.strftime("%Y-%m-%dT%H:%M:%SZ")]
        for f, (name, _, _) in enumerate(DCGM_FIELDS):
            parts.append(heads[f])
            parts += ["%s{%s} %s\n" % (name, labels[g], columns[f][g][m]) for g in range(len(gpus))]
        out.append("".join(parts))
    return out


def _dcgm_values(name: str, gpu: Gpu, d: Day) -> list[str]:
    value = {
        "DCGM_FI_DEV_GPU_UTIL": d.util,
        "DCGM_FI_DEV_FB_FREE": gpu.memory_mib - d.memory_used,
        "DCGM_FI_DEV_FB_USED": d.memory_used,
        "DCGM_FI_DEV_POWER_USAGE": d.power,
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": d.energy_mj,
        "DCGM_FI_DEV_GPU_TEMP": d.temperature,
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE": d.gr_active,
        "DCGM_FI_PROF_SM_ACTIVE": d.sm_active,
    }[name]
    form = "%.3f" if name == "DCGM_FI_DEV_POWER_USAGE" else "%.10g"
    return [form % v for v in value.tolist()]


def write(path: Path, text: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path.stat().st_size


def write_zstd(path: Path, text: str) -> int:
    """A zstd frame, as the Collector's file exporter writes with `compression: zstd`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(zstandard.ZstdCompressor(level=3).compress(text.encode()))
    return path.stat().st_size
