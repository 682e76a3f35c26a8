"""The Prometheus puller against the real Debian `prometheus`, scraping a DCGM exposition.

The test starts `/usr/bin/prometheus` with a temporary config and data folder on a free
127.0.0.1 port, scraping (every second) a tiny HTTP server on 127.0.0.1 that serves a
dcgm-exporter exposition, waits until samples exist, and pulls them back through
`/api/v1/query_range` in many small time pages and in one page: the same readings.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest

from hybridlens import gpu_args, ingest_gpu_prometheus
from ingest.gpu.prometheus_api import MAX_POINTS, pull_range
from ingest.gpu.readings import (
    ENERGY,
    FB_USED,
    FIELDS,
    GR_ENGINE_ACTIVE,
    POWER,
    UTIL,
    Parsed,
    ReadOptions,
)

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
UUIDS = ("GPU-11111111-0000-4000-8000-000000000000", "GPU-22222222-0000-4000-8000-000000000000")
UTILS = (37.0, 81.0)

pytestmark = pytest.mark.skipif(
    not Path(PROMETHEUS).exists(),
    reason="the prometheus binary is not installed (Debian package `prometheus`; .ci/run "
    "installs it)",
)


class _Exporter(BaseHTTPRequestHandler):
    """A dcgm-exporter: two GPUs, fixed utilization, an energy counter that grows."""

    scrapes = 0

    def do_GET(self) -> None:
        type(self).scrapes += 1
        lines = [
            "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).",
            "# TYPE DCGM_FI_DEV_GPU_UTIL gauge",
        ]
        for field, values in (
            ("DCGM_FI_DEV_GPU_UTIL", UTILS),
            ("DCGM_FI_DEV_FB_USED", (1024.0, 2048.0)),
            ("DCGM_FI_DEV_POWER_USAGE", (70.5, 300.25)),
            ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", (0.4, 0.9)),
            ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", (1e9, 2e9)),
        ):
            for i, (uuid, value) in enumerate(zip(UUIDS, values, strict=True)):
                labels = (
                    f'gpu="{i}",UUID="{uuid}",pci_bus_id="00000000:0{i}:00.0",'
                    f'device="nvidia{i}",modelName="NVIDIA H100 80GB HBM3",'
                    f'Hostname="gpu-node-1",DCGM_FI_DRIVER_VERSION="550.54.15"'
                )
                lines.append(f"{field}{{{labels}}} {value}")
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _instant(base: str, query: str) -> list[object]:
    url = f"{base}/api/v1/query?query={urllib.parse.quote(query)}"
    with urllib.request.urlopen(url, timeout=5) as r:
        result: list[object] = orjson.loads(r.read())["data"]["result"]
    return result


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("prometheus")
    exporter = ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    threading.Thread(target=exporter.serve_forever, daemon=True).start()
    port = _free_port()
    (root / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: dcgm\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{exporter.server_address[1]}']\n",
        encoding="utf-8",
    )
    log = (root / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:  # until the server has at least 8 s of samples of both GPUs
            if proc.poll() is not None or time.monotonic() > deadline:
                text = (root / "prometheus.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"prometheus did not come up with data: {text}")
            try:
                counts = _instant(base, "count_over_time(DCGM_FI_DEV_GPU_UTIL[1m])")
                if len(counts) == 2 and all(
                    float(c["value"][1]) >= 8  # type: ignore[index]
                    for c in counts
                ):
                    break
            except (OSError, KeyError, ValueError):
                pass
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        exporter.shutdown()
        exporter.server_close()


def _window() -> tuple[datetime, datetime]:
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    return end - timedelta(seconds=4), end


def test_query_range_pages_join_into_one_reading_per_gpu_and_step(prometheus: str) -> None:
    start, end = _window()
    step = timedelta(seconds=1)
    paged = pull_range(prometheus, start, end, step, max_points=2)
    whole = pull_range(prometheus, start, end, step)
    assert paged.error is None and whole.error is None
    assert (paged.pages, whole.pages) == (3, 1)  # 5 instants: 2 + 2 + 1
    assert paged.queries == 3 * len(FIELDS)  # one query per DCGM field per page
    assert [(r.ts, r.labels, r.fields) for r in paged.parsed.readings] == [
        (r.ts, r.labels, r.fields) for r in whole.parsed.readings
    ]
    readings = whole.parsed.readings
    assert len(readings) == 2 * 5  # two GPUs, one reading per second, no duplicates
    assert {r.ts for r in readings} == {start + timedelta(seconds=s) for s in range(5)}
    for r in readings:
        i = UUIDS.index(r.labels["UUID"])
        assert r.fields[UTIL] == UTILS[i]
        assert r.fields[FB_USED] == (1024.0, 2048.0)[i]
        assert r.fields[POWER] == (70.5, 300.25)[i]
        assert r.fields[GR_ENGINE_ACTIVE] == (0.4, 0.9)[i]
        assert r.fields[ENERGY] == (1e9, 2e9)[i]
        assert r.labels["Hostname"] == "gpu-node-1"
        assert r.labels["modelName"] == "NVIDIA H100 80GB HBM3"
        assert r.labels["job"] == "dcgm" and "__name__" not in r.labels
    assert not whole.parsed.rejected


def test_the_command_hands_the_pull_to_the_loader(prometheus: str) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--environment", default=None)
    gpu_args.add_prometheus_arguments(parser)
    args = parser.parse_args(
        [
            *("--prometheus", prometheus, "--since", "5s", "--step", "1s"),
            *("--environment", "lab", "--match", '{job="dcgm"}'),
        ]
    )
    got: list[tuple[str, str, Parsed, ReadOptions, str | None]] = []

    def load(s: str, uri: str, parsed: Parsed, options: ReadOptions, error: str | None) -> int:
        got.append((s, uri, parsed, options, error))
        return 0

    _, end = _window()
    assert ingest_gpu_prometheus.run(args, load=load, now=end) == 0
    [(source, uri, parsed, options, error)] = got
    assert (source, uri, options.environment, error) == ("prometheus-api", prometheus, "lab", None)
    assert len(parsed.readings) == 2 * 6
    args = parser.parse_args(["--prometheus", prometheus, "--match", '{job="nope"}'])
    assert ingest_gpu_prometheus.run(args, load=load, now=end) == 0
    assert got[-1][2].readings == []  # a selector that matches nothing pulls nothing


def test_the_servers_point_cap_is_real_and_paging_stays_under_it(prometheus: str) -> None:
    """A window of more than 11,000 steps in one query is refused by the real server (it
    checks (end - start) / step > 11,000); paged, the same window reads."""
    end = datetime.now(UTC).replace(microsecond=0)
    step = timedelta(milliseconds=10)
    start = end - (MAX_POINTS + 1) * step  # 11,001 steps, 11,002 instants
    one_page = pull_range(prometheus, start, end, step, max_points=MAX_POINTS + 2,
                          fields=("DCGM_FI_DEV_GPU_UTIL",))  # fmt: skip
    assert one_page.error is not None
    assert "exceeded maximum resolution of 11,000 points per timeseries" in one_page.error
    paged = pull_range(prometheus, start, end, step, fields=("DCGM_FI_DEV_GPU_UTIL",))
    assert paged.error is None and (paged.pages, paged.queries) == (2, 2)
    per_gpu: dict[str, list[datetime]] = {}
    for r in paged.parsed.readings:
        per_gpu.setdefault(r.labels["UUID"], []).append(r.ts)
    assert sorted(per_gpu) == sorted(UUIDS)
    for stamps in per_gpu.values():
        assert len(stamps) == len(set(stamps)) > 500  # 10 ms apart, from the first scrape on
        assert all(ts.microsecond % 10_000 == 0 for ts in stamps)  # on the step grid
