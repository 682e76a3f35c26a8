"""`hybridlens ingest traces`: files into a real warehouse, through ingest_paths and the CLI.

Every framing is sniffed from the bytes, bad records land in `quarantine` while the good
ones load, re-reading adds nothing, a growing file is resumed from its offset and a crash
in the middle of a publish leaves the previous state.
"""

from __future__ import annotations

import base64
import functools
import gzip
import http.server
import io
import os
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from otlp_factory import (
    BASE_NS,
    SpanSpec,
    attr,
    evaluation_event,
    evaluation_log,
    jsonl,
    logs_request,
    traces_request,
)

from ingest import driver
from ingest.contract import Unit
from ingest.files import Refused, discover, unit_hash
from ingest.framing import MAX_RECORD_BYTES, Framing, iter_records
from ingest.otlp_files import OtlpFiles
from ingest.traces import ingest_paths
from warehouse import rollups as wload
from warehouse.config import Config
from warehouse.db import Warehouse
from warehouse.report import LoadReport, Status

RESOURCE = {"service.name": "chat-api", "deployment.environment.name": "production"}
TABLES = ("spans", "evaluations", "rollup_hourly", "rollup_latency", "rollup_minutes")


# -- helpers ----------------------------------------------------------------------------------
def ingest(wh: Warehouse, *paths: Path, config: Config | None = None, **kw: Any) -> LoadReport:
    return ingest_paths(wh, list(paths), config or Config(), **kw)


