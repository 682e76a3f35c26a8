"""Properties of the OTLP ingest, checked on generated input (hypothesis).

1. No input bytes make the reader or the parser blow up: whatever the bytes, a record ends
   as rows, a quarantine entry or a skip, or the whole file is refused with a ValueError,
   which ingest_paths records as a failed file.
2. Valid spans round-trip: what is read back from the warehouse is what was written
   (ids, times to the microsecond, duration, status, kind, tokens, attributes).
"""

from __future__ import annotations

import gzip
import io
import tempfile
from pathlib import Path
from typing import Any

import orjson
import zstandard
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from otlp_factory import SpanSpec, jsonl, traces_request

from ingest.contract import Unit
from ingest.framing import Framing, iter_records
from ingest.otlp import KINDS, MIN_NS, STATUSES, Batch, Mapping
from ingest.otlp_files import OtlpFiles
from ingest.traces import ingest_paths
from warehouse.config import Config
from warehouse.db import Warehouse

MAPPING = Mapping.from_config(Config())
FAST = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- 1. arbitrary bytes -----------------------------------------------------------------------
def _valid_files() -> list[bytes]:
    spans = [SpanSpec(attributes={"a": 1, "b": "x"}), SpanSpec(kind=3, status_code=2)]
    doc = traces_request({"service.name": "s"}, spans)
    lines = jsonl(doc, doc)
    framed = b"".join(len(p).to_bytes(4, "big") + p for p in (orjson.dumps(doc),) * 2)
    return [
        lines,
        orjson.dumps(doc, option=orjson.OPT_INDENT_2),
        gzip.compress(lines),
        zstandard.ZstdCompressor().compress(lines),
        framed,
        b"".join(
            len(c).to_bytes(4, "big") + c
            for c in [zstandard.ZstdCompressor().compress(orjson.dumps(doc))] * 2
        ),
    ]


