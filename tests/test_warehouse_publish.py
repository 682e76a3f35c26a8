"""The one write path: write specs, dispositions, poisoned loads and migration 002.

Tables of later slices (billing, modelled cost, forecasts) are declared here by the tests
themselves, so `replace` and `append` are proved on the same `publish` the spans use.
"""

from __future__ import annotations

import gzip
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pytest
from otlp_factory import BASE_NS, SpanSpec, jsonl, traces_request

from ingest.otlp import Batch, Mapping
from ingest.traces import ingest_paths
from warehouse.config import Config
from warehouse.db import Warehouse, schema_version
from warehouse.errors import WarehouseError
from warehouse.metrics import metrics
from warehouse.publish import PublishError, publish, publish_each
from warehouse.report import InputReport, Status
from warehouse.rollups import hour_ranges
from warehouse.stage import Stage
from warehouse.tables import TABLES, Disposition, TableSpec

ROOT = Path(__file__).resolve().parents[1]
V1 = Path(__file__).parent / "cases" / "warehouse_v1"
T0 = datetime(2026, 10, 26, 8, 0, tzinfo=UTC)
MAX_SAFE = 2**53 - 1


def rows(wh: Warehouse, sql: str) -> list[tuple[Any, ...]]:
    with wh.read() as con:
        return con.execute(sql).fetchall()


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    wh = Warehouse(tmp_path / "w.duckdb")
    with wh.write() as con:
        con.execute(
            """CREATE TABLE deliveries (
                   account VARCHAR, period VARCHAR, ts TIMESTAMPTZ NOT NULL,
                   cost DECIMAL(38, 12) NOT NULL, load_id BIGINT NOT NULL)"""
        )
        con.execute("CREATE TABLE events (ts TIMESTAMPTZ NOT NULL, what VARCHAR NOT NULL)")
        con.execute(
            """CREATE TABLE samples (host VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL,
                   value DOUBLE, load_id BIGINT NOT NULL)"""
        )
    return wh


class Hours:
    """A hook that remembers the hours it was given."""

    def __init__(self) -> None:
        self.calls: list[set[datetime]] = []

    def __call__(self, con: duckdb.DuckDBPyConnection, hours: set[datetime]) -> None:
        self.calls.append(set(hours))


def delivery(account: str | None, period: str, hour: int, costs: list[str]) -> pa.Table:
    return pa.table(
        {
            "account": [account] * len(costs),
            "period": [period] * len(costs),
            "ts": [T0 + timedelta(hours=hour)] * len(costs),
            "cost": pa.array([pa.scalar(c).as_py() for c in costs]).cast(pa.decimal128(38, 12)),
        }
    )


def stage_of(*frames: tuple[str, str, pa.Table]) -> Stage:
    """A stage with one input per distinct uri, each staging its (table, frame)."""
    stage = Stage()
    index: dict[str, int] = {}
    for uri, table, frame in frames:
        if uri not in index:
            index[uri] = stage.begin(InputReport(uri=uri))
        stage.add(table, frame, index[uri])
    return stage