def sql(wh: Warehouse, query: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    if not wh.exists():
        return []
    with wh.read() as con:
        return con.execute(query, params or {}).fetchall()


def count(wh: Warehouse, table: str) -> int:
    return sql(wh, f"SELECT count(*) FROM {table}")[0][0]


def snapshot(wh: Warehouse) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the data tables (without load ids), for before/after comparisons."""
    out = {}
    for table in TABLES:
        out[table] = sorted(
            sql(wh, f"SELECT * EXCLUDE (load_id) FROM {table}")
            if table in ("spans", "evaluations")
            else sql(wh, f"SELECT * FROM {table}"),
            key=repr,
        )
    return out


def span_ids(wh: Warehouse) -> set[str]:
    return {r[0] for r in sql(wh, "SELECT span_id FROM spans")}


def cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real command line in a fresh process (no config file, no env overrides)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYBRIDLENS_")}
    return subprocess.run(
        [sys.executable, "-m", "hybridlens.cli", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def to_proto(doc: dict[str, Any]) -> bytes:
    """The protobuf of an OTLP/JSON traces request (hex ids become bytes)."""
    doc = orjson.loads(orjson.dumps(doc))
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    return json_format.ParseDict(doc, ExportTraceServiceRequest()).SerializeToString()


def frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


def good_line(**attributes: Any) -> tuple[bytes, SpanSpec]:
    spec = SpanSpec(attributes=attributes)
    return jsonl(traces_request(RESOURCE, [spec])), spec


def span_line(span: dict[str, Any], good: SpanSpec | None = None) -> bytes:
    """A request whose first span is `span` (raw OTLP/JSON) and, optionally, a good one."""
    doc = traces_request(RESOURCE, [good] if good else [])
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"].insert(0, span)
    return jsonl(doc)


# -- framings ---------------------------------------------------------------------------------
def _requests() -> tuple[list[dict[str, Any]], list[SpanSpec]]:
    root = SpanSpec(name="POST /v1/chat", events=[evaluation_event("accuracy", label="pass")])
    child = SpanSpec(
        name="chat llama",
        trace_id=root.trace_id,
        parent_span_id=root.span_id,
        kind=3,
        start_ns=BASE_NS + 1_000_000,
        attributes={"gen_ai.request.model": "llama", "gen_ai.usage.input_tokens": 9},
    )
    other = SpanSpec(name="chat mistral", start_ns=BASE_NS + 60 * 10**9, status_code=2)
    return [traces_request(RESOURCE, [root, child]), traces_request(RESOURCE, [other])], [
        root,
        child,
        other,
    ]


def _merged(requests: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceSpans": [rs for r in requests for rs in r["resourceSpans"]]}


FRAMINGS: dict[str, tuple[str, str, str, Callable[[list[dict[str, Any]]], bytes]]] = {
    # name: (file name, sniffed kind, compression, writer)
    "json-lines": ("export.txt", "json-lines", "none", lambda rs: jsonl(*rs)),
    "pretty-document": (
        "export.data",
        "json-document",
        "none",
        lambda rs: orjson.dumps(_merged(rs), option=orjson.OPT_INDENT_2),
    ),
    "gzip-json-lines": ("export.jsonl", "json-lines", "gzip", lambda rs: gzip.compress(jsonl(*rs))),
    "zstd-stream-json-lines": (
        "export.json",
        "json-lines",
        "zstd",
        lambda rs: zstandard.ZstdCompressor().compress(jsonl(*rs)),
    ),
    "legacy-zstd-frames": (
        "export.proto",
        "length-prefixed",
        "none",
        lambda rs: b"".join(
            frame(zstandard.ZstdCompressor().compress(orjson.dumps(r))) for r in rs
        ),
    ),
    "length-prefixed-protobuf": (
        "export.jsonl",
        "length-prefixed",
        "none",
        lambda rs: b"".join(frame(to_proto(r)) for r in rs),
    ),
    "raw-protobuf": ("export.json.gz", "protobuf", "none", lambda rs: to_proto(_merged(rs))),
}


@pytest.mark.parametrize("name", FRAMINGS)
def test_every_framing_is_sniffed_from_the_bytes(tmp_path: Path, warehouse: Warehouse, name):
    filename, kind, compression, write = FRAMINGS[name]
    requests, specs = _requests()
    path = tmp_path / filename
    path.write_bytes(write(requests))

    framing = Framing()
    with path.open("rb") as fh:
        records = list(iter_records(fh, framing))
    assert (framing.kind, framing.compression) == (kind, compression)
    assert all(r.error is None for r in records)

    summary = ingest(warehouse, path)
    assert summary.ok, summary
    assert (summary.rows("spans"), summary.rows("evaluations"), summary.quarantined) == (3, 1, 0)
    got = sql(
        warehouse,
        "SELECT span_id, name, kind, model, is_request, status_code, input_tokens, "
        "epoch_ns(start_time) FROM spans ORDER BY start_time",
    )
    root, child, other = specs
    assert got == [
        (root.span_id, "POST /v1/chat", "SERVER", "llama", True, "UNSET", None, BASE_NS),
        (child.span_id, "chat llama", "CLIENT", "llama", False, "UNSET", 9, BASE_NS + 10**6),
        (other.span_id, "chat mistral", "SERVER", "chat-api", True, "ERROR", None, other.start_ns),
    ]
    assert sql(warehouse, "SELECT span_id, evaluation_name, score FROM evaluations") == [
        (root.span_id, "accuracy", 1.0)
    ]
    ((status, rows, offset),) = sql(warehouse, "SELECT status, rows, byte_offset FROM ingest_log")
    assert (status, rows, offset) == ("ok", 4, path.stat().st_size)  # rows: spans + evaluations


def test_unknown_bytes_fail_the_file_not_the_run(tmp_path: Path, warehouse: Warehouse):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\xff\xfe not telemetry at all")
    line, _ = good_line()
    good = tmp_path / "good.jsonl"
    good.write_bytes(line)
    summary = ingest(warehouse, junk, good)
    assert (summary.rows("spans"), len(summary.failures)) == (1, 1)
    assert "not OTLP" in summary.failures[0]
    rows = sql(warehouse, "SELECT uri, status, message FROM ingest_log ORDER BY uri")
    assert rows[1][0] == str(junk) and rows[1][1] == "failed" and "not OTLP" in rows[1][2]
    assert rows[0][:2] == (str(good), "ok")
    ((location, error),) = sql(warehouse, "SELECT location, error FROM quarantine")
    assert location == "file" and "the first bytes are" in error


# -- bad input --------------------------------------------------------------------------------
def _bad_cases() -> list[tuple[str, bytes, str, str]]:
    """(case, one JSON line, quarantine location suffix, error text) — one bad thing each."""
    spec = SpanSpec()
    ok = spec.to_json()

    def bad(**change: Any) -> bytes:
        span = {k: v for k, v in (ok | change).items() if v is not None}
        return span_line(span, SpanSpec())

    truncated, _ = good_line()
    spans_at = "resourceSpans[0].scopeSpans[0].spans[0]"
    return [
        ("truncated line", truncated[: len(truncated) // 2] + b"\n", "", "not valid JSON"),
        ("not JSON", b"this is not json\n", "", "not valid JSON"),
        ("invalid hex id", bad(traceId="zz" * 16), spans_at, "traceId 'zzzz"),
        ("short span id", bad(spanId="abc"), spans_at, "must be 16 hex digits"),
        ("long trace id", bad(traceId="ab" * 17), spans_at, "must be 32 hex digits"),
        ("all-zero trace id", bad(traceId="0" * 32), spans_at, "traceId is all zeros"),
        ("all-zero span id", bad(spanId="0" * 16), spans_at, "spanId is all zeros"),
        ("no traceId", bad(traceId=None), spans_at, "traceId is missing"),
        ("no spanId", bad(spanId=None), spans_at, "spanId is missing"),
        ("no start", bad(startTimeUnixNano=None), spans_at, "startTimeUnixNano is missing"),
        ("no end", bad(endTimeUnixNano=None), spans_at, "endTimeUnixNano is missing"),
        ("no name", bad(name=None), spans_at, "span has no name"),
        (
            "end before start",
            bad(endTimeUnixNano=str(BASE_NS - 10**6)),
            spans_at,
            "span ends before it starts",
        ),
        ("1970", bad(startTimeUnixNano="1000"), spans_at, "outside 2000-01-01..2100-01-01"),
        (
            "2300",
            bad(endTimeUnixNano=str(10_413_792_000 * 10**9)),
            spans_at,
            "endTimeUnixNano 10413792000000000000 is outside",
        ),
        ("unknown kind", bad(kind=42), spans_at, "kind '42' is not a known value"),
        ("unknown status", bad(status={"code": 7}), spans_at, "status.code '7' is not a known"),
        (
            "huge token count",
            bad(attributes=[attr("gen_ai.usage.input_tokens", 10**30)]),
            spans_at,
            "gen_ai.usage.input_tokens 1000000000000000000000000000000 is out of range",
        ),
        ("JSON array", b'[{"resourceSpans": []}]\n', "", "wrong schema: expected a JSON object"),
        ("no resourceSpans", b'{"spans": [1, 2]}\n', "", "wrong schema: no resourceSpans"),
        (
            "non-UTF-8",
            b'{"resourceSpans": [{"resource": {"attributes": [{"key": "k", "value": '
            b'{"stringValue": "caf\xe9"}}]}}]}\n',
            "",
            "not valid JSON",
        ),
    ]


BAD = _bad_cases()


@pytest.fixture(scope="module")
def bad_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], set[str]]:
    """A JSON-lines file: a good line, then each bad case followed by a good line."""
    path = tmp_path_factory.mktemp("bad") / "bad input's file.jsonl"
    lines, locations, good = [], [], set()
    first, spec = good_line()
    lines.append(first)
    good.add(spec.span_id)
    for _, line, where, _ in BAD:
        lines.append(line)
        locations.append(f"line {len(lines)}")
        if where:  # the request also holds a good span, after the bad one
            spans = orjson.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"]
            good.update(s["spanId"] for s in spans[1:])
        nxt, spec = good_line()
        lines.append(nxt)
        good.add(spec.span_id)
    path.write_bytes(b"".join(lines))
    return path, locations, good


@pytest.fixture(scope="module")
def bad_loaded(bad_file, tmp_path_factory) -> tuple[Warehouse, LoadReport]:
    wh = Warehouse(tmp_path_factory.mktemp("wh") / "bad.duckdb")
    return wh, ingest(wh, bad_file[0])


@pytest.mark.parametrize(("case", "line", "where", "message"), BAD, ids=[c[0] for c in BAD])
def test_each_bad_record_is_quarantined_with_a_clear_error(
    bad_file, bad_loaded, case, line, where, message
):
    path, locations, _ = bad_file
    wh, _ = bad_loaded
    location = locations[[c[0] for c in BAD].index(case)]
    rows = sql(
        wh,
        "SELECT source, uri, location, error, raw_excerpt FROM quarantine "
        "WHERE location = $loc OR starts_with(location, $loc || ':')",
        {"loc": location},
    )
    assert len(rows) == 1, rows
    source, uri, loc, error, excerpt = rows[0]
    assert (source, uri) == ("otlp-file", str(path))
    assert loc == (f"{location}: {where}" if where else location)
    assert message in error
    assert excerpt, "the raw excerpt helps find the record"
    squeezed = excerpt.replace(" ", "")
    if case == "non-UTF-8":
        assert "caf\\xe9" in excerpt  # undecodable bytes are shown escaped, not lost
    elif where:  # the bad span itself, re-serialized
        assert squeezed.startswith('{"traceId"') or squeezed.startswith('{"spanId"')
    else:  # the start of the line
        assert line.decode().replace(" ", "").startswith(squeezed[:30])


def test_everything_good_in_a_bad_file_loads(bad_file, bad_loaded):
    _, _, good = bad_file
    wh, summary = bad_loaded
    assert span_ids(wh) == good
    assert summary.rows("spans") == len(good)
    assert summary.quarantined == len(BAD)
    assert not summary.ok
    ((status, rows, quarantined, offset),) = sql(
        wh, "SELECT status, rows, quarantined, byte_offset FROM ingest_log"
    )
    assert (status, rows, quarantined) == ("partial", len(good), len(BAD))
    assert offset == bad_file[0].stat().st_size


def test_the_cli_exits_1_and_says_how_many_and_where_to_look(bad_file, tmp_path: Path):
    path, _, good = bad_file
    wh = tmp_path / "cli.duckdb"
    done = cli("ingest", "traces", path, "--warehouse", wh, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert f"loaded {len(good)} spans" in done.stderr
    assert f"{len(BAD)} bad records were quarantined" in done.stderr
    assert "FROM quarantine" in done.stderr and str(wh) in done.stderr
    # a clean file afterwards: exit 0
    clean = tmp_path / "clean.jsonl"
    clean.write_bytes(good_line()[0])
    done = cli("ingest", "traces", clean, "--warehouse", wh, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "loaded 1 spans" in done.stderr and "quarantined" not in done.stderr


def test_a_100_mb_line_is_quarantined_and_the_rest_loads(tmp_path: Path, warehouse: Warehouse):
    before, spec_a = good_line()
    after, spec_b = good_line()
    path = tmp_path / "giant.jsonl"
    size = 100 * 1024 * 1024
    with path.open("wb") as fh:
        fh.write(before)
        fh.write(
            b'{"resourceSpans":[{"resource":{"attributes":[{"key":"pad","value":{"stringValue":"'
        )
        block = b"x" * (1 << 20)
        for _ in range(size // len(block)):
            fh.write(block)
        fh.write(b'"}}]}}]}\n')
        fh.write(after)
    assert size > MAX_RECORD_BYTES
    tracemalloc.start()
    try:
        summary = ingest(warehouse, path, workers=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert span_ids(warehouse) == {spec_a.span_id, spec_b.span_id}
    assert summary.quarantined == 1
    ((location, error, excerpt),) = sql(
        warehouse, "SELECT location, error, raw_excerpt FROM quarantine"
    )
    assert location == "line 2"
    assert f"exceeds the {MAX_RECORD_BYTES} byte limit" in error
    assert excerpt.startswith('{"resourceSpans"')
    # memory is bounded by the record limit, not by the size of the line
    assert peak < 160 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"


def test_injection_is_stored_verbatim_and_harmless(tmp_path: Path, warehouse: Warehouse):
    evil = "'; DROP TABLE spans; --"
    script = "<script>alert(1)</script>"
    spec = SpanSpec(name=evil, attributes={evil: script, script: evil, "k": "\x00\u202e"})
    bad = {**SpanSpec(name=script).to_json(), "spanId": evil}
    path = tmp_path / "evil'; DROP TABLE ingest_log; --.jsonl"
    path.write_bytes(
        jsonl(traces_request({"service.name": evil, "deployment.environment.name": script}, [spec]))
        + span_line(bad)
    )
    summary = ingest(warehouse, path)
    assert (summary.rows("spans"), summary.quarantined) == (1, 1)
    ((name, service, env, attrs),) = sql(
        warehouse, "SELECT name, service, environment, attributes FROM spans"
    )
    assert (name, service, env) == (evil, evil, script)
    assert orjson.loads(attrs) == {evil: script, script: evil, "k": "\x00\u202e"}
    assert sql(warehouse, "SELECT uri FROM ingest_log") == [(str(path),)]
    ((error, excerpt),) = sql(warehouse, "SELECT error, raw_excerpt FROM quarantine")
    assert evil in error and script in excerpt
    assert count(warehouse, "rollup_hourly") == 1


# -- duplicates and unreadable entries --------------------------------------------------------
def test_duplicates_within_and_across_files_are_stored_once(tmp_path: Path, warehouse: Warehouse):
    line_a, spec_a = good_line()
    line_b, spec_b = good_line()
    one = tmp_path / "one.jsonl"
    one.write_bytes(line_a + line_a + line_b)  # a retried export: the same batch twice
    two = tmp_path / "two.jsonl"
    two.write_bytes(line_b)
    summary = ingest(warehouse, one, two)
    assert summary.ok
    assert (summary.rows("spans"), summary.duplicates()) == (2, 2)
    assert span_ids(warehouse) == {spec_a.span_id, spec_b.span_id}
    logged = sql(warehouse, "SELECT uri, rows, duplicates FROM ingest_log ORDER BY uri")
    assert sum(r[1] for r in logged) == 2 and sum(r[2] for r in logged) == 2
    assert logged[0][0] == str(one) and logged[0][2] >= 1  # its in-file copy

    # a third file, in a later load, with both again: nothing new, both counted
    three = tmp_path / "three.jsonl"
    three.write_bytes(line_b + line_a)
    summary = ingest(warehouse, three)
    assert (summary.rows("spans"), summary.duplicates()) == (0, 2)
    assert sql(
        warehouse, "SELECT rows, duplicates FROM ingest_log WHERE uri = $u", {"u": str(three)}
    ) == [(0, 2)]
    assert count(warehouse, "spans") == 2
    assert sql(warehouse, "SELECT sum(requests_raw)::INT FROM rollup_hourly") == [(2,)]


def test_unreadable_entries_fail_alone(
    tmp_path: Path, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
):
    # As root, chmod 000 does not stop a read: entries that cannot be read by anyone instead.
    folder = tmp_path / "exports"
    (folder / "sub").mkdir(parents=True)
    line, spec = good_line()
    (folder / "good.jsonl").write_bytes(line)
    line2, spec2 = good_line()
    (folder / "sub" / "more.jsonl").write_bytes(line2)
    (folder / "dangling.jsonl").symlink_to(folder / "missing.jsonl")
    (folder / "loop.jsonl").symlink_to(folder / "loop.jsonl")
    (folder / "sub" / "up").symlink_to(folder)  # a directory loop: not followed
    os.mkfifo(folder / "fifo.jsonl")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        monkeypatch.chdir(folder)  # a relative name: socket paths are limited to ~100 bytes
        sock.bind("sock.jsonl")
        monkeypatch.undo()
        summary = ingest(warehouse, folder, tmp_path / "nowhere.jsonl")
    finally:
        sock.close()
    assert span_ids(warehouse) == {spec.span_id, spec2.span_id}
    assert (
        sum(i.status is not Status.FAILED for i in summary.inputs) == 2
        and len(summary.failures) == 5
    )
    failed = dict(sql(warehouse, "SELECT uri, message FROM ingest_log WHERE status = 'failed'"))
    assert set(failed) == {
        str(folder / n) for n in ("dangling.jsonl", "loop.jsonl", "fifo.jsonl", "sock.jsonl")
    } | {str(tmp_path / "nowhere.jsonl")}
    assert "No such file or directory" in failed[str(folder / "dangling.jsonl")]
    assert "Too many levels of symbolic links" in failed[str(folder / "loop.jsonl")]
    assert "is not a regular file" in failed[str(folder / "fifo.jsonl")]
    assert "is not a regular file" in failed[str(folder / "sock.jsonl")]
    quarantined = sql(warehouse, "SELECT uri, location FROM quarantine")
    assert sorted(quarantined) == sorted((uri, "file") for uri in failed)

    # the CLI says so and exits 1; loaded files are skipped, failed ones tried again
    done = cli("ingest", "traces", folder, "--warehouse", warehouse.path, cwd=tmp_path)
    assert done.returncode == 1
    assert "failed:" in done.stderr and "fifo.jsonl is not a regular file" in done.stderr
    assert "2 unchanged files skipped" in done.stderr
    assert "bad record" not in done.stderr  # a file that failed is no bad record


def test_path_tricks_name_the_same_file_once_in_the_warehouse(tmp_path: Path, warehouse: Warehouse):
    line, spec = good_line()
    (tmp_path / "a").mkdir()
    path = tmp_path / "a" / "x.jsonl"
    path.write_bytes(line)
    (tmp_path / "link.jsonl").symlink_to(path)
    tricky = tmp_path / "a" / ".." / "a" / "x.jsonl"
    summary = ingest(warehouse, path, tricky, tmp_path / "link.jsonl", path)
    assert summary.rows("spans") == 1
    assert span_ids(warehouse) == {spec.span_id}
    assert count(warehouse, "spans") == 1


# -- idempotency, offsets, crashes ------------------------------------------------------------
def test_reingesting_adds_nothing(tmp_path: Path, warehouse: Warehouse):
    requests, _ = _requests()
    plain = tmp_path / "a.jsonl"
    plain.write_bytes(jsonl(*requests))
    packed = tmp_path / "b.zst"
    packed.write_bytes(zstandard.ZstdCompressor().compress(jsonl(requests[0])))
    first = ingest(warehouse, plain, packed)
    assert (first.rows("spans"), first.rows("evaluations"), first.duplicates()) == (
        3,
        1,
        3,
    )  # 2 spans, 1 eval
    before = snapshot(warehouse)
    assert all(before[t] for t in TABLES)

    again = ingest(warehouse, plain, packed)
    assert (again.rows("spans"), again.rows("evaluations"), again.files_skipped) == (0, 0, 2)
    assert snapshot(warehouse) == before

    # a touched file with the same bytes is still skipped; a copy is read but adds nothing
    os.utime(plain, (1, 1))
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(plain.read_bytes())
    third = ingest(warehouse, plain, copy)
    assert (third.files_skipped, third.rows("spans"), third.rows("evaluations")) == (1, 0, 0)
    assert third.duplicates() == 4  # 3 spans and 1 evaluation
    assert snapshot(warehouse) == before


def test_a_growing_file_is_resumed_from_its_offset(tmp_path: Path, warehouse: Warehouse):
    (l1, s1), (l2, s2), (l3, s3) = good_line(), good_line(), good_line()
    path = tmp_path / "live.jsonl"
    cut = l3.rindex(b"}", 0, len(l3) - 5) + 1  # the partial tail even ends with a brace
    path.write_bytes(l1 + l2 + l3[:cut])
    first = ingest(warehouse, path)
    assert first.ok and first.rows("spans") == 2 and first.pending_bytes == cut
    assert span_ids(warehouse) == {s1.span_id, s2.span_id}
    ((offset, message),) = sql(warehouse, "SELECT byte_offset, message FROM ingest_log")
    assert offset == len(l1 + l2)
    assert f"{cut} bytes after offset {offset} are an incomplete record" in message

    # nothing new: skipped
    assert ingest(warehouse, path).rows("spans") == 0

    with path.open("ab") as fh:  # the writer finishes the line and starts another
        fh.write(l3[cut:])
        fh.write(l1[:20])
    second = ingest(warehouse, path)
    assert second.ok and (second.rows("spans"), second.duplicates()) == (1, 0)
    assert span_ids(warehouse) == {s1.span_id, s2.span_id, s3.span_id}
    assert sql(warehouse, "SELECT max_by(byte_offset, load_id) FROM ingest_log") == [
        (len(l1 + l2 + l3),)
    ]

    # a file that was rewritten (not appended to) is read again from the start
    path.write_bytes(l3 + l2)
    third = ingest(warehouse, path)
    assert (third.rows("spans"), third.duplicates()) == (0, 2)


def test_a_new_file_with_only_a_partial_first_line_waits(tmp_path: Path, warehouse: Warehouse):
    line, spec = good_line()
    path = tmp_path / "rotated.jsonl"
    path.write_bytes(line[:40])
    first = ingest(warehouse, path)
    assert first.ok and first.rows("spans") == 0 and first.pending_bytes == 40
    path.write_bytes(line)
    second = ingest(warehouse, path)
    assert second.ok and second.rows("spans") == 1
    assert span_ids(warehouse) == {spec.span_id}


def test_a_partial_frame_is_resumed(tmp_path: Path, warehouse: Warehouse):
    requests, specs = _requests()
    frames = [frame(to_proto(r)) for r in requests]
    path = tmp_path / "live.binpb"
    path.write_bytes(frames[0] + frames[1][:7])
    first = ingest(warehouse, path)
    assert first.ok and first.rows("spans") == 2 and first.pending_bytes == 7
    path.write_bytes(frames[0] + frames[1])
    second = ingest(warehouse, path)
    assert second.ok and (second.rows("spans"), second.duplicates()) == (1, 0)
    assert span_ids(warehouse) == {s.span_id for s in specs}


def test_a_crash_mid_load_leaves_the_previous_state(
    tmp_path: Path, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
):
    base, _ = good_line()
    (tmp_path / "base.jsonl").write_bytes(base)
    ingest(warehouse, tmp_path / "base.jsonl")
    before = snapshot(warehouse)
    log_before = sql(warehouse, "SELECT * FROM ingest_log")

    requests, specs = _requests()
    path = tmp_path / "next.jsonl"
    path.write_bytes(jsonl(*requests) + b"not json\n")
    real = wload.refresh_rollups

    def crash(con: Any, lo: Any, hi: Any) -> None:
        # by now the spans and evaluations are inserted: prove it, then die
        assert con.execute("SELECT count(*) FROM spans").fetchone()[0] == 4
        raise RuntimeError("power cut")

    monkeypatch.setattr(wload, "refresh_rollups", crash)
    failed = ingest(warehouse, path)  # published alone, failed again: recorded as FAILED
    assert [i.status for i in failed.inputs] == [Status.FAILED]
    assert failed.failures == [f"{path} cannot be published: power cut"]
    assert snapshot(warehouse) == before
    log_after = sql(warehouse, "SELECT uri, rows, status, message FROM ingest_log")
    assert len(log_after) == len(log_before) + 1
    assert log_after[-1] == (str(path), 0, "failed", failed.failures[0])
    assert sql(warehouse, "SELECT location, error FROM quarantine") == [
        ("file", failed.failures[0])
    ]

    monkeypatch.setattr(wload, "refresh_rollups", real)
    summary = ingest(warehouse, path)  # not skipped: the failed load loaded nothing
    assert (summary.rows("spans"), summary.rows("evaluations"), summary.quarantined) == (3, 1, 1)
    assert span_ids(warehouse) >= {s.span_id for s in specs}


# -- the hand-made case files (tests/cases/otlp-file, synthetic) ----------------------------------
CASES = Path(__file__).parent / "cases" / "otlp-file"
CASE_CONFIG = {
    "environments": [
        {"name": "azure-westeurope", "match": [{"k8s.cluster.name": "aks-westeurope-1"}]},
        {
            "name": "aws-us-east-1",
            "match": [{"cloud.provider": "aws", "cloud.region": "us-east-1"}],
        },
    ],
    "models": [{"name": "fraud-xgb", "service": "fraud-scorer", "model_attribute": "ml.model"}],
}
CASE_COUNTS = {
    # file: (spans, evaluations, quarantined, duplicates, pending bytes > 0)
    "genai-semconv-versions.json": (4, 0, 0, 0, False),
    "evaluations-as-logs.jsonl": (1, 3, 1, 0, False),
    "bad-lines.jsonl": (3, 0, 7, 1, False),
    "growing-tail.jsonl": (1, 0, 0, 0, True),
}


@pytest.mark.parametrize("name", CASE_COUNTS)
def test_hand_made_case_files(warehouse: Warehouse, name: str):
    from warehouse.config import parse

    summary = ingest(warehouse, CASES / name, config=parse(CASE_CONFIG, "case config"))
    spans, evals, quarantined, duplicates, pending = CASE_COUNTS[name]
    assert (
        summary.rows("spans"),
        summary.rows("evaluations"),
        summary.quarantined,
        summary.duplicates(),
        summary.pending_bytes > 0,
    ) == (spans, evals, quarantined, duplicates, pending)
    if name == "genai-semconv-versions.json":
        got = sql(
            warehouse,
            "SELECT span_id, environment, model, version, response_model, provider, "
            "input_tokens, output_tokens, is_request, host, attributes::VARCHAR FROM spans "
            "ORDER BY span_id",
        )
        assert got == [
            ("00f067aa0ba902b7", "azure-westeurope", "gpt-4o", "1.4.0", "gpt-4o-2024-08-06",
             "azure.ai.openai", 812, 97, False, None, "{}"),
            ("53995c3f42cd8ad8", "staging", "gpt-35-turbo", None, None, "azure.ai.openai", 120,
             30, True, "dc1-gpu-07", "{}"),
            ("b7ad6b7169203331", "azure-westeurope", "gpt-4o", "1.4.0", None, None, None, None,
             True, None, None),
            ("eee19b7ec3c1b174", "aws-us-east-1", "fraud-xgb", None, None, None, None, None, True,
             None, '{"ml.model":"fraud-xgb","http.route":"/score"}'),
        ]  # fmt: skip
        assert "synthetic" not in str(sql(warehouse, "SELECT * FROM spans"))
    if name == "evaluations-as-logs.jsonl":
        assert sql(
            warehouse, "SELECT evaluation_name, score FROM evaluations ORDER BY score_label"
        ) == [("accuracy", 0.0), ("accuracy", 1.0), ("relevance", 0.8)]
        ((error,),) = sql(warehouse, "SELECT error FROM quarantine")
        assert "no span context" in error
    if name == "bad-lines.jsonl":
        locations = [r[0] for r in sql(warehouse, "SELECT location FROM quarantine")]
        assert sorted(locations) == sorted(
            ["line 2", "line 4", "line 6"]
            + [f"line 5: resourceSpans[0].scopeSpans[0].spans[{i}]" for i in range(4)]
        )
        assert sql(warehouse, "SELECT name FROM spans WHERE span_id = '1000000000000006'") == [
            ("'; DROP TABLE spans; --",)
        ]


@pytest.mark.parametrize("first", ["request", "child"])
def test_a_trace_split_across_loads_gets_its_model_and_one_request(
    tmp_path: Path, warehouse: Warehouse, first: str
):
    """Children end (and are exported) before their parents, and a growing file or the
    receiver's flushes can cut a trace in two loads: the request still gets the model."""
    request = SpanSpec(name="POST /v1/chat", kind=2)
    child = SpanSpec(
        name="chat llama",
        kind=3,
        trace_id=request.trace_id,
        parent_span_id=request.span_id,
        start_ns=request.start_ns + 1000,
        duration_ms=50,
        attributes={"gen_ai.request.model": "llama"},
    )
    retry = SpanSpec(  # a second SERVER span of the same service in the trace, later
        name="POST /v1/chat", kind=2, trace_id=request.trace_id, start_ns=request.start_ns + 10**9
    )
    order = [request, child] if first == "request" else [child, request]
    for i, spec in enumerate([*order, retry]):
        path = tmp_path / f"part{i}.jsonl"
        path.write_bytes(jsonl(traces_request(RESOURCE, [spec])))
        assert ingest(warehouse, path).rows("spans") == 1
    got = sql(warehouse, "SELECT span_id, model, is_request FROM spans ORDER BY start_time")
    assert got == [
        (request.span_id, "llama", True),
        (child.span_id, "llama", False),
        (retry.span_id, "llama", False),
    ]
    assert sql(warehouse, "SELECT model, requests FROM rollup_hourly") == [("llama", 1.0)]


def test_nanosecond_times_reingest_without_duplicates(tmp_path: Path, warehouse: Warehouse):
    """The warehouse keeps microseconds; OTLP times have nanoseconds. A re-read copy must
    still match what is stored (evaluations are keyed by their time)."""
    spec = SpanSpec(
        start_ns=BASE_NS + 123_456_789,
        duration_ms=1.000_501,
        events=[evaluation_event("accuracy", label="pass", time_ns=BASE_NS + 987_654_321)],
    )
    log = {
        "resourceLogs": [
            {
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": str(BASE_NS + 555_555_555),
                                "eventName": "gen_ai.evaluation.result",
                                "traceId": spec.trace_id,
                                "spanId": spec.span_id,
                                "attributes": [attr("gen_ai.evaluation.name", "relevance")],
                            }
                        ]
                    }
                ]
            }
        ]
    }
    body = jsonl(traces_request(RESOURCE, [spec]), log)
    (tmp_path / "a.jsonl").write_bytes(body)
    (tmp_path / "b.jsonl").write_bytes(body)
    first = ingest(warehouse, tmp_path / "a.jsonl")
    assert (first.rows("spans"), first.rows("evaluations")) == (1, 2)
    before = snapshot(warehouse)
    again = ingest(warehouse, tmp_path / "b.jsonl")
    assert (again.rows("spans"), again.rows("evaluations"), again.duplicates()) == (0, 0, 3)
    assert snapshot(warehouse) == before


