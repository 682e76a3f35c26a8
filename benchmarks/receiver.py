"""OTLP/HTTP receiver throughput: SDK exporters pushing batches at an in-process receiver.

    .venv/bin/python benchmarks/receiver.py [--clients 4] [--batch 512] [--seconds 20]
    .venv/bin/python benchmarks/receiver.py --mode discard   # the clients' own limit
    .venv/bin/python benchmarks/receiver.py --mode compare   # both, and their ratio
    .venv/bin/python benchmarks/receiver.py --sections       # where the server's time goes
    .venv/bin/python benchmarks/receiver.py --loader-nice 0  # loader at the handlers' priority

Each client is its own process with the real `OTLPSpanExporter` (protobuf, keep-alive),
calling export() on batches of fresh spans back to back. The receiver runs in this
process with its default spool and 2 s loader. Prints figures; asserts nothing. The
clients' protobuf encoding competes with the receiver for the same cores, so quote the
core count with the numbers. `--mode discard` points the same clients at a server that
reads each body and answers an empty 200 (no decode, no spool, no warehouse): what the
clients can push on this machine. `--mode compare` runs both and prints the receiver's
acknowledged spans/s as a ratio of the discard server's (the target is >= 0.8).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.receiver import DEFAULT_LOADER_NICE, Receiver
from warehouse.config import Config
from warehouse.db import Warehouse
from warehouse.lock import lock_stats, reset_lock_stats

RESOURCE = {
    "service.name": "chat-api",
    "service.version": "1.4.2",
    "deployment.environment.name": "eu-prod",
    "cloud.provider": "aws",
    "cloud.region": "eu-west-1",
    "host.name": "gpu-node-17",
}
ATTRIBUTES: dict[str, str | int] = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "llama-3-70b",
    "gen_ai.response.model": "llama-3-70b-instruct",
    "gen_ai.usage.input_tokens": 812,
    "gen_ai.usage.output_tokens": 164,
    "server.address": "inference.internal",
    "server.port": 8000,
}


def client(url: str, batch_size: int, seconds: float, results: Any) -> None:
    """Push batches until the deadline; report (acked spans, request and export() latencies,
    failed exports)."""
    import requests
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExportResult
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

    resource = Resource.create(RESOURCE)
    scope = InstrumentationScope("benchmarks.receiver", "1")
    flags = TraceFlags(1)
    requests_s: list[float] = []

    class TimedSession(requests.Session):
        """Times the HTTP exchange alone, without the exporter's protobuf encoding."""

        def request(self, *a: Any, **kw: Any) -> requests.Response:
            started = time.perf_counter()
            try:
                return super().request(*a, **kw)
            finally:
                requests_s.append(time.perf_counter() - started)

    exporter = OTLPSpanExporter(endpoint=url, timeout=30, session=TimedSession())
    rng = random.Random(os.getpid())

    def batch() -> list[ReadableSpan]:
        now = time.time_ns()
        spans = []
        for _ in range(batch_size):
            duration = int(rng.lognormvariate(19.5, 0.6))  # ~300 ms
            spans.append(
                ReadableSpan(
                    name="chat llama-3-70b",
                    context=SpanContext(
                        rng.getrandbits(128) | 1, rng.getrandbits(64) | 1, False, flags
                    ),
                    resource=resource,
                    attributes=ATTRIBUTES,
                    kind=SpanKind.SERVER,
                    start_time=now - duration,
                    end_time=now,
                    instrumentation_scope=scope,
                )
            )
        return spans

    acked = failed = 0
    exports_s: list[float] = []
    first = time.time()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        spans = batch()
        started = time.perf_counter()
        result = exporter.export(spans)
        exports_s.append(time.perf_counter() - started)
        if result == SpanExportResult.SUCCESS:
            acked += len(spans)
        else:
            failed += 1
    exporter.shutdown()  # type: ignore[no-untyped-call]
    results.put((acked, requests_s, exports_s, failed, first, time.time()))


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    q = statistics.quantiles(seconds, n=100, method="inclusive")
    return q[49] * 1000, q[98] * 1000


