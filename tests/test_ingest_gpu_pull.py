"""Pulling DCGM endpoints from real HTTP servers on 127.0.0.1: good, hanging, HTML, redirect
loops, 500s, trickling; other schemes refused; a dead endpoint named, the rest loaded."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hybridlens.cli import main
from hybridlens.ingest_gpu import GpuInput, ingest_gpu
from ingest.gpu.pull import Endpoint, pull, pull_all, refusal
from warehouse.config import Config
from warehouse.db import Warehouse

SCRAPE = (Path(__file__).parent / "cases" / "gpu" / "k8s-mig-scrape.prom").read_bytes()
# the same page without its `# scraped at` line: the puller stamps it
LIVE = SCRAPE.split(b"\n", 1)[1]


class Handler(BaseHTTPRequestHandler):
    hits: dict[str, int] = {}  # noqa: RUF012 (shared across requests of one server on purpose)

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        Handler.hits[self.path] = Handler.hits.get(self.path, 0) + 1
        if self.path == "/metrics":
            self._send(200, LIVE, "text/plain; version=0.0.4")
        elif self.path == "/hang":
            time.sleep(10)
            self._send(200, LIVE, "text/plain")
        elif self.path == "/html":
            self._send(200, b"<!doctype html><html><body>Grafana login</body></html>", "text/html")
        elif self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop2")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/loop2":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/to-file":
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/flaky":  # 500 on the first try, then the page
            if Handler.hits[self.path] == 1:
                self._send(500, b"internal error", "text/plain")
            else:
                self._send(200, LIVE, "text/plain")
        elif self.path == "/500":
            self._send(500, b"internal error", "text/plain")
        elif self.path == "/trickle":  # a byte every 0.2 s: each read is quick, the whole slow
            self.send_response(200)
            self.send_header("Content-Length", str(len(LIVE)))
            self.end_headers()
            try:
                for i in range(50):
                    self.wfile.write(LIVE[i : i + 1])
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass  # the client gave up, as it should
        else:
            self._send(404, b"not found", "text/plain")

    def _send(self, code: int, body: bytes, kind: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):  # a client that timed out is gone
            self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[str]:
    Handler.hits = {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.block_on_close = False  # the hanging handlers are left to die with the test run
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def fast(url: str, timeout_s: float = 0.5, retries: int = 2) -> Endpoint:
    return Endpoint(url, timeout_s, retries)


def test_a_good_endpoint_is_stamped_with_its_scrape_time(server: str) -> None:
    got = pull(fast(f"{server}/metrics"))
    assert got.error is None and got.attempts == 1 and got.body is not None
    assert got.body.startswith(b"# scraped at 20") and got.body.endswith(LIVE)


def test_a_hanging_endpoint_is_cut_off_and_retried_with_backoff(server: str) -> None:
    waits: list[float] = []
    started = time.monotonic()
    got = pull(fast(f"{server}/hang", 0.3, 2), backoff_s=0.01, sleep=waits.append)
    assert time.monotonic() - started < 6  # three attempts of 0.3 s, not one of 10 s
    assert got.attempts == 3 and waits == [0.01, 0.02]
    assert got.error == f"could not pull {server}/hang: no answer within 0.3 s (3 attempts)"


def test_a_trickling_endpoint_is_held_to_the_whole_deadline(server: str) -> None:
    started = time.monotonic()
    got = pull(fast(f"{server}/trickle", 0.5, 0), sleep=lambda s: None)
    assert time.monotonic() - started < 5  # the whole body would take 10 s
    assert got.error is not None and "longer than 0.5 s" in got.error


@pytest.mark.parametrize(
    ("path", "says", "attempts"),
    [
        ("/html", "an HTML page, not metrics", 1),
        ("/loop", "redirect loop", 1),
        ("/to-file", "redirected to file:///etc/passwd, which is not http(s)", 1),
        ("/nothing-here", "HTTP 404 Not Found", 1),
        ("/500", "HTTP 500 Internal Server Error", 3),
    ],
)
def test_failures_that_will_not_pass_are_not_retried(
    server: str, path: str, says: str, attempts: int
) -> None:
    got = pull(fast(server + path), backoff_s=0.0)
    assert got.error is not None and says in got.error and got.attempts == attempts
    assert got.error.startswith(f"could not pull {server}{path}: ")


def test_a_500_that_passes_is_retried_into_a_page(server: str) -> None:
    got = pull(fast(f"{server}/flaky"), backoff_s=0.0)
    assert got.error is None and got.attempts == 2


def test_a_refused_connection_and_other_schemes(server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    dead = pull(
        fast(f"http://127.0.0.1:{port + 1 if port < 65535 else 1}/metrics", 0.3, 1), backoff_s=0
    )
    assert dead.error is not None and dead.attempts == 2
    for url in ("file:///etc/passwd", "ftp://127.0.0.1/metrics", "gopher://x", "/etc/passwd"):
        got = pull(Endpoint(url))
        assert (
            got.attempts == 0 and got.error is not None and "only http:// and https://" in got.error
        )
    assert refusal("http:///metrics") == "http:///metrics names no host"
    assert refusal("HTTPS://127.0.0.1/metrics") is None


def test_endpoints_are_pulled_at_once_not_one_after_another(server: str) -> None:
    started = time.monotonic()
    results = pull_all([fast(f"{server}/hang", 1.0, 0) for _ in range(8)])
    assert time.monotonic() - started < 5  # 8 x 1 s in sequence would be 8 s
    assert [r.endpoint.url for r in results] == [f"{server}/hang"] * 8


def test_a_dead_endpoint_is_recorded_while_the_others_load(
    server: str, warehouse: Warehouse
) -> None:
    inputs = [
        GpuInput(f"{server}/metrics", "onprem-fra"),
        GpuInput(f"{server}/500", "onprem-fra", timeout_s=0.5, retries=1),
    ]
    done = ingest_gpu(warehouse, inputs, Config(), backoff_s=0.0)
    assert done.report.rows("gpu_samples") == 4
    assert [p.endpoint.url for p in done.failed_pulls] == [f"{server}/500"]
    with warehouse.write() as con:
        log = con.execute("SELECT uri, status, message FROM ingest_log ORDER BY uri").fetchall()
        envs = con.execute("SELECT DISTINCT environment FROM gpu_samples").fetchall()
    assert [(u, s) for u, s, _ in log] == [(f"{server}/500", "failed"), (f"{server}/metrics", "ok")]
    assert "HTTP 500 Internal Server Error (2 attempts)" in log[0][2]
    assert envs == [("onprem-fra",)]


def test_the_command_names_the_dead_endpoint_in_one_sentence(
    server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "hybridlens.toml"
    config.write_text(
        f'[[sources.gpu]]\nurl = "{server}/metrics"\nenvironment = "lab"\n'
        f'[[sources.gpu]]\nurl = "{server}/html"\ntimeout_seconds = 0.5\nretries = 0\n'
    )
    db = str(tmp_path / "w.duckdb")
    status = main(["ingest", "gpu", "--warehouse", db, "--config", str(config)])
    err = capsys.readouterr().err
    assert status == 1
    last = err.strip().splitlines()[-1]
    assert last == (
        f"1 of 2 endpoints could not be pulled: could not pull {server}/html: it answered an "
        "HTML page, not metrics (is this the /metrics URL?) (1 attempt)."
    )
    assert "loaded 4 GPU samples" in err
