"""Trace file ingest throughput against the practical limit measured on the same file.

    .venv/bin/python benchmarks/ingest.py [--spans 1000000] [--memory-spans 5000000]

The limit is DuckDB's own `read_json` with an explicit OTLP schema,
format='newline_delimited', records=true, UNNESTed into a flat table with the mapped
columns (attribute extraction included). Prints figures; asserts nothing. Quote the
ratios: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from otlp_corpus import corpus

ANY = "STRUCT(stringValue VARCHAR, intValue VARCHAR, doubleValue DOUBLE, boolValue BOOLEAN)"
KV = f"STRUCT(key VARCHAR, value {ANY})[]"
SCHEMA = (
    "{resourceSpans: 'STRUCT(resource STRUCT(attributes " + KV + "), scopeSpans STRUCT(scope "
    "STRUCT(name VARCHAR, version VARCHAR), spans STRUCT(traceId VARCHAR, spanId VARCHAR, "
    "parentSpanId VARCHAR, traceState VARCHAR, name VARCHAR, kind INTEGER, startTimeUnixNano "
    "VARCHAR, endTimeUnixNano VARCHAR, attributes " + KV + ", status STRUCT(code INTEGER, "
    "message VARCHAR))[])[])[]'}"
)


def attr(list_expr: str, key: str, field: str = "stringValue") -> str:
    return f"list_extract(list_filter({list_expr}, lambda a: a.key = '{key}'), 1).value.{field}"


# Materialized step by step: one statement with the three levels as CTEs plans far worse.
DUCKDB_LIMIT_SQL = [
    f"""CREATE TABLE r AS SELECT unnest(resourceSpans) AS rs FROM read_json(?, columns={SCHEMA},
        format='newline_delimited', records=true, maximum_object_size=1000000000)""",
    "CREATE TABLE s AS SELECT rs.resource.attributes AS res, unnest(rs.scopeSpans) AS ss FROM r",
    "CREATE TABLE sp AS SELECT res, unnest(ss.spans) AS sp FROM s",
    f"""CREATE TABLE flat AS
SELECT lower(sp.traceId) AS trace_id, lower(sp.spanId) AS span_id,
       nullif(lower(sp.parentSpanId), '') AS parent_span_id,
       {attr("res", "service.name")} AS service,
       {attr("res", "deployment.environment.name")} AS environment,
       {attr("res", "service.version")} AS version,
       {attr("res", "host.name")} AS host,
       sp.name, sp.kind,
       make_timestamp_ns(sp.startTimeUnixNano::BIGINT) AS start_time,
       make_timestamp_ns(sp.endTimeUnixNano::BIGINT) AS end_time,
       (sp.endTimeUnixNano::BIGINT - sp.startTimeUnixNano::BIGINT) / 1e6 AS duration_ms,
       sp.status.code AS status_code,
       {attr("sp.attributes", "gen_ai.request.model")} AS model,
       {attr("sp.attributes", "gen_ai.response.model")} AS response_model,
       {attr("sp.attributes", "gen_ai.operation.name")} AS operation,
       {attr("sp.attributes", "gen_ai.usage.input_tokens", "intValue")}::BIGINT AS input_tokens,
       {attr("sp.attributes", "gen_ai.usage.output_tokens", "intValue")}::BIGINT AS output_tokens,
       to_json(sp.attributes) AS attributes
FROM sp""",
]


def duckdb_limit(path: Path) -> tuple[int, float]:
    con = duckdb.connect()
    t = time.perf_counter()
    con.execute(DUCKDB_LIMIT_SQL[0], [str(path)])
    for statement in DUCKDB_LIMIT_SQL[1:]:
        con.execute(statement)
    elapsed = time.perf_counter() - t
    n = con.execute("SELECT count(*) FROM flat").fetchall()[0][0]
    con.close()
    return n, elapsed


def ours(path: Path) -> tuple[int, float, float]:
    from ingest.traces import ingest_paths
    from warehouse.config import Config
    from warehouse.db import Warehouse
    from warehouse.lock import lock_stats, reset_lock_stats

    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(Path(tmp) / "bench.duckdb")
        reset_lock_stats()
        t = time.perf_counter()
        summary = ingest_paths(wh, [path], Config())
        elapsed = time.perf_counter() - t
        return summary.rows("spans"), elapsed, lock_stats()["longest_write_hold_s"]


def peak_memory(spans: int) -> None:
    """Peak RSS of a fresh process ingesting `spans` spans (`ingest_memory.py` measures it,
    and says which phase holds it)."""
    from ingest_memory import measure

    f = measure(spans)
    phases = f["phase_kib"]
    assert isinstance(phases, dict)
    print(
        f"peak memory, {f['spans']:,} spans from {int(f['file_bytes']) / 1e9:.2f} GB of JSON "  # type: ignore[call-overload]
        f"lines: {int(f['rss_kib']) / 1024:,.0f} MiB RSS in the ingesting process (sampled: "  # type: ignore[call-overload]
        + ", ".join(f"{k / 1024:,.0f} MiB while {p}" for p, k in sorted(phases.items()))
        + f"), the largest worker {int(f['worker_kib']) / 1024:,.0f} MiB "  # type: ignore[call-overload]
        f"({float(f['seconds']):.0f} s; longest lock hold {float(f['lock_hold_s']):.2f} s)"  # type: ignore[arg-type]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument(
        "--memory-spans",
        type=int,
        default=0,
        help="also measure peak RSS ingesting a file of this many spans",
    )
    args = parser.parse_args()
    path = corpus(args.spans)
    proto = corpus(args.spans, "proto")
    print(
        f"file: {path} ({path.stat().st_size / 1e6:,.0f} MB, {args.spans:,} spans, "
        "500 spans per request, two span shapes)"
    )
    n_lim, t_lim = duckdb_limit(path)
    print(
        f"duckdb read_json limit: {n_lim:,} spans in {t_lim:.2f} s = {n_lim / t_lim:,.0f} spans/s"
    )
    n, t, hold = ours(path)
    print(
        f"hybridlens ingest JSON lines: {n:,} spans in {t:.2f} s = {n / t:,.0f} spans/s; "
        f"longest writer lock hold {hold:.2f} s"
    )
    print(f"ratio to the limit: {(n / t) / (n_lim / t_lim):.2f}")
    n_p, t_p, hold_p = ours(proto)
    print(
        f"hybridlens ingest protobuf: {n_p:,} spans in {t_p:.2f} s = {n_p / t_p:,.0f} spans/s; "
        f"longest writer lock hold {hold_p:.2f} s"
    )
    if args.memory_spans:
        peak_memory(args.memory_spans)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this process peak RSS {rss_mib:,.0f} MiB)")


if __name__ == "__main__":
    main()
