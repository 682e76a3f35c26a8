"""OTLP metrics GPU format: data points read per second, as a ratio to the parse alone.

    python benchmarks/gpu_otlp_metrics.py [--gpus 64] [--steps 240]

Builds a synthetic input of `--gpus` GPUs x `--steps` one-minute batches, each with the
five hw.* metrics OpenLIT's GPU collector emits, as JSON lines and as length-prefixed
protobuf, and times `OtlpMetrics.read` on each against the floor of the same run: orjson
decoding every line, and protobuf's C parser decoding every frame. Best of three runs.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
from collections.abc import Callable
from typing import Any

import orjson
from google.protobuf.json_format import Parse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from ingest.contract import Unit
from ingest.gpu.otlp_metrics import OtlpMetrics
from ingest.gpu.readings import ReadOptions

T0 = 1_793_000_000 * 10**9


def _kv(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


def _batches(gpus: int, steps: int) -> list[dict[str, Any]]:
    out = []
    for s in range(steps):
        t = str(T0 + s * 60 * 10**9)

        def points(value: float, t: str = t) -> list[dict[str, Any]]:
            return [
                {"timeUnixNano": t, "asDouble": value,
                 "attributes": [_kv("hw.id", f"GPU-{g}"), _kv("hw.type", "gpu"),
                                _kv("hw.model", "NVIDIA H100 80GB HBM3")]}
                for g in range(gpus)
            ]  # fmt: skip

        metrics = [
            {"name": "hw.gpu.utilization", "gauge": {"dataPoints": points(0.5)}},
            {"name": "hw.gpu.memory.usage", "gauge": {"dataPoints": points(8e9)}},
            {"name": "hw.gpu.memory.limit", "gauge": {"dataPoints": points(80e9)}},
            {"name": "hw.power", "gauge": {"dataPoints": points(300.0)}},
            {"name": "hw.energy",
             "sum": {"aggregationTemporality": 2, "dataPoints": points(1e6 + s)}},
        ]  # fmt: skip
        resource = {"attributes": [_kv("host.name", "gpu-node-1")]}
        out.append({"resourceMetrics": [{"resource": resource, "scopeMetrics": [
            {"metrics": metrics}]}]})  # fmt: skip
    return out


def _best(fn: Callable[[], object], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=64)
    parser.add_argument("--steps", type=int, default=240)
    args = parser.parse_args()
    batches = _batches(args.gpus, args.steps)
    lines = [orjson.dumps(b) for b in batches]
    as_json = b"\n".join(lines) + b"\n"
    frames = [
        Parse(json.dumps(b), ExportMetricsServiceRequest()).SerializeToString() for b in batches
    ]
    as_proto = b"".join(len(f).to_bytes(4, "big") + f for f in frames)
    fmt = OtlpMetrics()
    points = args.gpus * args.steps * 5
    print(f"load average {os.getloadavg()[0]:.1f}; {points:,} data points, {args.gpus} GPUs")

    def decode_json() -> object:
        return [orjson.loads(x) for x in lines]

    def decode_proto() -> object:
        return [ExportMetricsServiceRequest.FromString(f) for f in frames]

    cases: list[tuple[str, bytes, str, Callable[[], object]]] = [
        ("JSON lines", as_json, "orjson.loads", decode_json),
        ("protobuf frames", as_proto, "FromString", decode_proto),
    ]
    for name, data, floor_name, floor in cases:
        unit = Unit(uri="bench", body=data)
        parsed = fmt.read(data, unit, ReadOptions())
        took = _best(functools.partial(fmt.read, data, unit, ReadOptions()))
        base = _best(floor)
        print(
            f"{name}: {len(data) / 1e6:.1f} MB -> {len(parsed.readings):,} readings in "
            f"{took:.2f} s = {points / took:,.0f} points/s; {floor_name} alone {base:.3f} s; "
            f"ratio {took / base:.1f}x"
        )


if __name__ == "__main__":
    main()
