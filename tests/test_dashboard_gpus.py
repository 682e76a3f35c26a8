"""The GPUs page (AppTest): heatmap, idle GPUs, busy-looking idle GPUs, KPIs from the rollup."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from dashboard_support import dataframe_cells, markdown_texts, open_page, plotly_specs
from streamlit.testing.v1 import AppTest
from test_allocation import bill

from hybridlens.ingest_billing import ingest_billing
from ingest.traces import ingest_paths
from sample_data.generator import generate
from warehouse.config import load_file
from warehouse.cost_ledger import cost_days
from warehouse.db import Warehouse
from warehouse.load import store_config

END = datetime(2026, 11, 1, tzinfo=UTC)
PAGE = "views/gpus.py"
SCENARIO = Path(__file__).resolve().parents[1] / "sample_data" / "scenario.toml"
RAW_MISSING = re.compile(r"\b(nan|NaN|None|inf)\b")


def rollup_rows(wh: Warehouse) -> None:
    """Three GPUs over the last two days: one busy then held idle, one free, one spin-polling."""
    t0 = END - timedelta(days=2)
    with wh.write() as con:
        for h in range(48):
            busy = h < 30
            for env, host, uuid, workload, util, sm, energy, state in (
                ("dc-frankfurt", "fra-gpu-06", "GPU-aaaa1111", "finetune", 70.0 if busy else 0.5,
                 0.6 if busy else 0.0, 500.0 if busy else 70.0, "busy" if busy else "idle-held"),
                ("dc-frankfurt", "fra-gpu-05", "GPU-bbbb2222", None, 0.0, 0.0, 65.0, "idle-free"),
                ("aws-us-east-1", "<b>ip-1</b>", "GPU-cccc3333", "bge", 96.0, 0.05, 600.0, "busy"),
            ):  # fmt: skip
                con.execute(
                    "INSERT INTO rollup_gpu_hours VALUES (?, ?, 'pool', ?, ?, '', 'NVIDIA H100', "
                    "1.0, ?, 12, 1.0, ?, ?, ?, 1000, 79000, 300, ?, ?, NULL, NULL)",
                    [t0 + timedelta(hours=h), env, host, uuid, workload, util, util, sm, energy,
                     state],
                )  # fmt: skip


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    root: Path = tmp_path_factory.mktemp("gpus")
    generate(root / "data", days=3, seed=7, scale=0.1, end=END, gpu=False)
    wh = Warehouse(root / "w.duckdb")
    config = load_file(SCENARIO)  # Frankfurt's and Munich's pools have a cost model
    store_config(wh, config.origin, config.to_json())
    report = ingest_paths(wh, [root / "data" / "traces"], config)
    assert report.ok
    rollup_rows(wh)
    cloud = {"environment": "aws-us-east-1"}  # 30 October; the 31st is not billed yet
    items = [
        {"day": 30, "cost": "240.00", "tags": cloud},
        {"day": 30, "cost": "120.00", "tags": cloud},
    ]
    assert ingest_billing(wh, [bill(root / "aws.csv", items)], config).ok
    return wh


@pytest.fixture
def page(warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    yield open_page(warehouse.path, PAGE, monkeypatch)


def test_the_page_draws_the_heatmap_and_the_kpis(page: AppTest) -> None:
    assert [t.value for t in page.title] == ["GPUs"]
    specs = plotly_specs(page)
    assert any('"type":"heatmap"' in s.replace(" ", "") for s in specs)
    kpis = {m.label: m.value for m in page.metric}
    assert kpis["GPUs reporting"] == "3"
    assert kpis["Idle-held GPU-hours"] == "18" and kpis["Idle-free GPU-hours"] == "48"
    assert kpis["Busy GPU-hours"] == "78"  # 30 + 48
    energy = (30 * 500 + 18 * 70 + 48 * 65 + 48 * 600) / 1000
    assert kpis["GPU energy (kWh)"] == f"{energy:,.1f}"


def test_idle_gpus_are_listed_longest_first_with_who_holds_them(page: AppTest) -> None:
    idle = next(df.value for df in page.dataframe if "Idle for" in df.value.columns)
    assert idle["GPU"].tolist() == ["GPU-bbbb2222", "GPU-aaaa1111"]
    assert idle["State"].tolist() == ["idle-free", "idle-held"]
    assert idle["Held by"].tolist() == ["—", "finetune"]
    assert idle["Idle for"].tolist() == ["2.0 d", "18 h"]


def test_busy_looking_idle_gpus_are_flagged(page: AppTest) -> None:
    odd = next(df.value for df in page.dataframe if "SM activity" in df.value.columns)
    assert odd["Held by"].tolist() == ["bge"]
    said = "1 GPU looks busy" if len(odd) == 1 else f"{len(odd)} GPUs look busy"
    assert any(w.value.startswith(said) for w in page.warning)


def test_every_gpu_table_downloads_as_csv(page: AppTest) -> None:
    names = {b.proto.label for b in page.get("download_button")}
    assert names == {"Download CSV"}
    assert len(page.get("download_button")) == len(page.dataframe) == 4


def test_no_raw_missing_values_and_hostile_hosts_stay_text(page: AppTest) -> None:
    for text in markdown_texts(page) + dataframe_cells(page):
        assert not RAW_MISSING.search(text), text
    assert all("<b>ip-1</b>" not in s for s in plotly_specs(page))


def test_the_modelled_cost_per_gpu_hour_is_the_cost_models(
    page: AppTest, warehouse: Warehouse
) -> None:
    table = next(df.value for df in page.dataframe if "Per GPU-hour" in df.value.columns)
    costs = table[table["Basis"] == "modelled (full cost)"]
    assert costs["Environment"].tolist() == ["dc-frankfurt", "edge-munich"]
    days = cost_days(warehouse, END - timedelta(days=3), END)
    for env, shown in zip(costs["Environment"], costs["Per GPU-hour"], strict=True):
        mine = days.filter(days["environment"] == env)
        want = float(mine["cost"].sum()) / float(mine["capacity_gpu_hours"].sum())
        assert shown == f"{want:,.2f}"
    assert any("Modelled on-prem and edge cost per day" in s for s in plotly_specs(page))


def test_a_clouds_cost_per_gpu_hour_is_its_bill_over_its_sampled_hours(
    page: AppTest, warehouse: Warehouse
) -> None:
    """360 USD billed for the one day of the two its GPU reported that has a bill (the
    other is still inside the billing lag, so it is left out rather than priced at 0): 24
    busy GPU-hours at 15.00, nothing idle. `metrics` gives the same figure, and adds it
    into the fleet's."""
    from warehouse.metrics import metrics

    table = next(df.value for df in page.dataframe if "Per GPU-hour" in df.value.columns)
    cloud = table[table["Basis"] == "cloud bill (full cost)"]
    assert cloud["Environment"].tolist() == ["aws-us-east-1"]
    row = cloud.iloc[0]
    assert (row["Currency"], row["Cost"], row["Per GPU-hour"]) == ("USD", "360.00", "15.00")
    assert (row["Idle cost"], row["Idle share"], row["CO₂e (kg)"]) == ("0.00", "0%", "—")
    assert row["GPU energy (kWh)"] == f"{24 * 600 / 1000:,.1f}"

    config = load_file(SCENARIO)
    start = END - timedelta(days=3)
    by_env = metrics(warehouse, config, by=("environment",), start=start, end=END)
    per_hour = dict(zip(by_env["environment"], by_env["cost_per_gpu_hour"], strict=True))
    assert per_hour["aws-us-east-1"] == pytest.approx(15.00)
    # the fleet's: every environment's cost over every environment's hours (the pools'
    # euros at the scenario's rate, 1.08)
    days = cost_days(warehouse, start, END)
    paid = 360.0 + 1.08 * float(days["cost"].cast(float).sum())
    hours = 24.0 + float(days["capacity_gpu_hours"].sum())
    fleet = metrics(warehouse, config, by=(), start=start, end=END).row(0, named=True)
    assert fleet["cost_per_gpu_hour"] == pytest.approx(paid / hours)


