"""The Prometheus puller's paging, durations and failures, against servers on 127.0.0.1."""

from __future__ import annotations

import argparse
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from hybridlens import gpu_args, ingest_gpu_prometheus
from ingest.gpu.durations import parse_duration
from ingest.gpu.prometheus_api import (
    MAX_POINTS,
    PrometheusUrlError,
    pages,
    pull_range,
)
from ingest.gpu.readings import UTIL, Parsed, ReadOptions

T0 = datetime(2026, 10, 26, 8, 0, tzinfo=UTC)
Respond = Callable[[BaseHTTPRequestHandler], None]


@pytest.fixture
def server() -> Iterator[Callable[[Respond], str]]:
    """A server on 127.0.0.1 whose every GET is answered by the test's function."""
    started: list[ThreadingHTTPServer] = []

    def start(respond: Respond) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                respond(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        started.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


def _send(h: BaseHTTPRequestHandler, code: int, body: bytes, kind: str = "application/json",
          **headers: str) -> None:  # fmt: skip
    h.send_response(code)
    h.send_header("Content-Type", kind)
    h.send_header("Content-Length", str(len(body)))
    for k, v in headers.items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(body)


def _matrix(series: list[dict[str, object]]) -> bytes:
    return orjson.dumps({"status": "success", "data": {"resultType": "matrix", "result": series}})


def test_durations_read_as_prometheus_spells_them() -> None:
    assert parse_duration("60s") == timedelta(seconds=60)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("250ms") == timedelta(milliseconds=250)
    for bad in ("", "10", "ten s", "1h 30m", "0s", "-5m", "1000y"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="is not a duration"):
        gpu_args.duration("soon")


def test_pages_cover_every_instant_once_within_the_point_cap() -> None:
    step = timedelta(seconds=15)
    start = T0 + timedelta(seconds=7)  # aligned down to 08:00:00
    end = T0 + timedelta(days=90)
    got = pages(start, end, step)
    instants: list[datetime] = []
    for a, b in got:
        n = int((b - a) / step) + 1
        assert n <= MAX_POINTS
        instants += [a + i * step for i in range(n)]
    assert instants[0] == T0 and instants[-1] == end
    assert len(instants) == len(set(instants)) == 90 * 86400 // 15 + 1
    assert instants == sorted(instants)
    assert all(b - a == step for a, b in itertools.pairwise(instants))
    assert len(got) == -(-len(instants) // MAX_POINTS)
    assert pages(T0, T0, step) == [(T0, T0)]
    with pytest.raises(ValueError):
        pages(T0, end, timedelta(0))


def test_series_of_each_field_join_into_readings(server: Callable[[Respond], str]) -> None:
    asked: list[dict[str, list[str]]] = []

    def respond(h: BaseHTTPRequestHandler) -> None:
        q = parse_qs(urlsplit(h.path).query)
        asked.append(q)
        name = q["query"][0].split("{")[0]
        labels = {"__name__": name, "UUID": "GPU-1", "Hostname": "h1", "job": "dcgm"}
        start = datetime.fromisoformat(q["start"][0]).timestamp()
        values: list[list[object]] = [[start, "50"], [start + 60, "NaN"]]
        if name == "DCGM_FI_DEV_GPU_UTIL":
            values.append([start, "51"])  # the same instant twice
            values.append(["soon", "1"])
        _send(h, 200, _matrix([{"metric": labels, "values": values}, {"metric": 3}]))

    base = server(respond)
    fields = ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_GPU_TEMP")
    minute = timedelta(minutes=1)
    pull = pull_range(base, T0, T0 + minute, minute, selector='{job="dcgm"}', fields=fields)
    assert pull.error is None and (pull.pages, pull.queries) == (1, 2)
    assert [q["query"][0] for q in asked] == [
        'DCGM_FI_DEV_GPU_UTIL{job="dcgm"}',
        'DCGM_FI_DEV_GPU_TEMP{job="dcgm"}',
    ]
    assert asked[0]["step"] == ["60"] and asked[0]["start"] == ["2026-10-26T08:00:00.000Z"]
    first, second = pull.parsed.readings
    assert first.ts == T0 and second.ts == T0 + timedelta(minutes=1)
    assert first.labels == {"UUID": "GPU-1", "Hostname": "h1", "job": "dcgm"}
    assert first.fields == {UTIL: 51.0, "DCGM_FI_DEV_GPU_TEMP": 50.0}
    assert second.fields[UTIL] != second.fields[UTIL]  # NaN, for the samples builder to null
    assert pull.parsed.skipped["duplicate points"] == 1
    errors = sorted(r.error for r in pull.parsed.rejected)
    assert errors[0].startswith("a point that is not [time, value]")
    assert errors.count("a series without metric labels or values") == 2


@pytest.mark.parametrize(
    ("respond", "sentence"),
    [
        (lambda h: _send(h, 200, b"<html><body>Sign in</body></html>", "text/html"),
         "answered text/html, not the Prometheus API's JSON"),
        (lambda h: _send(h, 400, orjson.dumps({"status": "error", "errorType": "bad_data",
                                               "error": "parse error"})),
         "refused the query 'DCGM_FI_DEV_GPU_UTIL': bad_data: parse error"),
        (lambda h: _send(h, 302, b"", Location=h.path),
         "HTTP 302"),
        (lambda h: _send(h, 302, b"", Location="file:///etc/passwd"),
         "Redirection to url 'file:///etc/passwd' is not allowed"),
        (lambda h: _send(h, 302, b"", Location="ftp://127.0.0.1/x"),
         "redirect to a non-http(s) URL"),
        (lambda h: _send(h, 200, orjson.dumps({"status": "success", "data": {
            "resultType": "vector", "result": []}})),
         "answered a 'vector' result where a range query gives a matrix"),
    ],
    ids=["html", "api-error", "redirect-loop", "redirect-to-file", "redirect-to-ftp", "vector"],
)  # fmt: skip
def test_an_answer_that_is_not_a_matrix_is_one_sentence(
    server: Callable[[Respond], str], respond: Respond, sentence: str
) -> None:
    base = server(respond)
    pull = pull_range(base, T0, T0, timedelta(minutes=1), retries=2, sleep=lambda s: None)
    assert pull.error is not None and sentence in pull.error
    assert base.removeprefix("http://") in pull.error or "127.0.0.1" in pull.error
    assert pull.queries == 0 and pull.parsed.readings == []


def test_a_500_is_retried_with_backoff_and_then_named(server: Callable[[Respond], str]) -> None:
    calls: list[int] = []

    def respond(h: BaseHTTPRequestHandler) -> None:
        calls.append(1)
        if len(calls) <= 2:
            _send(h, 503, b"busy", "text/plain")
        else:
            _send(h, 200, _matrix([]))

    waits: list[float] = []
    base = server(respond)
    pull = pull_range(base, T0, T0, timedelta(minutes=1), fields=("DCGM_FI_DEV_GPU_UTIL",),
                      retries=2, backoff_s=1.0, sleep=waits.append)  # fmt: skip
    assert pull.error is None and waits == [1.0, 2.0] and len(calls) == 3
    calls.clear()
    waits.clear()
    pull = pull_range(base, T0, T0, timedelta(minutes=1), retries=1, sleep=waits.append)
    assert pull.error is not None and "HTTP 503" in pull.error and waits == [1.0]


def test_a_server_that_hangs_fails_within_its_timeout(server: Callable[[Respond], str]) -> None:
    release = threading.Event()

    def hang(h: BaseHTTPRequestHandler) -> None:
        release.wait(10)

    base = server(hang)
    began = time.monotonic()
    try:
        pull = pull_range(base, T0, T0, timedelta(minutes=1), timeout_s=0.3, retries=1,
                          sleep=lambda s: None)  # fmt: skip
    finally:
        release.set()
    assert time.monotonic() - began < 3
    assert pull.error is not None
    assert "did not answer within 0.3 s after 2 tries" in pull.error


def test_a_failed_page_keeps_the_whole_pages_before_it(server: Callable[[Respond], str]) -> None:
    def respond(h: BaseHTTPRequestHandler) -> None:
        q = parse_qs(urlsplit(h.path).query)
        start = datetime.fromisoformat(q["start"][0])
        if start > T0 + timedelta(minutes=1) and "TEMP" in q["query"][0]:
            _send(h, 500, b"boom", "text/plain")
            return
        series: dict[str, object] = {"metric": {"UUID": "GPU-1", "Hostname": "h"},
                  "values": [[start.timestamp(), "1"], [start.timestamp() + 60, "2"]]}  # fmt: skip
        _send(h, 200, _matrix([series]))

    base = server(respond)
    fields = ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_GPU_TEMP")
    pull = pull_range(base, T0, T0 + timedelta(minutes=5), timedelta(minutes=1), max_points=2,
                      fields=fields, retries=0)  # fmt: skip
    assert pull.error is not None and "HTTP 500" in pull.error
    assert pull.pages == 1  # the second page's UTIL was read, its TEMP was not: dropped
    assert [r.ts for r in pull.parsed.readings] == [T0, T0 + timedelta(minutes=1)]
    assert all(set(r.fields) == set(fields) for r in pull.parsed.readings)


def test_only_http_urls_are_pulled() -> None:
    for url in ("file:///etc/passwd", "ftp://host/x", "prometheus:9090", "http://"):
        with pytest.raises(PrometheusUrlError, match="not an http"):
            pull_range(url, T0, T0, timedelta(minutes=1))


def test_the_command_reports_a_dead_server_in_one_sentence_and_exits_1(
    server: Callable[[Respond], str], capsys: pytest.CaptureFixture[str]
) -> None:
    base = server(lambda h: _send(h, 500, b"down", "text/plain"))
    parser = argparse.ArgumentParser()
    gpu_args.add_prometheus_arguments(parser)
    args = parser.parse_args(["--prometheus", base, "--since", "1h", "--step", "5m"])
    loaded: list[tuple[str, Parsed, str | None]] = []

    def load(s: str, uri: str, parsed: Parsed, options: ReadOptions, error: str | None) -> int:
        loaded.append((uri, parsed, error))
        return 0

    assert ingest_gpu_prometheus.run(args, load=load, now=T0) == 1
    [(uri, parsed, error)] = loaded
    assert uri == base and parsed.readings == [] and error is not None
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"hybridlens: error: {error}"
    assert err[-1].count(". ") == 0  # one sentence
    args = parser.parse_args(["--prometheus", base, "--since", "1m", "--step", "5m"])
    assert ingest_gpu_prometheus.run(args, load=load, now=T0) == 2
    assert "--step 0:05:00 is longer than --since" in capsys.readouterr().err
