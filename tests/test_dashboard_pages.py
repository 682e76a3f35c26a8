"""Every dashboard page, run headless with Streamlit's AppTest against a real warehouse.

The numbers a page shows are checked against `warehouse.metrics.metrics` (and, for the
fleet p95, against the exact percentile of the raw spans), so a page can never drift
from `hybridlens metrics`. See tests/dashboard_support.py for the scenario.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
import streamlit as st
from dashboard_support import (
    APP,
    HOSTILE_ENV,
    HOSTILE_MODEL,
    HOSTILE_SERVICE,
    PAGES,
    RAW_MISSING,
    TRACE_LINK,
    UNCONFIGURED,
    Scenario,
    copy_scenario,
    dataframe_cells,
    markdown_texts,
    metric,
    number,
    percent,
    plotly_specs,
)
from otlp_factory import BASE_NS, NS, SpanSpec, jsonl, traces_request
from streamlit.testing.v1 import AppTest

from dashboard import data
from hybridlens.ingest_billing import ingest_billing
from ingest.traces import ingest_paths
from warehouse import slo
from warehouse.config import Config
from warehouse.db import Warehouse, read_sql, run
from warehouse.metrics import metrics
from warehouse.uptime import slo_params

START = datetime(2026, 10, 22, tzinfo=UTC)  # the scenario's first day; 10 days < default 30
END = datetime(2026, 11, 1, tzinfo=UTC)
BILLS = Path(__file__).parent / "cases" / "billing" / "focus-1.2-small.csv"


@pytest.fixture(scope="module")
def scenario(built_scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return copy_scenario(built_scenario, tmp_path_factory.mktemp("dashboard"))


@pytest.fixture
def app_env(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scenario]:
    monkeypatch.setenv("HYBRIDLENS_WAREHOUSE", str(scenario.warehouse.path))
    monkeypatch.delenv("HYBRIDLENS_CONFIG", raising=False)
    yield scenario


def run_app(page: str | None = None, **query: str | list[str]) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=90)
    for key, value in query.items():
        at.query_params[key] = value
    if page:
        at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def table(at: AppTest, column: str) -> pl.DataFrame:
    """The first dataframe on the page that has `column`."""
    for df in at.dataframe:
        if column in df.value.columns:
            return pl.from_pandas(df.value.astype(str).reset_index(drop=True))
    raise AssertionError(f"no table with a {column!r} column")


def close_ms(text: str, value: float) -> bool:
    """A latency label equals `value` to the precision it is printed with."""
    return abs(number(text) - value) <= (0.05 if value < 100 else 0.5) + 1e-9


def close_pct(text: str, value: float, digits: int = 2) -> bool:
    return abs(percent(text) - value) <= 0.5 * 10 ** -(digits + 2) + 1e-12


def exact_p95(warehouse: Warehouse, where: str = "", params: dict[str, Any] | None = None) -> float:
    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        row = con.execute(
            "SELECT quantile_cont(duration_ms, 0.95) FROM spans WHERE is_request "
            "AND start_time >= $start AND start_time < $end " + where,
            {"start": START, "end": END, **(params or {})},
        ).fetchone()
    assert row is not None
    return float(row[0])


# -- every page ---------------------------------------------------------------------------------
@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_with_a_title_and_charts(app_env: Scenario, page: str | None) -> None:
    at = run_app(page)
    assert [t.value for t in at.title] == [PAGES[page]]
    assert plotly_specs(at), "a page without a chart"
    assert len(at.metric) >= 5


@pytest.mark.parametrize("page", list(PAGES))
def test_no_raw_nan_none_or_inf_anywhere(app_env: Scenario, page: str | None) -> None:
    focuses = [None] if page is None else ["aws-us-east-1", UNCONFIGURED, HOSTILE_ENV]
    for focus in focuses:
        at = run_app(page, **({"focus": focus} if focus else {}))
        for text in markdown_texts(at) + dataframe_cells(at):
            assert not RAW_MISSING.search(text), f"raw missing value in {text!r}"
        for df in at.dataframe:
            assert not df.value.isna().to_numpy().any(), df.value


# -- the overview -------------------------------------------------------------------------------
def test_overview_kpis_equal_metrics(app_env: Scenario) -> None:
    at = run_app()
    expected = metrics(app_env.warehouse, app_env.config, start=START, end=END)
    requests, errors = int(expected["requests"].sum()), int(expected["errors"].sum())
    assert metric(at, "Requests").value == f"{requests:,}"
    assert close_pct(metric(at, "Availability").value, 1 - errors / requests)
    p95 = number(metric(at, "p95 latency (ms)").value)
    assert abs(p95 - exact_p95(app_env.warehouse)) <= 0.01 * exact_p95(app_env.warehouse) + 0.5
    evaluated = expected.filter(pl.col("accuracy_n") > 0)
    n = int(evaluated["accuracy_n"].sum())
    mean = float((evaluated["accuracy"] * evaluated["accuracy_n"]).sum()) / n
    assert close_pct(metric(at, "Accuracy").value, mean, 1)
    assert metric(at, "Accuracy").delta == f"{n:,} evaluations"

    with app_env.warehouse.read() as con:
        minutes = run(
            con,
            "uptime_minutes",
            read_sql("uptime_minutes"),
            {"start": START, "end": END, "environments": [], **slo_params(app_env.config)},
        )
    up = minutes.filter(pl.col("state") == "up").height
    down = minutes.filter(pl.col("state") == "down").height
    assert close_pct(metric(at, "Uptime").value, up / (up + down))
    assert metric(at, "Uptime").delta == f"{down:,} down minutes"


def test_gpu_kpis_equal_metrics(app_env: Scenario) -> None:
    """The GPUs page and `metrics` read the same GPU-hours (the scenario's real GPU files)."""
    at = run_app("views/gpus.py")
    fleet = metrics(app_env.warehouse, app_env.config, start=START, end=END, by=()).row(
        0, named=True
    )
    assert fleet["gpu_hours"] > 0
    assert metric(at, "Idle-held GPU-hours").value == f"{fleet['idle_held_gpu_hours']:,.0f}"
    assert metric(at, "Idle-free GPU-hours").value == f"{fleet['idle_free_gpu_hours']:,.0f}"
    assert metric(at, "GPU energy (kWh)").value == f"{fleet['energy_kwh']:,.1f}"
    busy = metric(at, "Busy GPU-hours").delta or ""
    assert busy.endswith(f"of {fleet['gpu_hours']:,.0f} monitored")
    idle = next(df.value for df in at.dataframe if "Idle for" in df.value.columns)
    assert "finetune-mistral-lora" in set(idle["Held by"]), "the stale job holds its GPU"


def test_overview_table_equals_metrics_and_is_worst_first(app_env: Scenario) -> None:
    at = run_app()
    shown = table(at, "Missed")
    expected = metrics(app_env.warehouse, app_env.config, start=START, end=END)
    expected = expected.filter(pl.col("requests") > 0)  # a GPU-only row is the GPUs page's
    assert shown.height == expected.height
    by_key = {(r["environment"], r["model"]): r for r in expected.iter_rows(named=True)}
    for row in shown.iter_rows(named=True):
        m = by_key[(row["Environment"], row["Model"])]
        assert int(row["Requests"]) == m["requests"]
        assert int(row["Errors"]) == m["errors"]
        assert close_pct(row["Availability"], m["availability"])
        assert close_ms(row["p50 (ms)"], m["latency_p50_ms"])
        assert close_ms(row["p95 (ms)"], m["latency_p95_ms"])
        assert close_ms(row["p99 (ms)"], m["latency_p99_ms"])
        if m["uptime"] is not None:
            assert close_pct(row["Uptime"], m["uptime"])
        assert int(row["Evaluations"]) == m["accuracy_n"]
        if m["accuracy_n"]:
            assert close_pct(row["Accuracy"], m["accuracy"], 1)
        else:
            assert row["Accuracy"] == "no evaluations"
        for column, key in (("Input tokens", "input_tokens"), ("Output tokens", "output_tokens")):
            want = "—" if m[key] is None else f"{m[key]:,}"
            assert row[column] == want
    rank = {slo.BREACH: 0, slo.AT_RISK: 1, slo.MET: 2, slo.NO_SLO: 3}
    ranks = [rank[s] for s in shown["Status"].to_list()]
    assert ranks == sorted(ranks), "rows are not worst first"
    assert ranks[0] == 0, "the scenario's regression should breach the aws p95 SLO"


def test_overview_marks_unconfigured_environments_no_slo_set(app_env: Scenario) -> None:
    at = run_app()
    rows = table(at, "Missed").filter(pl.col("Environment") == UNCONFIGURED)
    assert rows.height > 0
    assert set(rows["Availability SLO"]) == {slo.NO_SLO}
    assert set(rows["p95 SLO (ms)"]) == {slo.NO_SLO}
    envs = table(at, "Budget left (30 d)").filter(pl.col("Environment") == UNCONFIGURED)
    assert envs["Status"].to_list() == [slo.NO_SLO]
    assert envs["Budget left (30 d)"].to_list() == [slo.NO_SLO]


def test_requests_change_only_against_a_span_the_data_covers(app_env: Scenario) -> None:
    # the last two days against the two before them: every environment had data by then
    at = run_app(range=["2026-10-30", "2026-10-31"])
    now = metrics(app_env.warehouse, app_env.config, start=END - timedelta(days=2), end=END)
    before = metrics(
        app_env.warehouse,
        app_env.config,
        start=END - timedelta(days=4),
        end=END - timedelta(days=2),
    )
    growth = int(now["requests"].sum()) / int(before["requests"].sum()) - 1
    assert metric(at, "Requests").delta == f"{growth:+.1%} vs the 2 days before"
    # all ten days against the ten before the data began: no change is claimed
    at = run_app()
    shown = metric(at, "Requests")
    assert shown.delta == "no like span before"
    assert "aws\\-us\\-east\\-1" in shown.help  # names escaped for markdown
    assert metric(at, "Availability").delta == ""


def test_error_budget_is_the_rolling_30_days_to_the_newest_data(app_env: Scenario) -> None:
    at = run_app(range=["2026-10-30", "2026-10-31"])  # the budget ignores the range
    envs = table(at, "Budget left (30 d)")
    newest = END  # the scenario's last hour is 23:00 on 2026-10-31
    expected = metrics(
        app_env.warehouse,
        app_env.config,
        start=newest - timedelta(days=30),
        end=newest,
        by=("environment",),
    )
    for env in app_env.config.environments:
        m = expected.filter(pl.col("environment") == env.name).row(0, named=True)
        assert env.slo.availability is not None
        left = 1 - m["errors"] / ((1 - env.slo.availability) * m["requests"])
        shown = envs.filter(pl.col("Environment") == env.name)["Budget left (30 d)"][0]
        assert close_pct(shown, left, 1)


# -- filters in the URL -------------------------------------------------------------------------
def test_environment_filter_comes_from_the_url(app_env: Scenario) -> None:
    at = run_app(env="gcp-europe-west4")
    assert at.multiselect(key="env").value == ["gcp-europe-west4"]
    assert set(table(at, "Missed")["Environment"]) == {"gcp-europe-west4"}
    expected = metrics(
        app_env.warehouse,
        app_env.config,
        start=START,
        end=END,
        environments=["gcp-europe-west4"],
    )
    assert metric(at, "Requests").value == f"{int(expected['requests'].sum()):,}"


def test_model_and_range_filters_come_from_the_url(app_env: Scenario) -> None:
    model = "mistral-7b-instruct"
    at = run_app(model=model, range=["2026-10-25", "2026-10-27"])
    assert at.date_input(key="range").value == (
        datetime(2026, 10, 25).date(),
        datetime(2026, 10, 27).date(),
    )
    shown = table(at, "Missed")
    assert set(shown["Model"]) == {model}
    expected = metrics(
        app_env.warehouse,
        app_env.config,
        start=datetime(2026, 10, 25, tzinfo=UTC),
        end=datetime(2026, 10, 28, tzinfo=UTC),
        models=[model],
    )
    assert metric(at, "Requests").value == f"{int(expected['requests'].sum()):,}"
    for row in shown.iter_rows(named=True):
        m = expected.filter(pl.col("environment") == row["Environment"]).row(0, named=True)
        assert close_ms(row["p95 (ms)"], m["latency_p95_ms"])


def test_filters_carry_over_to_the_environment_page(app_env: Scenario) -> None:
    at = run_app()
    at.multiselect(key="env").set_value(["dc-frankfurt"]).run()
    at.switch_page("views/environments.py").run()
    assert not at.exception
    assert at.selectbox(key="focus").options == ["dc-frankfurt"]


def test_unknown_url_values_are_ignored(app_env: Scenario) -> None:
    at = run_app(env="no-such-env", range=["1999-01-01", "not-a-date"])
    assert at.multiselect(key="env").value == []
    expected = metrics(app_env.warehouse, app_env.config, start=START, end=END)
    assert metric(at, "Requests").value == f"{int(expected['requests'].sum()):,}"


# -- the environment page -----------------------------------------------------------------------
def test_environment_kpis_and_tables_equal_metrics(app_env: Scenario) -> None:
    env = "aws-us-east-1"
    at = run_app("views/environments.py", focus=env)
    assert at.selectbox(key="focus").value == env
    m = metrics(
        app_env.warehouse,
        app_env.config,
        start=START,
        end=END,
        by=("environment",),
        environments=[env],
    ).row(0, named=True)
    assert metric(at, "Requests").value == f"{m['requests']:,}"
    assert close_pct(metric(at, "Availability").value, m["availability"])
    assert close_pct(metric(at, "Uptime").value, m["uptime"])
    exact = exact_p95(app_env.warehouse, "AND environment = $env", {"env": env})
    assert abs(number(metric(at, "p95 latency (ms)").value) - exact) <= 0.01 * exact + 0.5

    by_model = metrics(app_env.warehouse, app_env.config, start=START, end=END, environments=[env])
    accuracy = table(at, "Against the floor")
    for row in accuracy.iter_rows(named=True):
        r = by_model.filter(pl.col("model") == row["Model"]).row(0, named=True)
        assert int(row["Evaluations"]) == r["accuracy_n"]
        if r["accuracy_n"]:
            assert close_pct(row["Accuracy"], r["accuracy"], 1)
        else:
            assert row["Accuracy"] == "no evaluations"

    versions = metrics(
        app_env.warehouse,
        app_env.config,
        start=START,
        end=END,
        by=("environment", "model", "version"),
        environments=[env],
    )
    shown = table(at, "Version")
    assert shown.height == versions.height
    for row in shown.iter_rows(named=True):
        v = versions.filter(
            pl.col("model") == row["Model"], pl.col("version") == row["Version"]
        ).row(0, named=True)
        assert int(row["Requests"]) == v["requests"]
        assert close_ms(row["p95 (ms)"], v["latency_p95_ms"])


def _figure(at: AppTest, title_start: str) -> dict[str, Any]:
    for spec in plotly_specs(at):
        fig = json.loads(spec)
        title = fig["layout"].get("title", {}).get("text", "")
        if title.startswith(title_start):
            return fig
    raise AssertionError(f"no figure titled {title_start!r}")


def test_regression_is_marked_by_its_version_change(app_env: Scenario) -> None:
    at = run_app(
        "views/environments.py", focus="aws-us-east-1", focus_model="llama-3.1-70b-instruct"
    )
    fig = _figure(at, "Latency per")
    notes = [a.get("text", "") for a in fig["layout"].get("annotations", [])]
    assert "→ v2.4.0" in notes
    lines = [s for s in fig["layout"]["shapes"] if s["type"] == "line" and s["x0"] == s["x1"]]
    assert any(str(s["x0"]).startswith("2026-10-29T14:0") for s in lines)


def test_outage_is_shaded_and_its_bad_minutes_link_to_traces(app_env: Scenario) -> None:
    env = "gcp-europe-west4"
    at = run_app("views/environments.py", focus=env)
    fig = _figure(at, "Availability per")
    rects = [s for s in fig["layout"].get("shapes", []) if s["type"] == "rect"]
    assert any(str(s["x0"]).startswith("2026-10-27") for s in rects), "outage not shaded"

    periods = table(at, "Cause")
    assert periods["Start (UTC)"][0].startswith("2026-10-27"), "the outage is the longest"
    minutes = table(at, "Trace 1")
    links = [v for v in minutes["Trace 1"].to_list() if v]
    assert links, "no example traces behind the down minutes"
    head, tail = TRACE_LINK.split("{trace_id}")
    with duckdb.connect(str(app_env.warehouse.path), read_only=True) as con:
        for row in minutes.filter(pl.col("Trace 1") != "").iter_rows(named=True):
            minute = datetime.fromisoformat(row["Minute (UTC)"]).replace(tzinfo=UTC)
            for link in (row["Trace 1"], row["Trace 2"], row["Trace 3"]):
                if not link:
                    continue
                assert link.startswith(head) and link.endswith(tail)
                trace_id = link[len(head) : len(link) - len(tail)]
                found = con.execute(
                    "SELECT count(*) FROM spans WHERE trace_id = $t AND environment = $e "
                    "AND is_request AND status_code = 'ERROR' AND start_time >= $m "
                    "AND start_time < $m + INTERVAL 1 MINUTE",
                    {"t": trace_id, "e": env, "m": minute},
                ).fetchone()
                assert found is not None and found[0] >= 1, (trace_id, minute)


def test_unconfigured_environment_page_says_no_slo_set(app_env: Scenario) -> None:
    at = run_app("views/environments.py", focus=UNCONFIGURED)
    assert any("No SLO set" in w.value for w in at.warning)
    assert metric(at, "Error budget left").value == slo.NO_SLO


# -- untrusted text -----------------------------------------------------------------------------
def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


@pytest.mark.parametrize("page", list(PAGES))
def test_telemetry_names_never_reach_markdown_or_chart_html(
    app_env: Scenario, page: str | None
) -> None:
    at = run_app(page, **({"focus": HOSTILE_ENV} if page else {}))
    for text in markdown_texts(at):
        for bad in (HOSTILE_ENV, HOSTILE_MODEL, HOSTILE_SERVICE, "javascript:", "<img", "<b>"):
            assert bad not in text, f"{bad!r} rendered as markdown in {text!r}"
    for spec in plotly_specs(at):
        for text in _strings(json.loads(spec)):
            for bad in ("<img", "<script", "<b>env", "<i>"):
                assert bad not in text, f"{bad!r} reached plotly unescaped: {text!r}"
    if page != "views/spend.py":  # spend names no environment or model yet (its own test)
        cells = dataframe_cells(at)
        assert HOSTILE_ENV in cells or HOSTILE_MODEL in cells, "shown as plain text in a table"


# -- no data ------------------------------------------------------------------------------------
@pytest.mark.parametrize("page", list(PAGES))
def test_missing_warehouse_is_a_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page: str | None
) -> None:
    missing = tmp_path / "nothing-here.duckdb"
    monkeypatch.setenv("HYBRIDLENS_WAREHOUSE", str(missing))
    monkeypatch.delenv("HYBRIDLENS_CONFIG", raising=False)
    at = run_app(page)
    assert [t.value for t in at.title] == [PAGES[page]]
    (info,) = at.info
    assert "hybridlens demo" in info.value and "hybridlens ingest traces" in info.value
    assert not missing.exists(), "a reader must not create the warehouse"