def test_a_truncated_first_line_does_not_hide_the_lines_after_it(
    tmp_path: Path, warehouse: Warehouse
):
    line, spec = good_line()
    path = tmp_path / "first-line-cut.jsonl"
    path.write_bytes(line[: len(line) // 2] + b"\n" + line)
    summary = ingest(warehouse, path)
    assert span_ids(warehouse) == {spec.span_id}
    assert summary.quarantined == 1
    (location,) = [r[0] for r in sql(warehouse, "SELECT location FROM quarantine")]
    assert location == "line 1"


def test_a_growing_compressed_stream_is_read_again_not_resumed(
    tmp_path: Path, warehouse: Warehouse
):
    first, a = good_line()
    second, b = good_line()
    path = tmp_path / "native.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(first))
    ingest(warehouse, path)
    with path.open("ab") as fh:  # the Collector's native zstd appends another frame
        fh.write(zstandard.ZstdCompressor().compress(second))
    summary = ingest(warehouse, path)
    assert len(summary.failures) == 0
    assert span_ids(warehouse) == {a.span_id, b.span_id}


# -- hardening: names, zeros, cut compressed streams, URLs, signals ---------------------------
def test_a_file_name_that_is_not_utf8_is_stored_escaped_and_loaded(
    tmp_path: Path, warehouse: Warehouse
):
    folder = tmp_path / "in"
    folder.mkdir()
    line, spec = good_line()
    bad = folder / os.fsdecode(b"bad\xff.json")
    bad.write_bytes(line)
    (folder / "good.jsonl").write_bytes(good_line()[0])
    (folder / os.fsdecode(b"junk\xfe.bin")).write_bytes(b"%PDF-1.7 not telemetry")
    summary = ingest(warehouse, folder)
    assert summary.rows("spans") == 2 and spec.span_id in span_ids(warehouse)
    escaped = f"{folder}/bad\\xff.json"
    logged = sql(warehouse, "SELECT uri, status FROM ingest_log ORDER BY uri")
    assert logged == [
        (escaped, "ok"),
        (f"{folder}/good.jsonl", "ok"),
        (f"{folder}/junk\\xfe.bin", "failed"),
    ]
    assert summary.failures[0].startswith(f"{folder}/junk\\xfe.bin: not OTLP")
    again = ingest(warehouse, folder)  # the escaped name finds its ingest_log row again
    assert again.files_skipped == 2 and again.rows("spans") == 0

    done = cli("ingest", "traces", folder, "--warehouse", tmp_path / "cli.duckdb", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "junk\\xfe.bin: not OTLP" in done.stderr


def refusal_seconds(path: Path) -> float:
    """How long the OTLP file collector takes to read `path` (warm: imports not counted);
    the whole ingest adds a publish, whose time depends on the machine, not the input."""
    OtlpFiles().collect(Unit("warm", body=b"{}\n"), Config())
    started = time.perf_counter()
    collected = OtlpFiles().collect(Unit(str(path), path), Config())
    assert collected.error and "not OTLP" in collected.error
    return time.perf_counter() - started


def _zstd_of_zeros(path: Path, size: int) -> None:
    with path.open("wb") as out, zstandard.ZstdCompressor(level=3).stream_writer(out) as w:
        zeros = bytes(1 << 22)
        for _ in range(size // len(zeros)):
            w.write(zeros)


@pytest.mark.parametrize("kind", ["16 MiB of zeros", "zstd of 2 GiB of zeros"])
def test_zeros_are_refused_at_once(tmp_path: Path, warehouse: Warehouse, kind: str):
    path = tmp_path / "zeros.bin"
    if kind.startswith("zstd"):
        _zstd_of_zeros(path, 2 << 30)
        assert path.stat().st_size < 200_000
    else:
        path.write_bytes(bytes(16 << 20))
    elapsed = refusal_seconds(path)
    assert elapsed < 0.25, f"{kind} took {elapsed:.2f} s to refuse"
    summary = ingest(warehouse, path)
    assert summary.failures == [f"{path}: not OTLP: the input starts with 64 zero bytes"]
    assert sql(warehouse, "SELECT status FROM ingest_log") == [("failed",)]
    assert count(warehouse, "quarantine") == 1


def test_zero_length_frames_are_skipped_and_a_run_of_them_refused(
    tmp_path: Path, warehouse: Warehouse
):
    requests, _ = _requests()
    frames = frame(to_proto(requests[0])) + bytes(4) * 3 + frame(to_proto(requests[1]))
    path = tmp_path / "frames.bin"
    path.write_bytes(frames)
    summary = ingest(warehouse, path)
    assert summary.ok and summary.rows("spans") == 3
    assert summary.skipped == {"zero-length frames": 3}

    blank = tmp_path / "blank.jsonl"
    blank.write_bytes(jsonl(requests[1]) + b"\n" * (16 << 20))
    assert refusal_seconds(blank) < 0.25
    summary = ingest(warehouse, blank)
    assert summary.failures == [
        f"{blank}: not OTLP: more than 1048576 bytes of blank lines from line 2"
    ]

    padded = tmp_path / "padded.bin"
    padded.write_bytes(frame(to_proto(requests[0])) + bytes(16 << 20))
    assert refusal_seconds(padded) < 0.25
    summary = ingest(warehouse, padded)
    (failure,) = summary.failures
    assert "not OTLP: more than 262144 zero-length frames in a row" in failure


def test_a_big_file_padded_with_zero_frames_is_one_refusal(
    tmp_path: Path, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
):
    """A frame, a frame-aligned run of zero-length frames past the refusal limit, then
    more: the planner hops the run in bulk and cuts nothing past it (it used to hop 4 bytes
    at a time: 52 s for 200 MiB), so the file is one refusal with the run's reason and
    one quarantine record, not one per piece with the last piece's reason."""
    requests, _ = _requests()
    first = frame(to_proto(requests[0]))
    path = tmp_path / "padded.bin"
    path.write_bytes(first + bytes(4 << 20) + frame(to_proto(requests[1])) * 2)
    collector = OtlpFiles(chunk_bytes=1 << 20)
    reads: list[int | None] = []

    class Counting(io.BufferedReader):
        def read(self, n: int | None = -1) -> bytes:
            reads.append(n)
            return super().read(n)

    monkeypatch.setattr(Path, "open", lambda self, mode="r": Counting(io.FileIO(self, mode)))
    units = collector.plan(Unit(str(path), path), path.stat().st_size)
    monkeypatch.undo()
    assert [(u.start, u.end) for u in units] == [(0, None)]
    assert len(reads) < 100  # the 4 MiB run is read in blocks, not a frame at a time

    sources, _ = discover(warehouse, [path])
    summary = driver.load(warehouse, sources, Config(), collector, workers=1)
    run = "more than 262144 zero-length frames in a row"
    (failure,) = summary.failures
    assert run in failure
    ((error,),) = sql(warehouse, "SELECT error FROM quarantine")
    assert run in error
    alone = tmp_path / "first.bin"
    alone.write_bytes(first)
    assert summary.rows("spans") == ingest(Warehouse(tmp_path / "w.duckdb"), alone).rows("spans")


def test_a_file_read_in_pieces_logs_the_whole_file_hash(tmp_path: Path, warehouse: Warehouse):
    """The hash taken piece by piece, as the workers parse, is the hash of the whole file:
    the next run skips the file, and one that grew is read on from its offset."""
    requests, _ = _requests()
    path = tmp_path / "pieces.jsonl"
    path.write_bytes(b"".join(jsonl(r) for r in requests) * 40)
    collector = OtlpFiles(chunk_bytes=path.stat().st_size // 5)
    sources, _ = discover(warehouse, [path])
    source = sources[0]
    assert not isinstance(source, Refused)
    assert len(collector.plan(source.unit, source.size)) >= 4
    assert driver.load(warehouse, sources, Config(), collector, workers=1).ok
    logged = sql(warehouse, "SELECT byte_offset, content_hash FROM ingest_log")
    assert logged == [(path.stat().st_size, unit_hash(Unit(str(path), path), None))]
    assert discover(warehouse, [path]) == ([], 1)
    with path.open("ab") as out:
        out.write(jsonl(requests[0]))
    sources, skipped = discover(warehouse, [path])
    assert skipped == 0 and sources[0].unit.start == logged[0][0]  # type: ignore[union-attr]


def test_the_first_failed_piece_names_the_cause(tmp_path: Path, warehouse: Warehouse):
    """Pieces after a failed one are still read and their failures recorded, but the input's
    reason stays the first failure's: here a run of blank lines in the first piece, not the
    zeros the second starts with."""
    requests, _ = _requests()
    line = jsonl(requests[1])
    chunk = 2 << 20
    head = line + b"\n" * (3 << 19)  # 1.5 MiB of blank lines: past the refusal limit
    lines = (chunk - len(head)) // len(line) + 1  # the planner's first cut is after these
    path = tmp_path / "blank-then-zeros.jsonl"
    path.write_bytes(head + line * lines + bytes(3 << 20) + b"\n" + line)
    collector = OtlpFiles(chunk_bytes=chunk)
    sources, _ = discover(warehouse, [path])
    source = sources[0]
    assert not isinstance(source, Refused)
    units = collector.plan(source.unit, source.size)
    assert units[1].start == len(head) + len(line) * lines  # the second piece: the zeros
    summary = driver.load(warehouse, sources, Config(), collector, workers=1)
    (failure,) = summary.failures
    assert failure.endswith("not OTLP: more than 1048576 bytes of blank lines from line 2")
    errors = [e for (e,) in sql(warehouse, "SELECT error FROM quarantine ORDER BY location")]
    assert any("64 zero bytes" in e for e in errors)  # the later piece's refusal is recorded


def _cut_zstd(lines: list[bytes]) -> tuple[bytes, int]:
    """Each line its own zstd frame, as the Collector's native compression flushes them,
    with the last frame cut in half; and the decompressed bytes of the complete frames."""
    frames = [zstandard.ZstdCompressor().compress(line) for line in lines]
    data = b"".join(frames[:-1]) + frames[-1][: len(frames[-1]) // 2]
    return data, sum(len(line) for line in lines[:-1])


@pytest.mark.parametrize("codec", ["zstd", "gzip"])
def test_a_compressed_file_cut_mid_frame_waits_then_is_reported_truncated(
    tmp_path: Path, warehouse: Warehouse, codec: str
):
    requests, specs = _requests()
    lines = [jsonl(r) for r in requests] + [good_line()[0]]
    if codec == "zstd":
        data, offset = _cut_zstd(lines)
    else:
        whole = gzip.compress(b"".join(lines))
        data = whole[: len(whole) - 12]  # the last block and the trailer are cut
        offset = len(lines[0]) + len(lines[1])
    path = tmp_path / f"export.{codec}"
    path.write_bytes(data)

    growing = ingest(warehouse, path)  # modified just now: still being written
    assert growing.ok and [i.status for i in growing.inputs] == [Status.PENDING]
    assert span_ids(warehouse) == {s.span_id for s in specs}
    assert sql(warehouse, "SELECT byte_offset, status FROM ingest_log") == [(None, "pending")]

    old = time.time() - 11 * 60  # past ingest.settle_minutes (10): it has stopped growing
    os.utime(path, (old, old))
    cut = ingest(warehouse, path)
    (report,) = cut.inputs
    assert report.status is Status.TRUNCATED and not cut.ok
    assert report.message == (
        f"{path} ends mid-record at byte {offset} of its decompressed content and has "
        "stopped growing: the records before it were loaded, the rest is lost"
    )
    assert sql(warehouse, "SELECT location, error FROM quarantine") == [
        (f"byte {offset}", report.message)
    ]
    assert cut.duplicates() == 4  # the complete records were there already (3 spans, 1 eval)
    assert ingest(warehouse, path).files_skipped == 1  # unchanged: reported once

    done = cli("ingest", "traces", path, "--warehouse", tmp_path / "cli.duckdb", cwd=tmp_path)
    assert done.returncode == 1
    assert f"truncated: {path} ends mid-record at byte {offset}" in done.stderr


def test_a_truncated_file_that_grows_after_all_is_read_again(tmp_path: Path, warehouse: Warehouse):
    requests, _ = _requests()
    last, spec = good_line()
    data, _ = _cut_zstd([jsonl(requests[0]), last])
    path = tmp_path / "export.zst"
    path.write_bytes(data)
    old = time.time() - 3600
    os.utime(path, (old, old))
    assert [i.status for i in ingest(warehouse, path).inputs] == [Status.TRUNCATED]
    whole = b"".join(zstandard.ZstdCompressor().compress(x) for x in (jsonl(requests[0]), last))
    path.write_bytes(whole + zstandard.ZstdCompressor().compress(jsonl(requests[1])))
    summary = ingest(warehouse, path)
    assert summary.ok and spec.span_id in span_ids(warehouse)
    assert summary.rows("spans") == 2  # the finished line and the new frame; the rest known


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_url_is_fetched_by_the_driver_and_resumed_like_a_file(
    tmp_path: Path, warehouse: Warehouse
):
    served = tmp_path / "served"
    served.mkdir()
    line, spec = good_line()
    (served / "spans.jsonl").write_bytes(line)
    handler = functools.partial(_Files, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        summary = ingest_paths(warehouse, [f"{base}/spans.jsonl", f"{base}/missing"], Config())
        assert summary.rows("spans") == 1 and span_ids(warehouse) == {spec.span_id}
        assert summary.failures == [f"cannot fetch {base}/missing: HTTP 404 File not found"]
        logged = sql(warehouse, "SELECT uri, status FROM ingest_log ORDER BY uri")
        assert logged == [(f"{base}/missing", "failed"), (f"{base}/spans.jsonl", "ok")]
        again = ingest_paths(warehouse, [f"{base}/spans.jsonl"], Config())
        assert again.files_skipped == 1 and again.rows("spans") == 0

        done = cli(
            "ingest", "traces", f"{base}/spans.jsonl", "--warehouse", tmp_path / "c.duckdb",
            cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "loaded 1 spans" in done.stderr
    finally:
        server.shutdown()
        server.server_close()


def _logs_proto(records: list[dict[str, Any]]) -> bytes:
    doc = orjson.loads(orjson.dumps(logs_request(RESOURCE, records)))
    for rl in doc["resourceLogs"]:
        for sl in rl["scopeLogs"]:
            for record in sl["logRecords"]:
                for key in ("traceId", "spanId"):
                    record[key] = base64.b64encode(bytes.fromhex(record[key])).decode()
    return json_format.ParseDict(doc, ExportLogsServiceRequest()).SerializeToString()


def test_protobuf_logs_and_metrics_files_are_told_from_traces(
    tmp_path: Path, warehouse: Warehouse, fixtures_dir: Path
):
    pytest.importorskip(
        "ingest.otlp.signal",
        reason="telling protobuf signals apart is the OTLP parser's detect_signal (otlp branch)",
    )
    requests, specs = _requests()
    root = specs[0]
    later = BASE_NS + 10**9  # not the span event's time: a second accuracy result
    evaluations = [
        evaluation_log(root.trace_id, root.span_id, "accuracy", value=0.5, time_ns=later),
        evaluation_log(root.trace_id, root.span_id, "relevance", value=1.0, time_ns=later),
    ]
    (tmp_path / "logs.binpb").write_bytes(_logs_proto(evaluations))
    metrics = json_format.Parse(
        (fixtures_dir / "otlp" / "otlp-proto-example-metrics.json").read_text(),
        ExportMetricsServiceRequest(),
    )
    (tmp_path / "metrics.binpb").write_bytes(frame(metrics.SerializeToString()))
    (tmp_path / "traces.binpb").write_bytes(to_proto(requests[0]))
    summary = ingest(warehouse, tmp_path / "traces.binpb", tmp_path / "logs.binpb",
                     tmp_path / "metrics.binpb")  # fmt: skip
    assert summary.ok and summary.quarantined == 0
    # 2 spans; the span's own evaluation event and the two log records
    assert (summary.rows("spans"), summary.rows("evaluations")) == (2, 3)
    assert sum(n for what, n in summary.skipped.items() if what.startswith("metrics")) == 1


# -- a big file published in pieces ------------------------------------------------------------
def test_a_file_published_in_pieces_gives_the_figures_of_one_publish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pieces split traces across loads: a request whose GenAI child comes in a later piece
    gets its model, an outer entry span in a later piece demotes the nested one, a late
    duplicate adds nothing, so every table and rollup is what one publish gives."""
    root = SpanSpec(name="POST /v1/chat", events=[evaluation_event("accuracy", label="pass")])
    child = SpanSpec(
        trace_id=root.trace_id,
        parent_span_id=root.span_id,
        kind=3,
        start_ns=BASE_NS + 1_000_000,
        attributes={"gen_ai.request.model": "llama", "gen_ai.usage.output_tokens": 7},
    )
    other = SpanSpec(start_ns=BASE_NS + 60 * 10**9, status_code=2)
    outer = SpanSpec(name="POST /v1/route", start_ns=BASE_NS + 120 * 10**9)
    nested = SpanSpec(
        name="POST /v1/inner",
        trace_id=outer.trace_id,
        parent_span_id=outer.span_id,
        start_ns=BASE_NS + 121 * 10**9,
    )
    later = SpanSpec(start_ns=BASE_NS + 7200 * 10**9, attributes={"gen_ai.request.model": "m"})
    lines = [[root], [other], [nested], [child], [other], [outer], [later]]
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"".join(jsonl(traces_request(RESOURCE, spans)) for spans in lines))
    small = max(len(jsonl(traces_request(RESOURCE, s))) for s in lines)
    tables = (*TABLES, "rollup_accuracy", "rollup_uptime_minutes")

    def load(name: str, group_rows: int) -> tuple[LoadReport, dict[str, list[Any]], Warehouse]:
        monkeypatch.setattr(driver, "GROUP_ROWS", group_rows)
        wh = Warehouse(tmp_path / f"{name}.duckdb")
        sources, _ = discover(wh, [path])
        report = driver.load(wh, sources, Config(), OtlpFiles(chunk_bytes=small), workers=1)
        shown = {
            t: sorted(sql(wh, f"SELECT * EXCLUDE (load_id) FROM {t}"), key=repr)
            if t in ("spans", "evaluations")
            else sorted(sql(wh, f"SELECT * FROM {t}"), key=repr)
            for t in tables
        }
        return report, shown, wh

    whole, once, _ = load("whole", 400_000)
    split, pieces, wh = load("pieces", 1)
    assert len(whole.load_ids) == 1 and len(split.load_ids) >= 3  # units of ~2 lines
    assert pieces == once
    assert [(i.rows, i.duplicates, i.status) for i in split.inputs] == [
        (i.rows, i.duplicates, i.status) for i in whole.inputs
    ]
    requests = sql(wh, "SELECT name, model FROM spans WHERE is_request ORDER BY name")
    assert requests == [  # the nested entry span was demoted by its outer one, loaded later
        ("POST /v1/chat", "llama"),
        ("POST /v1/route", "chat-api"),
        ("chat llama", "chat-api"),
        ("chat llama", "m"),
    ]
