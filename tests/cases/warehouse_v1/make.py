"""How `spans.jsonl`, `labels.jsonl` and `warehouse.duckdb.gz` here were made.

The warehouse was written by the code of commit 0d660ff (schema 001: BIGINT token sums,
tokens not scaled by the sampling weight), so `tests/test_warehouse_publish.py` can check
that migration 002 brings a file of that code to today's figures. Rerunning this script
with today's code rewrites the inputs only; the warehouse of 0d660ff cannot be made again.

    python tests/cases/warehouse_v1/make.py [--warehouse]
"""

from __future__ import annotations

import gzip
import random
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from otlp_factory import (  # noqa: E402
    BASE_NS,
    NS,
    SpanSpec,
    evaluation_event,
    evaluation_log,
    jsonl,
    logs_request,
    traces_request,
)


def build() -> tuple[bytes, bytes]:
    rng = random.Random(20261201)

    def hexid(n: int) -> str:
        return "".join(rng.choice("0123456789abcdef") for _ in range(2 * n))

    gateway, chat, labels = [], [], []
    for i in range(240):
        trace = hexid(16)
        start = BASE_NS + i * 45 * NS  # three hours
        state = "ot=th:c" if rng.random() < 0.3 else None  # kept by a 25% sampler: x4
        error = rng.random() < 0.1
        gw = SpanSpec("GET /ask", trace, hexid(8), "", 2, start, rng.uniform(200, 900))
        gw.status_code = 2 if error else 0
        server = SpanSpec(
            "POST /chat", trace, hexid(8), gw.span_id, 2, start + NS // 100, gw.duration_ms - 20
        )
        llm = SpanSpec(
            "chat m1",
            trace,
            hexid(8),
            server.span_id,
            3,
            start + NS // 50,
            server.duration_ms - 20,
            attributes={
                "gen_ai.request.model": "m1" if i % 3 else "m2",
                "gen_ai.usage.input_tokens": rng.randint(10, 4000),
                "gen_ai.usage.output_tokens": rng.randint(1, 800),
            },
        )
        if i % 4 == 0:
            llm.events.append(evaluation_event(label="pass" if rng.random() < 0.8 else "fail"))
        if i % 5 == 0:
            labels.append(evaluation_log(trace, llm.span_id, value=rng.random(), time_ns=start))
        for target, spans in ((gateway, [gw]), (chat, [server, llm])):
            for s in spans:
                doc = s.to_json()
                if state:
                    doc["traceState"] = state
                target.append(doc)
    requests = []
    for service, docs in (("gateway", gateway), ("chat", chat)):
        request = traces_request({"service.name": service, "service.version": "1"}, [])
        request["resourceSpans"][0]["scopeSpans"][0]["spans"] = docs
        requests.append(request)
    return jsonl(*requests), jsonl(logs_request({"service.name": "review"}, labels))


def main() -> None:
    spans, logs = build()
    (HERE / "spans.jsonl").write_bytes(spans)
    (HERE / "labels.jsonl").write_bytes(logs)
    if "--warehouse" in sys.argv:
        from ingest.traces import ingest_paths
        from warehouse.config import Config
        from warehouse.db import Warehouse

        path = HERE / "warehouse.duckdb"
        path.unlink(missing_ok=True)
        summary = ingest_paths(
            Warehouse(path), [HERE / "spans.jsonl", HERE / "labels.jsonl"], Config()
        )
        assert summary.ok, summary.failures
        with path.open("rb") as src, gzip.open(f"{path}.gz", "wb", compresslevel=9) as dst:
            shutil.copyfileobj(src, dst)
        path.unlink()
        Path(f"{path}.lock").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