# -- replace, append, merge -----------------------------------------------------------------------
def test_replace_deletes_the_partitions_in_the_batch_and_keeps_the_others(
    warehouse: Warehouse,
) -> None:
    hook = Hours()
    spec = TableSpec(
        "deliveries", Disposition.REPLACE, key=("account", "period"), time_column="ts",
        hooks=(hook,),
    )  # fmt: skip
    specs = {"deliveries": spec}
    first = stage_of(
        ("a.csv", "deliveries", delivery("acct-1", "2026-10", 0, ["1.5", "2.5"])),
        ("a.csv", "deliveries", delivery("acct-2", "2026-10", 1, ["7"])),
        ("a.csv", "deliveries", delivery(None, "2026-10", 2, ["9"])),
    )
    report = publish(warehouse, first, source="test", specs=specs)
    assert report.rows("deliveries") == 4
    assert hook.calls == [{T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)}]
    # a corrected delivery of acct-1 and of the account-less unit: both replaced, acct-2 kept
    second = stage_of(
        ("b.csv", "deliveries", delivery("acct-1", "2026-10", 5, ["3"])),
        ("b.csv", "deliveries", delivery(None, "2026-10", 5, ["4"])),
    )
    report = publish(warehouse, second, source="test", specs=specs)
    assert (report.rows("deliveries"), report.duplicates()) == (2, 0)
    got = rows(
        warehouse, "SELECT account, sum(cost)::VARCHAR FROM deliveries GROUP BY ALL ORDER BY 1"
    )
    assert got == [
        ("acct-1", "3.000000000000"),
        ("acct-2", "7.000000000000"),
        (None, "4.000000000000"),
    ]
    # the hook hears of the hours the replaced rows were in, and of the new rows' hour
    assert hook.calls[1] == {T0, T0 + timedelta(hours=2), T0 + timedelta(hours=5)}
    # publishing the same delivery again changes nothing
    again = stage_of(("b.csv", "deliveries", delivery("acct-1", "2026-10", 5, ["3"])))
    publish(warehouse, again, source="test", specs=specs)
    assert rows(warehouse, "SELECT count(*) FROM deliveries WHERE account = 'acct-1'") == [(1,)]


def test_append_inserts_every_row_and_a_table_may_have_no_load_id(warehouse: Warehouse) -> None:
    spec = TableSpec("events", Disposition.APPEND, time_column="ts", load_id_column=None)
    frame = pa.table({"ts": [T0, T0], "what": ["start", "start"]})
    for _ in range(2):
        report = publish(
            warehouse, stage_of(("e", "events", frame)), source="t", specs={"events": spec}
        )
        assert report.rows("events") == 2 and report.duplicates() == 0
    assert rows(warehouse, "SELECT count(*) FROM events") == [(4,)]


def test_merge_keeps_the_first_in_the_batch_and_skips_stored_keys(warehouse: Warehouse) -> None:
    spec = TableSpec(
        "samples", Disposition.MERGE, key=("host", "ts"), time_column="ts", keep_first_by="value"
    )
    frame = pa.table({"host": ["h", "h", "g"], "ts": [T0, T0, T0], "value": [2.0, 1.0, 5.0]})
    report = publish(
        warehouse, stage_of(("s", "samples", frame)), source="t", specs={"samples": spec}
    )
    assert (report.rows("samples"), report.duplicates("samples")) == (2, 1)
    assert rows(warehouse, "SELECT host, value FROM samples ORDER BY 1") == [("g", 5.0), ("h", 1.0)]
    report = publish(
        warehouse, stage_of(("s2", "samples", frame)), source="t", specs={"samples": spec}
    )
    assert (report.rows("samples"), report.duplicates("samples")) == (0, 3)
    log = rows(warehouse, "SELECT uri, rows, duplicates, status FROM ingest_log ORDER BY load_id")
    assert log == [("s", 2, 1, "ok"), ("s2", 0, 3, "ok")]


def test_a_spec_without_a_key_or_time_range_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a key"):
        TableSpec("x", Disposition.REPLACE, time_column="ts")
    with pytest.raises(ValueError, match="within a time range"):
        TableSpec("x", Disposition.MERGE, key=("k",))


def test_a_table_without_a_spec_is_a_sentence(warehouse: Warehouse) -> None:
    stage = stage_of(("e", "no_such_table", pa.table({"a": [1]})))
    with pytest.raises(WarehouseError, match=r"no write spec for table.*no_such_table"):
        publish(warehouse, stage, source="t")


def test_quarantine_and_skipped_counts_are_logged_per_input(warehouse: Warehouse) -> None:
    spec = {"events": TableSpec("events", Disposition.APPEND, load_id_column=None)}
    stage = stage_of(("good", "events", pa.table({"ts": [T0], "what": ["x"]})))
    bad = stage.begin(InputReport(uri="bad"))
    stage.reject(bad, "line 3", "not valid JSON", "{oops")
    stage.inputs[bad].skipped.update({"metrics requests": 2, "empty lines": 1})
    report = publish(warehouse, stage, source="t", specs=spec)
    assert [i.status for i in report.inputs] == [Status.OK, Status.PARTIAL]
    assert report.quarantined == 1 and not report.ok
    assert rows(warehouse, "SELECT uri, location, error, raw_excerpt FROM quarantine") == [
        ("bad", "line 3", "not valid JSON", "{oops")
    ]
    assert rows(
        warehouse, "SELECT uri, quarantined, skipped, status FROM ingest_log ORDER BY 1"
    ) == [
        ("bad", 1, "1 empty lines; 2 metrics requests", "partial"),
        ("good", 0, None, "ok"),
    ]


