"""Synthetic OTLP trace files for the benchmarks, in two shapes (GenAI and HTTP+child).

Written once per size into a cache folder and reused, so a benchmark run times ingest,
not generation.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

CACHE = Path(os.environ.get("HYBRIDLENS_BENCH_CACHE", "/tmp/hybridlens-bench"))
SPANS_PER_REQUEST = 500
T0 = 1_790_000_000 * 10**9


def _kv(key: str, value: object) -> dict[str, object]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": str(value)}}


def _request(rng: random.Random, i: int) -> dict[str, Any]:
    env = ["dc-frankfurt", "aws-us-east-1", "gcp-europe-west4", "edge-munich"][i % 4]
    resource = [
        _kv("service.name", "chat-gateway" if i % 2 == 0 else "risk-scoring"),
        _kv("service.version", f"2.{i % 3}.0"),
        _kv("deployment.environment.name", env),
        _kv("host.name", f"host-{i % 16:02d}"),
        _kv("k8s.cluster.name", "bench"),
    ]
    spans = []
    t = T0 + i * 10**9
    if i % 2 == 0:  # GenAI shape: one SERVER span per request with gen_ai.* attributes
        for _ in range(SPANS_PER_REQUEST):
            start = t + rng.randrange(10**9)
            dur = int(rng.lognormvariate(20, 0.6))
            spans.append(
                {
                    "traceId": rng.randbytes(16).hex(),
                    "spanId": rng.randbytes(8).hex(),
                    "name": "chat llama-3.1-70b-instruct",
                    "kind": 2,
                    "startTimeUnixNano": str(start),
                    "endTimeUnixNano": str(start + dur),
                    "attributes": [
                        _kv("gen_ai.operation.name", "chat"),
                        _kv("gen_ai.provider.name", "vllm"),
                        _kv("gen_ai.request.model", "llama-3.1-70b-instruct"),
                        _kv("gen_ai.response.model", "llama-3.1-70b-instruct"),
                        _kv("gen_ai.usage.input_tokens", rng.randrange(50, 2000)),
                        _kv("gen_ai.usage.output_tokens", rng.randrange(10, 800)),
                        _kv("gen_ai.server.time_to_first_token", rng.random()),
                        _kv("server.address", "llm.internal"),
                    ],
                    "status": {"code": 2 if rng.random() < 0.01 else 0},
                }
            )
    else:  # HTTP SERVER span + INTERNAL child that names the model
        for _ in range(SPANS_PER_REQUEST // 2):
            trace = rng.randbytes(16).hex()
            parent = rng.randbytes(8).hex()
            start = t + rng.randrange(10**9)
            dur = int(rng.lognormvariate(16, 0.8))
            spans.append(
                {
                    "traceId": trace,
                    "spanId": parent,
                    "name": "POST /v1/score",
                    "kind": 2,
                    "startTimeUnixNano": str(start),
                    "endTimeUnixNano": str(start + dur),
                    "attributes": [
                        _kv("http.request.method", "POST"),
                        _kv("http.route", "/v1/score"),
                        _kv("http.response.status_code", 200),
                        _kv("url.path", "/v1/score"),
                    ],
                }
            )
            spans.append(
                {
                    "traceId": trace,
                    "spanId": rng.randbytes(8).hex(),
                    "parentSpanId": parent,
                    "name": "predict fraud-classifier",
                    "kind": 1,
                    "startTimeUnixNano": str(start + 1000),
                    "endTimeUnixNano": str(start + dur - 1000),
                    "attributes": [_kv("gen_ai.request.model", "fraud-classifier")],
                }
            )
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": resource},
                "scopeSpans": [{"scope": {"name": "bench"}, "spans": spans}],
            }
        ]
    }


def corpus(spans: int, encoding: str = "json") -> Path:
    """A file of `spans` spans in 500-span requests: JSON lines or length-prefixed protobuf."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"spans-{spans}.{'jsonl' if encoding == 'json' else 'binpb'}"
    if path.exists():
        return path
    rng = random.Random(42)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as out:
        for i in range(spans // SPANS_PER_REQUEST):
            request = _request(rng, i)
            if encoding == "json":
                out.write(orjson.dumps(request) + b"\n")
            else:
                msg = json_format.ParseDict(request, ExportTraceServiceRequest())
                # json_format reads ids as base64; OTLP/JSON ids are hex, so set the bytes.
                for rs, rs_json in zip(msg.resource_spans, request["resourceSpans"], strict=True):
                    for span, sj in zip(
                        rs.scope_spans[0].spans, rs_json["scopeSpans"][0]["spans"], strict=True
                    ):
                        span.trace_id = bytes.fromhex(sj["traceId"])
                        span.span_id = bytes.fromhex(sj["spanId"])
                        span.parent_span_id = bytes.fromhex(sj.get("parentSpanId", ""))
                data = msg.SerializeToString()
                out.write(len(data).to_bytes(4, "big") + data)
    tmp.rename(path)
    return path