class _Discard(BaseHTTPRequestHandler):
    """Reads the body and acknowledges it: the cheapest server an exporter can talk to."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _push(port: int, args: argparse.Namespace) -> tuple[list[Any], float]:
    """Run the client processes against a port; (their outcomes, the push window in s)."""
    ctx = multiprocessing.get_context("spawn")  # no fork of a process with live threads
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=client,
            args=(f"http://127.0.0.1:{port}/v1/traces", args.batch, args.seconds, results),
        )
        for _ in range(args.clients)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=args.seconds + 120) for _ in procs]
    for p in procs:
        p.join(30)
    # The push window: from the first client's first export to the last one's end
    # (process start-up and imports are not counted).
    window = max(o[5] for o in outcomes) - min(o[4] for o in outcomes)
    return outcomes, window


def _summary(label: str, outcomes: list[Any], window: float) -> float:
    acked = sum(o[0] for o in outcomes)
    request_q = _percentiles([x for o in outcomes for x in o[1]])
    export_q = _percentiles([x for o in outcomes for x in o[2]])
    exports = sum(len(o[2]) for o in outcomes)
    failed = sum(o[3] for o in outcomes)
    print(f"{label}:")
    print(f"  exports acknowledged:   {exports - failed:,} ({failed} failed)")
    print(f"  spans acknowledged:     {acked:,} = {acked / window:,.0f} spans/s")
    print(
        f"  HTTP request latency:   p50 {request_q[0]:.1f} ms, p99 {request_q[1]:.1f} ms "
        "(send to 200)"
    )
    print(
        f"  export() latency:       p50 {export_q[0]:.1f} ms, p99 {export_q[1]:.1f} ms "
        "(adds the client's protobuf encoding)"
    )
    return float(acked / window)


def run_discard(args: argparse.Namespace) -> float:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Discard)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        outcomes, window = _push(int(server.server_address[1]), args)
    finally:
        server.shutdown()
        server.server_close()
    return _summary("discard server (acknowledges and drops)", outcomes, window)


class Sections:
    """Wall and thread CPU time per section of the server's work, patched in for one run.

    Thread CPU (`time.thread_time`) is what a section cost the machine; wall minus CPU is
    time spent waiting for a core, the GIL or the disk. DuckDB's worker threads are not in
    any section: the process total includes them.
    """

    PATCHES = (
        ("ingest.http_server", "Handler", "_dispatch", "request (all of it)"),
        ("ingest.http_server", "Handler", "_receive", "  read the body"),
        ("ingest.http_server", None, "decode", "  decode and map"),
        ("ingest.spool", "Spool", "append", "  spool append"),
        ("ingest.spool", "Spool", "_sync", "    of which fsync"),
        ("ingest.http_server", "Handler", "_send", "  send the reply"),
        ("ingest.receiver", "Receiver", "flush", "loader flush (all of it)"),
        ("ingest.spool_loader", "SpoolLoader", "_stage", "  stage mapped rows"),
        ("ingest.spool_loader", None, "publish", "  publish"),
    )

    def __init__(self) -> None:
        self.totals: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._undo: list[tuple[Any, str, Any]] = []
        self._cpu = 0.0

    def __enter__(self) -> Sections:
        for module_name, cls, attr, label in self.PATCHES:
            owner: Any = importlib.import_module(module_name)
            if cls is not None:
                owner = getattr(owner, cls)
            original = getattr(owner, attr)
            self._undo.append((owner, attr, original))
            setattr(owner, attr, self._timed(original, label))
        self._cpu = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self._cpu = time.process_time() - self._cpu
        for owner, attr, original in reversed(self._undo):
            setattr(owner, attr, original)

    def _timed(self, fn: Any, label: str) -> Any:
        self.totals[label] = [0, 0.0, 0.0]

        def timed(*a: Any, **kw: Any) -> Any:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*a, **kw)
            finally:
                with self._lock:
                    row = self.totals[label]
                    row[0] += 1
                    row[1] += time.perf_counter() - wall
                    row[2] += time.thread_time() - cpu

        return timed

    def print(self) -> None:
        print(f"  where the server's time went (process CPU {self._cpu:.2f} s in all):")
        for label, (calls, wall, cpu) in self.totals.items():
            if calls:
                print(
                    f"    {label:26s} {calls:5.0f} calls, per call: wall {wall / calls * 1000:7.1f}"
                    f" ms, CPU {cpu / calls * 1000:6.1f} ms; CPU in all {cpu:6.2f} s"
                )


def run_receiver(args: argparse.Namespace) -> float:
    sections = Sections() if args.sections else contextlib.nullcontext()
    with sections, tempfile.TemporaryDirectory(prefix="hybridlens-bench-receiver-") as tmp:
        warehouse = Warehouse(Path(tmp) / "bench.duckdb")
        receiver = Receiver(
            warehouse, Config(), spool_dir=Path(tmp) / "spool", loader_nice=args.loader_nice
        )
        port = receiver.start()
        reset_lock_stats()
        outcomes, window = _push(port, args)
        loaded_in_window = receiver.stats.loaded_spans
        backlog = receiver.spool.backlog
        drain_started = time.monotonic()
        receiver.stop()
        drain = time.monotonic() - drain_started
        stats = receiver.stats
        with warehouse.read() as con:
            in_warehouse = con.execute("SELECT count(*) FROM spans").fetchall()[0][0]
    rate = _summary("hybridlens receiver (spooled, fsync'd, loaded)", outcomes, window)
    locks = lock_stats()
    print(
        f"  spans loaded in window: {loaded_in_window:,} = {loaded_in_window / window:,.0f} spans/s"
    )
    print(
        f"  spool backlog at the window's end: {backlog / 2**20:.1f} MiB "
        f"(loader nice +{args.loader_nice} while it lags under {receiver.loader_max_lag_s:g} s)"
    )
    print(
        f"  after the clients stop: final flush {drain:.1f} s; {in_warehouse:,} spans in the "
        f"warehouse = {in_warehouse / (window + drain):,.0f} spans/s end to end"
    )
    print(
        f"  loader: {stats.segments_loaded} segments ({stats.segments_failed} set aside), "
        f"longest publish {stats.longest_publish_ms:.0f} ms, longest write-lock hold "
        f"{locks['longest_write_hold_s'] * 1000:.0f} ms over {locks['write_holds']:.0f} holds"
    )
    print(
        f"  memory budgets: decode peak {receiver.decoding.peak:,} of "
        f"{receiver.decoding.capacity:,} B, buffered peak {receiver.buffered.peak:,} of "
        f"{receiver.buffered.capacity:,} B"
    )
    if stats.rejected_requests:
        print(f"  refused requests:       {dict(stats.rejected_requests)}")
    if isinstance(sections, Sections):
        sections.print()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--loader-nice", type=int, default=DEFAULT_LOADER_NICE, help="0: same priority as handlers"
    )
    parser.add_argument(
        "--sections", action="store_true", help="time the server's work section by section"
    )
    parser.add_argument("--mode", choices=("receiver", "discard", "compare"), default="receiver")
    args = parser.parse_args()
    print(
        f"receiver benchmark: {args.clients} SDK exporter processes x batches of {args.batch} "
        f"spans, {args.seconds:.0f} s, {os.cpu_count()} CPUs (clients and server share them)"
    )
    discard = run_discard(args) if args.mode in ("discard", "compare") else None
    received = run_receiver(args) if args.mode in ("receiver", "compare") else None
    if discard and received is not None:
        print(f"receiver / discard spans/s: {received / discard:.2f} (target >= 0.8)")


if __name__ == "__main__":
    main()
