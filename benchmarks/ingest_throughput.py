"""Trace file ingest throughput against the practical limit measured on the same file.

    .venv/bin/python benchmarks/ingest_throughput.py [--spans 1000000] [--memory-spans 5000000]
        [--profile 100000]

The limit is DuckDB's own `read_json` with an explicit OTLP schema,
format='newline_delimited', records=true, UNNESTed into a flat table with the mapped
columns (attribute extraction included). hybridlens is timed through the command's own
`main` (`hybridlens ingest traces FILE`) in this process, from the command's start, as the
limit is timed from its first statement. Prints figures; asserts nothing. Quote the
ratios: the machines are shared and noisy.

The parse path alone (the collector in this process, no worker pool, no publish) is
timed in CPU seconds, so its figures stay comparable when other processes share the
machine; `--profile N` prints where that time goes for the first N spans of each file.
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

from otlp_corpus import SPANS_PER_REQUEST, corpus

from ingest.otlp_files import CHUNK_BYTES

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


def _cpu() -> float:
    """CPU seconds of this process (every thread, DuckDB's too) and its reaped children
    (a load's worker pool is joined before the load returns)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


CPU: dict[str, float] = {}  # CPU seconds of each end-to-end figure, by its name


def duckdb_limit(path: Path) -> tuple[int, float]:
    con = duckdb.connect()
    t, cpu = time.perf_counter(), _cpu()
    con.execute(DUCKDB_LIMIT_SQL[0], [str(path)])
    for statement in DUCKDB_LIMIT_SQL[1:]:
        con.execute(statement)
    elapsed = time.perf_counter() - t
    CPU["duckdb"] = _cpu() - cpu
    n = con.execute("SELECT count(*) FROM flat").fetchall()[0][0]
    con.close()
    return n, elapsed


def ours(path: Path, chunk_bytes: int | None = None) -> tuple[int, float, float]:
    """End to end as `hybridlens ingest traces PATH` runs it, in this process (timed from
    the command's start, as the limit is from its first statement; the interpreter's start
    and imports are neither's). `chunk_bytes` overrides the collector's piece size. Its CPU
    seconds, workers included, go to CPU[path.suffix].

    Through the command's own `main`, not `ingest_paths`: the console script tells pyarrow
    there is no pandas before it loads (`warehouse.stage.warm_arrow`), and a load called
    from Python imports pandas at pyarrow's first conversion instead (0.2-0.3 s before the
    workers start). Measured that way, the first load of the run paid for the import and
    the second did not, so protobuf / JSON lines leaned towards protobuf."""
    import contextlib
    import io

    from hybridlens.cli import main as command
    from ingest.driver import load
    from ingest.files import discover
    from ingest.otlp_files import OtlpFiles
    from warehouse.config import Config
    from warehouse.db import Warehouse
    from warehouse.lock import lock_stats, reset_lock_stats

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        reset_lock_stats()
        t, cpu = time.perf_counter(), _cpu()
        if chunk_bytes is None:
            argv = ["ingest", "traces", str(path), "--warehouse", str(db)]
            said = io.StringIO()  # its summary goes to stderr, the rest to stdout
            with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
                status = command(argv, own_process=True)
            if status != 0:
                raise SystemExit(f"hybridlens ingest exited {status}:\n{said.getvalue()}")
        else:
            wh = Warehouse(db)
            sources, skipped = discover(wh, [path])
            load(wh, sources, Config(), OtlpFiles(chunk_bytes=chunk_bytes), files_skipped=skipped)
        elapsed = time.perf_counter() - t
        CPU[path.suffix] = _cpu() - cpu
        hold = lock_stats()["longest_write_hold_s"]
        con = duckdb.connect(str(db), read_only=True)
        spans = int(con.execute("SELECT count(*) FROM spans").fetchall()[0][0])
        con.close()
        return spans, elapsed, hold


def _collect(path: Path) -> int:
    from ingest.contract import Unit
    from ingest.otlp_files import OtlpFiles
    from warehouse.config import Config

    unit = Unit(str(path), path, 0, None, True, True, None)
    collected = OtlpFiles(chunk_bytes=path.stat().st_size).collect(unit, Config())
    return int(collected.frames["spans"].num_rows)


def parse_only(path: Path) -> tuple[int, float]:
    """Spans parsed by the collector in this process, and the CPU seconds it took."""
    import pyarrow as pa

    pa.array(["warm"])  # pyarrow's first conversion sets itself up: not the parse path's cost
    t = time.process_time()
    n = _collect(path)
    return n, time.process_time() - t


def profile(path: Path, spans: int) -> None:
    """cProfile of the collector over the first `spans` spans of `path`."""
    import cProfile
    import pstats

    head = path.with_name(f"head-{spans}{path.suffix}")
    with path.open("rb") as src, head.open("wb") as out:
        for _ in range(spans // SPANS_PER_REQUEST):
            if path.suffix == ".jsonl":
                out.write(src.readline())
            else:
                prefix = src.read(4)
                out.write(prefix + src.read(int.from_bytes(prefix, "big")))
    profiler = cProfile.Profile()
    profiler.enable()
    _collect(head)
    profiler.disable()
    head.unlink()
    print(f"profile of the parse path, first {spans:,} spans of {path.name}:")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(14)


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
        "--chunk-mb",
        default="",
        help="also load the JSON file end to end with these piece sizes (MiB, comma-separated)",
    )
    parser.add_argument(
        "--profile", type=int, default=0, help="cProfile the parse path over this many spans"
    )
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
    print(f"protobuf / JSON lines, end to end: {(n_p / t_p) / (n / t):.2f}x")
    c_lim, c_j, c_p = CPU["duckdb"], CPU[path.suffix], CPU[proto.suffix]
    print(
        f"end to end in CPU seconds (every thread and worker; steadier than wall time on a "
        f"shared machine): duckdb {1e6 * c_lim / n_lim:.1f} us/span, JSON lines "
        f"{1e6 * c_j / n:.1f}, protobuf {1e6 * c_p / n_p:.1f}; JSON lines / limit "
        f"{(n / c_j) / (n_lim / c_lim):.2f}, protobuf / JSON lines {(n_p / c_p) / (n / c_j):.2f}x"
    )
    n_j, c_j = parse_only(path)
    n_pp, c_pp = parse_only(proto)
    print(
        f"parse path alone, one process, CPU time: JSON lines {n_j / c_j:,.0f} spans/s "
        f"({1e6 * c_j / n_j:.1f} us/span), protobuf {n_pp / c_pp:,.0f} spans/s "
        f"({1e6 * c_pp / n_pp:.1f} us/span): protobuf / JSON {(n_pp / c_pp) / (n_j / c_j):.2f}x"
    )
    for mb in filter(None, args.chunk_mb.split(",")):
        n_c, t_c, _ = ours(path, int(float(mb) * 2**20))
        print(
            f"JSON lines in {float(mb):g} MiB pieces (the collector's default is "
            f"{CHUNK_BYTES / 2**20:g}): {n_c / t_c:,.0f} spans/s, ratio to the limit "
            f"{(n_c / t_c) / (n_lim / t_lim):.2f}"
        )
    if args.profile:
        profile(path, args.profile)
        profile(proto, args.profile)
    if args.memory_spans:
        peak_memory(args.memory_spans)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this process peak RSS {rss_mib:,.0f} MiB)")


if __name__ == "__main__":
    main()