# -- a publish that fails: one sentence, and the other inputs still load ------------------------
def _samples(host: str | None) -> pa.Table:
    return pa.table({"host": pa.array([host], pa.string()), "ts": [T0], "value": [1.0]})


def test_a_failing_publish_names_the_table_and_input_and_writes_nothing(
    warehouse: Warehouse,
) -> None:
    spec = {
        "samples": TableSpec("samples", Disposition.MERGE, key=("host", "ts"), time_column="ts")
    }
    stage = stage_of(
        ("ok.prom", "samples", _samples("h1")), ("evil.prom", "samples", _samples(None))
    )
    with pytest.raises(PublishError) as caught:
        publish(warehouse, stage, source="t", specs=spec)
    message = str(caught.value)
    assert "table 'samples'" in message and "ok.prom, evil.prom" in message
    assert "NOT NULL" in message and "Traceback" not in message
    assert caught.value.table == "samples" and caught.value.uris == ("ok.prom", "evil.prom")
    assert rows(warehouse, "SELECT count(*) FROM samples") == [(0,)]
    assert rows(warehouse, "SELECT count(*) FROM ingest_log") == [(0,)]


def test_publish_each_sets_the_failing_input_aside_and_publishes_the_others(
    warehouse: Warehouse,
) -> None:
    spec = {
        "samples": TableSpec("samples", Disposition.MERGE, key=("host", "ts"), time_column="ts")
    }
    stage = stage_of(
        ("a.prom", "samples", _samples("h1")),
        ("evil.prom", "samples", _samples(None)),
        ("b.prom", "samples", _samples("h2")),
    )
    report = publish_each(warehouse, stage, source="t", specs=spec)
    assert [(i.uri, i.status) for i in report.inputs] == [
        ("a.prom", Status.OK), ("evil.prom", Status.FAILED), ("b.prom", Status.OK),
    ]  # fmt: skip
    assert report.rows("samples") == 2 and len(report.failures) == 1
    assert "evil.prom" in report.failures[0] and "NOT NULL" in report.failures[0]
    assert rows(warehouse, "SELECT host FROM samples ORDER BY 1") == [("h1",), ("h2",)]
    assert rows(warehouse, "SELECT uri, status FROM ingest_log ORDER BY load_id") == [
        ("a.prom", "ok"), ("evil.prom", "failed"), ("b.prom", "ok"),
    ]  # fmt: skip
    assert rows(warehouse, "SELECT uri, location FROM quarantine") == [("evil.prom", "publish")]
    assert report.quarantined == 1  # the row saying why, as ingest_log says
    assert rows(warehouse, "SELECT quarantined FROM ingest_log WHERE status = 'failed'") == [(1,)]


def test_publish_each_isolates_an_input_whose_frames_cannot_be_staged_with_the_others(
    warehouse: Warehouse,
) -> None:
    """A frame of the wrong type (a collector bug) fails the group's Arrow concat: each
    input is published alone from the same stage, without its neighbours' frames, and the
    reason and location the caller gives are what quarantine and ingest_log say."""
    spec = {
        "samples": TableSpec("samples", Disposition.MERGE, key=("host", "ts"), time_column="ts")
    }
    wrong = pa.table(
        {"host": ["h9"], "ts": [T0], "value": pa.array([[1.0]], pa.list_(pa.float64()))}
    )
    stage = stage_of(("a.prom", "samples", _samples("h1")), ("odd.prom", "samples", wrong))
    report = publish_each(
        warehouse,
        stage,
        source="t",
        specs=spec,
        reason=lambda entry, exc: f"{entry.uri} cannot be published: {type(exc).__name__}",
        location="file",
    )
    assert [(i.uri, i.status) for i in report.inputs] == [
        ("a.prom", Status.OK), ("odd.prom", Status.FAILED),
    ]  # fmt: skip
    assert rows(warehouse, "SELECT host FROM samples") == [("h1",)]
    (error,) = report.failures
    assert error.startswith("odd.prom cannot be published: ")
    assert rows(warehouse, "SELECT uri, location, error FROM quarantine") == [
        ("odd.prom", "file", error)
    ]