def test_a_cloud_billed_in_two_currencies_is_shown_in_the_reporting_one() -> None:
    """A day with no single billing currency moves the cloud's row to the reporting
    currency; a day without a rate leaves dashes, never a sum that misses it."""
    import polars as pl

    from dashboard.gpu_cost_figures import cost_table

    def days(reporting: list[float | None]) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "environment": ["gcp", "gcp"],
                "day": [datetime(2026, 10, 1), datetime(2026, 10, 2)],
                "currency": ["EUR", None],  # the 2nd day mixes EUR and USD
                "cost": [10.0, None],
                "reporting_cost": reporting,
                "reporting_currency": ["USD", "USD"],
                "gpu_hours": [4.0, 4.0],
                "idle_gpu_hours": [0.0, 2.0],
                "energy_kwh": [None, None],
            }
        )

    row = cost_table(pl.DataFrame(), days([10.8, 21.2])).row(0, named=True)
    assert (row["Currency"], row["Cost"], row["Per GPU-hour"]) == ("USD", "32.00", "4.00")
    assert (row["Idle cost"], row["Idle share"], row["GPU energy (kWh)"]) == ("8.00", "25%", "—")
    bare = cost_table(pl.DataFrame(), days([10.8, None])).row(0, named=True)
    assert (bare["Cost"], bare["Per GPU-hour"], bare["Idle share"]) == ("—", "—", "25%")


def test_days_inside_the_billing_lag_are_marked_provisional(page: AppTest) -> None:
    import polars as pl

    from dashboard.gpu_cost_figures import provisional_note

    days = pl.DataFrame(
        {
            "environment": ["gcp", "gcp", "gcp", "<b>aws</b>"],
            "day": [date(2026, 11, 28), date(2026, 11, 29), date(2026, 11, 30), date(2026, 11, 30)],
        }
    )
    note = provisional_note(days, datetime(2026, 11, 29, tzinfo=UTC), 72)
    assert note is not None and "72 h billing lag" in note
    assert "gcp 2 days" in note and "\\<b\\>aws\\<\\/b\\> 1 day" in note  # escaped, singular
    assert provisional_note(days, datetime(2026, 12, 1, tzinfo=UTC), 72) is None
    # the page's bill (30 October) is long past the lag: no mark
    assert not any("Provisional:" in c.value for c in page.caption)