VALID = _valid_files()
PREFIXES = [b"", b"{", b"[", b"\n{", b"\x0a", b"\x00\x00\x00\x08", b"\x1f\x8b", b"\x28\xb5\x2f\xfd"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid file with bytes flipped, cut or inserted."""
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("flip", "cut", "insert", "truncate")))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[at:]
    return bytes(data)


ANY_BYTES = st.one_of(
    st.binary(max_size=512),
    st.builds(lambda p, b: p + b, st.sampled_from(PREFIXES), st.binary(max_size=512)),
    mutated(),
)


def read_all(data: bytes) -> tuple[Batch, Framing]:
    """iter_records + Batch on `data`; only a whole-file ValueError may come out."""
    batch = Batch(MAPPING)
    framing = Framing()
    for record in iter_records(io.BytesIO(data), framing):
        batch.add(record)
    return batch, framing


@FAST
@given(ANY_BYTES)
@example(b"\x1f\x8b\x08\x00garbage")  # a broken gzip header
@example(b"\x28\xb5\x2f\xfd\x00\x00")  # a broken zstd frame
@example(b"\x00\x00\x00\x05\x28\xb5\x2f\xfd\x00")  # a frame whose zstd payload is broken
@example(b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")  # a protobuf length overflow
@example(b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[null, 1, {"key": 2}]}]}]}]}')
@example(b'{"resourceSpans":[{"resource":{"attributes":[{"ey":"service.name"}]}}]}')
@example(b"[" + b'{"arrayValue":{"values":[' * 100 + b"1" + b"]}}" * 100 + b"]")
def test_arbitrary_bytes_never_escape(data: bytes):
    try:
        batch, framing = read_all(data)
    except ValueError as exc:
        assert str(exc)
        return
    # every record is accounted for: rows, quarantine or skip (or nothing in it to count)
    assert framing.complete_offset + framing.pending_bytes <= max(len(data), 0) or (
        framing.compression != "none"
    )
    for location, error, excerpt in batch.quarantine:
        assert location and error and isinstance(excerpt, str)
    batch.to_arrow()  # the staged columns always fit the schema


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_BYTES)
def test_parse_unit_turns_anything_into_rows_rejects_or_a_file_error(data: bytes):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input"
        path.write_bytes(data)
        parsed = OtlpFiles().collect(Unit(str(path), path), Config())
    try:
        read_all(data)
        refused = False
    except ValueError:
        refused = True
    if refused:
        assert parsed.error and str(path) in parsed.error


REFUSED = {
    b"\x1f\x8b\x08\x00garbage": "corrupt gzip stream",
    b"\x28\xb5\x2f\xfd" + b"junk" * 4: "corrupt zstd stream",
    b"%PDF-1.7": "not OTLP",
}


def test_a_refused_file_is_recorded_as_failed(tmp_path: Path):
    for i, data in enumerate(REFUSED):
        path = tmp_path / f"f{i}"
        path.write_bytes(data)
    wh = Warehouse(tmp_path / "w.duckdb")
    summary = ingest_paths(wh, [tmp_path / f"f{i}" for i in range(3)], Config())
    assert len(summary.failures) == 3 and not summary.ok
    with wh.read() as con:
        rows = con.execute("SELECT status, message FROM ingest_log ORDER BY uri").fetchall()
    assert [r[0] for r in rows] == ["failed"] * 3
    for (_, message), expected in zip(rows, REFUSED.values(), strict=True):
        assert expected in message


# -- 2. round trip ----------------------------------------------------------------------------
# a fixed past bound: later starts are refused as "past the time of ingest" (clock skew)
LATEST_START_NS = 1_790_000_000 * 10**9  # 2026-09-21
ATTR_KEY = st.text(min_size=1, max_size=40).filter(
    lambda k: not k.startswith(("gen_ai.", "llm.")) and k.strip()
)
ATTR_VALUE = st.one_of(
    st.text(max_size=60),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)


@st.composite
def span_specs(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(st.integers(MIN_NS, LATEST_START_NS))
    duration = draw(st.one_of(st.integers(0, 10**12), st.integers(0, 10**6)))
    return {
        "trace_id": draw(st.binary(min_size=16, max_size=16).filter(any)).hex(),
        "span_id": draw(st.binary(min_size=8, max_size=8).filter(any)).hex(),
        "name": draw(st.text(min_size=1, max_size=80)),
        "kind": draw(st.integers(0, len(KINDS) - 1)),
        "status": draw(st.integers(0, len(STATUSES) - 1)),
        "start": start,
        "end": start + duration,
        "input_tokens": draw(st.none() | st.integers(0, 2**53 - 1)),
        "output_tokens": draw(st.none() | st.integers(0, 2**53 - 1)),
        "attributes": draw(st.dictionaries(ATTR_KEY, ATTR_VALUE, max_size=5)),
    }


def _otlp_attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        v: dict[str, Any] = {"boolValue": value}
    elif isinstance(value, int):
        v = {"intValue": str(value)}
    elif isinstance(value, float):
        v = {"doubleValue": value}
    else:
        v = {"stringValue": value}
    return {"key": key, "value": v}


def _to_otlp(span: dict[str, Any]) -> dict[str, Any]:
    attrs = [_otlp_attr(k, v) for k, v in span["attributes"].items()]
    for name in ("input_tokens", "output_tokens"):
        if span[name] is not None:
            attrs.append(_otlp_attr(f"gen_ai.usage.{name}", span[name]))
    out: dict[str, Any] = {
        "traceId": span["trace_id"],
        "spanId": span["span_id"],
        "name": span["name"],
        "kind": span["kind"],
        "startTimeUnixNano": str(span["start"]),
        "endTimeUnixNano": str(span["end"]),
        "attributes": attrs,
    }
    if span["status"]:
        out["status"] = {"code": span["status"]}
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(span_specs(), min_size=1, max_size=6, unique_by=lambda s: s["span_id"]))
def test_valid_spans_round_trip(spans: list[dict[str, Any]]):
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": [_otlp_attr("service.name", "svc")]},
                "scopeSpans": [{"spans": [_to_otlp(s) for s in spans]}],
            }
        ]
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spans.jsonl"
        path.write_bytes(orjson.dumps(doc) + b"\n")
        wh = Warehouse(Path(tmp) / "w.duckdb")
        summary = ingest_paths(wh, [path], Config())
        assert summary.ok and summary.rows("spans") == len(spans), summary
        with wh.read() as con:
            got = con.execute(
                """SELECT trace_id, span_id, name, kind, status_code, epoch_us(start_time),
                          epoch_us(end_time), duration_ms, input_tokens, output_tokens,
                          attributes::VARCHAR
                   FROM spans"""
            ).fetchall()
    by_id = {row[1]: row for row in got}
    for span in spans:
        row = by_id[span["span_id"]]
        assert row[:5] == (
            span["trace_id"],
            span["span_id"],
            span["name"][:1024] if len(span["name"]) <= 1024 else row[2],
            KINDS[span["kind"]],
            STATUSES[span["status"]],
        )
        # TIMESTAMPTZ keeps microseconds: the nanoseconds are rounded to the nearest one
        assert abs(row[5] * 1000 - span["start"]) <= 500
        assert abs(row[6] * 1000 - span["end"]) <= 500
        assert row[7] == (span["end"] - span["start"]) / 1e6
        assert (row[8], row[9]) == (span["input_tokens"], span["output_tokens"])
        assert (orjson.loads(row[10]) if row[10] else {}) == span["attributes"]