def test_publish_each_isolates_a_poisoned_span_input(warehouse: Warehouse, tmp_path: Path) -> None:
    """A collector bug (a span without a service) poisons its own input only; the failed
    input is not recorded as loaded, so a fixed collector reads it again."""
    stage = Stage()
    for uri, service in (("good.jsonl", "chat"), ("poisoned.jsonl", "chat2")):
        batch = Batch(Mapping.from_config(Config()))
        doc = traces_request(
            {"service.name": service}, [SpanSpec(attributes={"gen_ai.request.model": "m"})]
        )
        batch.add_json(orjson.loads(orjson.dumps(doc)), "line 1", signal="traces")
        spans, _ = batch.to_arrow()
        if uri == "poisoned.jsonl":
            column = spans.schema.get_field_index("service")
            spans = spans.set_column(column, "service", pa.nulls(spans.num_rows, pa.string()))
        stage.add("spans", spans, stage.begin(InputReport(uri=uri)))
    report = publish_each(warehouse, stage, source="otlp-file")
    assert [i.status for i in report.inputs] == [Status.OK, Status.FAILED]
    assert "table 'spans'" in report.inputs[1].message  # type: ignore[operator]
    assert rows(warehouse, "SELECT service, is_request FROM spans") == [("chat", True)]
    assert rows(warehouse, "SELECT sum(requests) FROM rollup_hourly") == [(1.0,)]


# -- poisoned token sums and sampling weights ----------------------------------------------------
def _token_spans(path: Path, n: int, tokens: int, trace_state: str | None = None) -> Path:
    specs = [
        SpanSpec(start_ns=BASE_NS + i * 1_000_000_000, attributes={"gen_ai.request.model": "m",
                 "gen_ai.usage.input_tokens": tokens, "gen_ai.usage.output_tokens": 1})
        for i in range(n)
    ]  # fmt: skip
    doc = traces_request({"service.name": "s"}, specs)
    if trace_state:
        for span in doc["resourceSpans"][0]["scopeSpans"][0]["spans"]:
            span["traceState"] = trace_state
    path.write_bytes(jsonl(doc))
    return path


def test_an_hour_of_huge_token_counts_does_not_overflow(tmp_path: Path) -> None:
    """1,100 spans in one hour, each with 2^53 - 1 input tokens: the BIGINT hourly sum used
    to overflow and every publish of that hour failed. Now it loads, exactly."""
    wh = Warehouse(tmp_path / "w.duckdb")
    summary = ingest_paths(wh, [_token_spans(tmp_path / "p.jsonl", 1100, MAX_SAFE)], Config())
    assert summary.ok and summary.rows("spans") == 1100
    got = rows(wh, "SELECT count(DISTINCT hour), sum(input_tokens)::VARCHAR FROM rollup_hourly")
    assert got == [(1, str(1100 * MAX_SAFE))]
    # and a later load into the same hour publishes too
    more = _token_spans(tmp_path / "q.jsonl", 5, MAX_SAFE)
    assert ingest_paths(wh, [more], Config()).rows("spans") == 5
    got = rows(wh, "SELECT sum(input_tokens)::VARCHAR FROM rollup_hourly")
    assert got == [(str(1105 * MAX_SAFE),)]
    # and `metrics` reports the exact sum, past what a 64-bit integer holds
    assert metrics(wh, Config())["input_tokens"].to_list() == [1105 * MAX_SAFE]