@pytest.mark.parametrize("page", list(PAGES))
def test_empty_warehouse_is_a_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page: str | None
) -> None:
    empty = Warehouse(tmp_path / "empty.duckdb")
    with empty.write():
        pass
    monkeypatch.setenv("HYBRIDLENS_WAREHOUSE", str(empty.path))
    monkeypatch.delenv("HYBRIDLENS_CONFIG", raising=False)
    at = run_app(page)
    (info,) = at.info
    assert "holds no data yet" in info.value and "hybridlens demo" in info.value
    assert not at.metric and not plotly_specs(at)


@pytest.fixture(scope="module")
def bills_only(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """A warehouse that holds one FOCUS delivery and nothing else: finance loads its bills
    before any traces arrive."""
    wh = Warehouse(tmp_path_factory.mktemp("bills") / "w.duckdb")
    report = ingest_billing(wh, [BILLS], Config())
    assert report.ok, report.failures
    return wh


@pytest.mark.parametrize("page", list(PAGES))
def test_a_warehouse_of_bills_alone_shows_them_and_says_what_needs_traces(
    bills_only: Warehouse, monkeypatch: pytest.MonkeyPatch, page: str | None
) -> None:
    """Every page said "no requests yet" here, the Spend page too, over 4 loaded line items."""
    monkeypatch.setenv("HYBRIDLENS_WAREHOUSE", str(bills_only.path))
    monkeypatch.delenv("HYBRIDLENS_CONFIG", raising=False)
    at = run_app(page)
    assert not at.exception and [t.value for t in at.title] == [PAGES[page]]
    infos = [i.value for i in at.info]
    if PAGES[page] in ("Fleet overview", "Environments"):
        assert infos == [data.NO_REQUESTS]
    elif PAGES[page] == "Spend":
        with bills_only.read() as con:
            (total,) = con.execute("SELECT sum(EffectiveCost) FROM billing").fetchone() or (0,)
        assert metric(at, "Spend").value == f"{total:,.2f} USD"
    assert not any("no data yet" in i or "no requests yet" in i for i in infos)
    assert any("GPU samples and costs from" in c.value and "no request spans" in c.value
               for c in at.sidebar.caption)  # fmt: skip


def test_bills_from_before_the_first_trace_can_be_picked(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The range picker stopped at the first request (2026-10-22), so the scenario's bills
    of October's first days could not be looked at; the default range is still the
    requests' last days."""
    copy = copy_scenario(scenario, tmp_path)
    monkeypatch.setenv("HYBRIDLENS_WAREHOUSE", str(copy.warehouse.path))
    monkeypatch.delenv("HYBRIDLENS_CONFIG", raising=False)
    at = run_app("views/spend.py", range=["2026-10-01", "2026-10-03"])
    assert not at.exception
    assert at.date_input(key="range").value == (
        datetime(2026, 10, 1).date(),
        datetime(2026, 10, 3).date(),
    )
    start, end = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 4, tzinfo=UTC)
    expected = metrics(copy.warehouse, copy.config, start=start, end=end)["cost"].sum()
    assert expected > 0 and abs(number(metric(at, "Spend").value) - expected) < 0.5
    shown = run_app("views/spend.py")
    assert shown.date_input(key="range").value[0] == START.date()
    # the sidebar says what the requests cover apart from the bills before them
    (caption,) = [c.value for c in shown.sidebar.caption if c.value.startswith("Requests from")]
    # the on-prem pool's modelled cost starts at its purchase, years before the first trace
    assert re.match(
        r"Requests from 2026-10-22 00:00 to 2026-10-31 23:57 UTC \([\d,]+ spans\); "
        r"with GPU samples and costs, 2024-03-01 00:00 to ",
        caption,
    ), caption


# -- freshness ----------------------------------------------------------------------------------
def test_a_new_load_shows_up_without_clearing_caches(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = Warehouse(tmp_path / "copy.duckdb")
    shutil.copyfile(scenario.warehouse.path, copy.path)
    monkeypatch.setenv("HYBRIDLENS_WAREHOUSE", str(copy.path))
    monkeypatch.delenv("HYBRIDLENS_CONFIG", raising=False)
    before = number(metric(run_app(), "Requests").value)

    extra = tmp_path / "extra"
    extra.mkdir()
    resource = {"service.name": "late-service", "deployment.environment.name": "dc-frankfurt"}
    spans = [SpanSpec(kind=2, start_ns=BASE_NS + i * NS, duration_ms=50.0) for i in range(5)]
    (extra / "late.jsonl").write_bytes(jsonl(traces_request(resource, spans)))
    assert ingest_paths(copy, [extra], scenario.config).ok
    data._snapshot.clear()  # what its few-second TTL does in a live session

    after = number(metric(run_app(), "Requests").value)
    assert after == before + 5, "figures cached under the old load id were served"


@pytest.mark.parametrize("page", list(PAGES))
def test_a_page_run_reads_over_one_connection_and_lets_it_go(
    app_env: Scenario, monkeypatch: pytest.MonkeyPatch, page: str | None
) -> None:
    """With an empty cache every read of a run shares one connection (a page made five);
    once the run ends the warehouse takes a writer at once (the lock is released)."""
    opened: list[bool] = []
    connect = Warehouse._connect

    def counting(self: Warehouse, *, read_only: bool) -> Any:
        opened.append(read_only)
        return connect(self, read_only=read_only)

    monkeypatch.setattr(Warehouse, "_connect", counting)
    st.cache_data.clear()
    run_app(page)
    assert opened == [True], opened
    run_app(page)  # everything cached now: no connection at all
    assert opened == [True]
    with app_env.warehouse.write():  # the run's shared lock was released
        pass


@pytest.mark.parametrize("page", list(PAGES))
def test_unreadable_warehouse_is_a_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page: str | None
) -> None:
    broken = tmp_path / "broken.duckdb"
    broken.write_bytes(b"this is not a DuckDB file" * 100)
    monkeypatch.setenv("HYBRIDLENS_WAREHOUSE", str(broken))
    monkeypatch.delenv("HYBRIDLENS_CONFIG", raising=False)
    at = run_app(page)
    (error,) = at.error
    assert "cannot be read right now" in error.value
    assert at.code and str(broken) in at.code[0].value


def test_a_bad_config_is_blamed_on_the_config_not_the_warehouse(
    app_env: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[dashboard]\ncolour = "red"\n', encoding="utf-8")
    monkeypatch.setenv("HYBRIDLENS_CONFIG", str(bad))
    at = run_app()
    (error,) = at.error
    assert error.value.startswith("The config cannot be used") and "warehouse" not in error.value
    assert at.code and "colour" in at.code[0].value
