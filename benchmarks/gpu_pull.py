"""A pull of 100 DCGM endpoints (8 GPUs each) served on 127.0.0.1, against one 15 s scrape
interval.

    python benchmarks/gpu_pull.py [--endpoints 100] [--gpus 8] [--runs 3]

Each endpoint is its own HTTP server (a thread of this process) serving a dcgm-exporter
page of `--gpus` GPUs, as a node's exporter would. Figures: the pull alone
(`ingest.gpu.pull.pull_all`, every body read), and the whole `ingest gpu` of all the URLs
into a fresh warehouse (pull, parse, build, publish), each as a share of the 15 s
interval; the slowest endpoint; peak RSS. Best of `--runs`. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.gpu_exposition import exposition
from hybridlens.ingest_gpu import GpuInput, ingest_gpu
from ingest.gpu.pull import Endpoint, pull_all
from warehouse.config import Config
from warehouse.db import Warehouse

INTERVAL_S = 15.0


def serve(page: bytes) -> ThreadingHTTPServer:
    class Page(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoints", type=int, default=100)
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    servers = [
        serve(
            exposition(1, args.gpus, seed=i).replace("gpu-node-0000", f"gpu-node-{i:04d}").encode()
        )
        for i in range(args.endpoints)
    ]
    urls = [f"http://127.0.0.1:{s.server_address[1]}/metrics" for s in servers]
    size = len(exposition(1, args.gpus))
    print(f"{args.endpoints} endpoints x {args.gpus} GPUs, {size / 1e3:.0f} kB a page")
    pulls, slowest = [], 0.0
    for _ in range(args.runs):
        started = time.perf_counter()
        results = pull_all([Endpoint(u) for u in urls])
        pulls.append(time.perf_counter() - started)
        slowest = max(slowest, *(r.seconds for r in results))
        failed = [r.error for r in results if r.error]
        if failed:
            print(f"  {len(failed)} failed, e.g. {failed[0]}")
    loads = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            warehouse = Warehouse(Path(tmp) / f"w{i}.duckdb")
            started = time.perf_counter()
            done = ingest_gpu(warehouse, [GpuInput(u) for u in urls], Config())
            loads.append(time.perf_counter() - started)
            rows = done.report.rows("gpu_samples")
    for name, t in (("pull alone", min(pulls)), ("ingest gpu (pull + parse + load)", min(loads))):
        print(f"{name:34s} {t:7.2f} s  = {t / INTERVAL_S:5.2f} of a {INTERVAL_S:g} s interval")
    print(f"slowest single endpoint {slowest:.2f} s; {rows:,} GPU samples per load")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MiB")
    for s in servers:
        s.shutdown()
        s.server_close()


if __name__ == "__main__":
    main()