def test_tokens_are_scaled_by_the_sampling_weight(tmp_path: Path) -> None:
    """A span kept by a 25% sampler (`ot=th:c`) stands for 4 requests and 4x its tokens."""
    wh = Warehouse(tmp_path / "w.duckdb")
    path = _token_spans(tmp_path / "s.jsonl", 3, 1000, trace_state="ot=th:c")
    assert ingest_paths(wh, [path], Config()).ok
    frame = metrics(wh, Config())
    assert frame.select("requests", "input_tokens", "output_tokens").to_dicts() == [
        {"requests": 12, "input_tokens": 12_000, "output_tokens": 12}
    ]
    huge = _token_spans(tmp_path / "h.jsonl", 2, MAX_SAFE, trace_state="ot=th:c")
    wh2 = Warehouse(tmp_path / "w2.duckdb")
    assert ingest_paths(wh2, [huge], Config()).ok
    assert rows(wh2, "SELECT input_tokens::VARCHAR FROM rollup_hourly") == [(str(8 * MAX_SAFE),)]


def test_hour_ranges_join_close_hours_only() -> None:
    h = [T0, T0 + timedelta(minutes=30), T0 + timedelta(hours=3), T0 + timedelta(days=9)]
    assert hour_ranges(h) == [
        (T0, T0 + timedelta(hours=4)),
        (T0 + timedelta(days=9), T0 + timedelta(days=9, hours=1)),
    ]


# -- migration 002 on a file of the landed code --------------------------------------------------
def test_a_schema_1_warehouse_opens_and_gives_todays_figures(tmp_path: Path) -> None:
    """`warehouse.duckdb.gz` was written by commit 0d660ff (schema 001, see make.py): opened
    now, it migrates, and its figures equal those of the same input loaded today."""
    old = tmp_path / "old.duckdb"
    with gzip.open(V1 / "warehouse.duckdb.gz", "rb") as src, old.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    with duckdb.connect(str(old), read_only=True) as con:
        assert con.execute("SELECT value FROM _meta WHERE key = 'schema_version'").fetchall() == [
            ("1",)
        ]
        unscaled = con.execute("SELECT sum(input_tokens) FROM rollup_hourly").fetchall()[0][0]
    fresh = Warehouse(tmp_path / "new.duckdb")
    assert ingest_paths(fresh, [V1 / "spans.jsonl", V1 / "labels.jsonl"], Config()).ok
    by = ("environment", "model", "version")
    want = metrics(fresh, Config(), by=by)
    got = metrics(Warehouse(old), Config(), by=by)
    assert len(got) == len(want)
    for g, w in zip(got.to_dicts(), want.to_dicts(), strict=True):
        assert g.keys() == w.keys()
        for k, v in w.items():  # floats to summation-order noise: DuckDB sums in parallel
            assert g[k] == (pytest.approx(v, rel=1e-12) if isinstance(v, float) else v), k
    assert want["input_tokens"].sum() > unscaled  # sampled spans: the figure moved, on purpose
    assert rows(Warehouse(old), "SELECT value FROM _meta WHERE key = 'schema_version'") == [
        (str(schema_version()),)
    ]
    # and the migrated file takes new loads (the same input again: all duplicates)
    shutil.copy(V1 / "spans.jsonl", tmp_path / "spans.jsonl")
    again = ingest_paths(Warehouse(old), [tmp_path / "spans.jsonl"], Config())
    assert again.rows("spans") == 0 and again.duplicates() == 720 + 60  # spans and their events


# -- documentation ---------------------------------------------------------------------------------
def test_every_write_spec_is_documented() -> None:
    """docs/schema.md's "Write specs" table names each table with its key and disposition."""
    text = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
    section = text.split("## Write specs", 1)[1].split("\n## ", 1)[0]
    documented = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`"):
            documented[cells[0].strip("`")] = (cells[1], cells[2])
    for name, spec in TABLES.items():
        assert name in documented, f"docs/schema.md does not document the write spec of {name}"
        disposition, key = documented[name]
        assert disposition == f"`{spec.disposition}`", name
        assert re.findall(r"`([^`]+)`", key) == list(spec.key), name
