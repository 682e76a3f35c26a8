"""The ledger's modelled rows kept current: recomputed by the gpu_samples publish hook and by
a config change, never duplicated, never touching a cloud delivery's rows, and safe with
hostile names."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from test_cost_model import ROLLUP, WORKED, at, insert_rollup

from warehouse import cost_ledger
from warehouse.config import parse
from warehouse.db import Warehouse
from warehouse.load import store_config
from warehouse.publish import publish
from warehouse.report import InputReport
from warehouse.stage import Stage
from warehouse.tables import TABLES, Disposition, replace_unit

TODAY = datetime.now(UTC).date()
PURCHASE = date(2026, 3, 14)
DAYS_SINCE_PURCHASE = (TODAY - PURCHASE).days + 1
EUR_RATE = '\n[billing]\nrates = [{ currency = "EUR", rate = 1.1, since = 2026-01-01 }]\n'


def rows(wh: Warehouse, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with wh.read() as con:
        return con.execute(sql, params).fetchall()


def store(wh: Warehouse, text: str, origin: str = "fleet.toml") -> None:
    config = parse(tomllib.loads(text), origin)
    store_config(wh, config.origin, config.to_json())


def samples(hours: list[datetime], host: str = "fra-gpu-1") -> pa.Table:
    n = len(hours)
    return pa.table(
        {
            "ts": pa.array(hours, pa.timestamp("us", tz="UTC")),
            "environment": ["dc-fra"] * n,
            "pool": ["h100"] * n,
            "host": [host] * n,
            "gpu_uuid": ["GPU-A"] * n,
            "mig_instance": [""] * n,
            "gpu_share": [1.0] * n,
            "utilization": [80.0] * n,
            "energy_mj": [7.2e9 + i for i in range(n)],
            "source": ["test"] * n,
        }
    )


def publish_samples(wh: Warehouse, table: pa.Table, uri: str = "scrape.prom") -> int:
    stage = Stage()
    index = stage.begin(InputReport(uri))
    stage.add("gpu_samples", table, index)
    report = publish(wh, stage, source="gpu")
    return report.load_ids[0]


def test_a_config_store_writes_every_day_since_the_purchase(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    insert_rollup(wh, ROLLUP)
    store(wh, WORKED)
    (count, first, last, units) = rows(
        wh,
        "SELECT count(*), min(ChargePeriodStart), max(ChargePeriodStart), "
        "count(DISTINCT x_ReplaceUnit) FROM billing WHERE x_Modelled",
    )[0]
    assert count == units == DAYS_SINCE_PURCHASE  # one pool: one row per day, up to today
    assert first == at(14, 0)
    assert last.date() == TODAY
    assert rows(wh, "SELECT count(*) FROM billing WHERE load_id IS NOT NULL") == [(0,)]
    # the same config again: nothing recomputed, nothing added
    store(wh, WORKED)
    assert rows(wh, "SELECT count(*) FROM billing") == [(DAYS_SINCE_PURCHASE,)]


def test_a_changed_price_is_recomputed_and_a_removed_model_deleted(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    store(wh, WORKED)
    day = {"day": datetime(2026, 3, 15, tzinfo=UTC)}
    sql = "SELECT EffectiveCost FROM billing WHERE ChargePeriodStart = $day"
    assert rows(wh, sql, **day) == [(Decimal("275.033576642336"),)]
    store(wh, WORKED.replace("fixed_monthly_cost = 3100", "fixed_monthly_cost = 6200"))
    assert rows(wh, sql, **day) == [(Decimal("375.033576642336"),)]  # 100 a day more
    assert rows(wh, "SELECT count(*) FROM billing") == [(DAYS_SINCE_PURCHASE,)]
    # bought a month later: the days before it go
    later = WORKED.replace("purchase_date = 2026-03-14", "purchase_date = 2026-04-14")
    store(wh, later)
    assert rows(wh, "SELECT min(ChargePeriodStart) FROM billing") == [
        (datetime(2026, 4, 14, tzinfo=UTC),)
    ]
    # no cost table any more: every modelled row of the environment goes
    without = later.split("[environments.gpu_pools.cost]")[0]
    store(wh, without)
    assert rows(wh, "SELECT count(*) FROM billing") == [(0,)]


def test_a_config_that_no_longer_parses_leaves_the_ledger_as_it_was(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    store(wh, WORKED)
    store_config(wh, "old.toml", '{"environments": [{"name": "e", "colour": "red"}]}')
    assert rows(wh, "SELECT count(*) FROM billing") == [(DAYS_SINCE_PURCHASE,)]


def test_a_gpu_samples_publish_recomputes_its_days_under_its_load_id(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    store(wh, WORKED)
    day = {"day": datetime(2026, 3, 14, tzinfo=UTC)}
    sql = "SELECT EffectiveCost, x_EnergyKwh, load_id FROM billing WHERE ChargePeriodStart = $day"
    assert rows(wh, sql, **day) == [(Decimal("264.233576642336") + Decimal("10.8"), 0.0, None)]
    # The GPU rollup hook runs first in the same publish, so the model prices what the
    # samples measured: a counter rising 10 Wh a minute over four one-minute steps.
    table = samples([at(14, 10) + timedelta(minutes=m) for m in range(5)])
    table = table.set_column(
        table.schema.get_field_index("energy_mj"),
        "energy_mj",
        pa.array([7.2e9 + m * 36e6 for m in range(5)]),
    )
    load_id = publish_samples(wh, table)
    ((cost, energy, loaded),) = rows(wh, sql, **day)
    assert energy == pytest.approx(0.04) and loaded == load_id
    assert cost > Decimal("264.233576642336") + Decimal("10.8")  # the energy is priced
    # samples of that day again (duplicates) and of another day: still one row a day
    publish_samples(wh, samples([at(14, 10), at(20, 10)]), uri="again.prom")
    assert rows(wh, "SELECT count(*), count(DISTINCT x_ReplaceUnit) FROM billing") == [
        (DAYS_SINCE_PURCHASE, DAYS_SINCE_PURCHASE)
    ]


def test_the_hook_fills_days_that_have_no_row_yet(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    store(wh, WORKED)
    with wh.write() as con:
        con.execute("DELETE FROM billing WHERE ChargePeriodStart >= $d", {"d": at(1, 0, 5)})
    publish_samples(wh, samples([at(14, 10)]))
    assert rows(wh, "SELECT count(*) FROM billing") == [(DAYS_SINCE_PURCHASE,)]


def test_a_publish_without_a_stored_config_models_nothing(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    publish_samples(wh, samples([at(14, 10)]))
    assert rows(wh, "SELECT count(*) FROM billing") == [(0,)]
    assert rows(wh, "SELECT count(*) FROM gpu_samples") == [(1,)]


def test_the_hook_runs_after_the_gpu_samples_are_written() -> None:
    spec = TABLES["gpu_samples"]
    names = [hook.__name__ for hook in spec.hooks]
    assert names.index("_gpu_hours") < names.index("_gpu_cost") < names.index("_gpu_allocation")
    billing = TABLES["billing"]
    assert billing.disposition is Disposition.REPLACE and billing.key == ("x_ReplaceUnit",)


def cloud_rows(unit: str, costs: list[str]) -> pa.Table:
    n = len(costs)
    money = pa.array([Decimal(c) for c in costs], pa.decimal128(38, 12))
    start = datetime(2026, 3, 1, tzinfo=UTC)
    return pa.table(
        {
            "BilledCost": money,
            "BillingAccountId": ["123456789012"] * n,
            "BillingCurrency": ["USD"] * n,
            "BillingPeriodStart": [start] * n,
            "BillingPeriodEnd": [datetime(2026, 4, 1, tzinfo=UTC)] * n,
            "ChargeCategory": ["Usage"] * n,
            "ChargePeriodStart": [start + timedelta(days=i) for i in range(n)],
            "ChargePeriodEnd": [start + timedelta(days=i + 1) for i in range(n)],
            "ContractedCost": money,
            "EffectiveCost": money,
            "InvoiceIssuerName": ["AWS"] * n,
            "ListCost": money,
            "ProviderName": ["AWS"] * n,
            "PublisherName": ["AWS"] * n,
            "ServiceCategory": ["Compute"] * n,
            "ServiceName": ["Amazon EC2"] * n,
            "x_ReplaceUnit": [unit] * n,
            "x_Modelled": [False] * n,
        }
    )


def test_a_cloud_delivery_and_the_model_replace_only_their_own_units(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    store(wh, WORKED)
    unit = replace_unit("focus", "AWS", "123456789012", "2026-03", "focus")
    for costs in (["1.5", "2.5"], ["1.5", "2.5", "4"]):  # a corrected re-delivery
        stage = Stage()
        stage.add("billing", cloud_rows(unit, costs), stage.begin(InputReport("focus.csv")))
        publish(wh, stage, source="focus")
    cloud = "SELECT count(*), sum(EffectiveCost) FROM billing WHERE NOT x_Modelled"
    assert rows(wh, cloud) == [(3, Decimal("8"))]
    store(wh, WORKED.replace("pue = 1.5", "pue = 1.2"))  # the model recomputes every day
    assert rows(wh, cloud) == [(3, Decimal("8"))]
    assert rows(wh, "SELECT count(*) FROM billing WHERE x_Modelled") == [(DAYS_SINCE_PURCHASE,)]


def test_hostile_environment_names_cannot_reach_another_unit(tmp_path: Path) -> None:
    hostile = "dc-fra/2026-03-15'; DROP TABLE billing; --"
    text = WORKED.replace('name = "dc-fra"', f'name = "{hostile}"', 1) + WORKED
    config = parse(tomllib.loads(text), "fleet.toml")
    assert [e.name for e in config.environments] == [hostile, "dc-fra"]
    wh = Warehouse(tmp_path / "w.duckdb")
    store_config(wh, config.origin, config.to_json())
    units = {u for (u,) in rows(wh, "SELECT DISTINCT x_ReplaceUnit FROM billing")}
    assert "modelled/dc-fra%2F2026-03-15%27%3B%20DROP%20TABLE%20billing%3B%20--/2026-03-14" in units
    per_env = rows(wh, "SELECT x_Environment, count(*) FROM billing GROUP BY 1 ORDER BY 1")
    assert per_env == [("dc-fra", DAYS_SINCE_PURCHASE), (hostile, DAYS_SINCE_PURCHASE)]
    # recomputing one environment leaves the other's rows alone
    with wh.write() as con:
        cost_ledger.replace_days(con, config, {"dc-fra": {PURCHASE}}, load_id=None)
    assert rows(wh, "SELECT count(*) FROM billing") == [(2 * DAYS_SINCE_PURCHASE,)]


def test_non_finite_and_negative_energy_counts_as_none(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    bad = [list(r) for r in ROLLUP[:3]]
    bad[0][11], bad[1][11] = float("inf"), -5.0  # energy_wh
    insert_rollup(wh, [tuple(r) for r in bad])
    config = parse(tomllib.loads(WORKED), "t")
    with wh.write() as con:
        cost_ledger.replace_days(con, config, {"dc-fra": {PURCHASE}}, load_id=None)
    assert rows(wh, "SELECT x_EnergyKwh, x_BusyGpuHours FROM billing") == [(1.0, 3.0)]


def test_cost_days_sums_per_environment_and_day(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    insert_rollup(wh, ROLLUP)
    store(wh, WORKED)
    frame = cost_ledger.cost_days(wh, at(14, 0), at(16, 0))
    assert frame["day"].to_list() == [date(2026, 3, 14), date(2026, 3, 15)]
    first = frame.row(0, named=True)
    assert first["cost"] == Decimal("276.271076642336")
    assert first["currency"] == "EUR" and first["capacity_gpu_hours"] == 192
    assert first["energy_kwh"] == 2.75 and first["co2e_kg"] == pytest.approx(16.05)
    assert float(first["cost_per_gpu_hour"]) == pytest.approx(276.271076642336 / 192)
    assert (
        first["busy_cost"]
        + first["idle_held_cost"]
        + first["idle_free_cost"]
        + first["unmonitored_cost"]
        == first["cost"]
    )
    assert len(cost_ledger.cost_days(wh, None, None)) == DAYS_SINCE_PURCHASE


def test_samples_still_load_under_a_stored_config_that_no_longer_parses(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    store(wh, WORKED)
    store_config(wh, "old.toml", '{"environments": [{"name": "e", "colour": "red"}]}')
    publish_samples(wh, samples([at(14, 10)]))
    assert rows(wh, "SELECT count(*) FROM gpu_samples") == [(1,)]
    assert rows(wh, "SELECT count(*) FROM billing") == [(DAYS_SINCE_PURCHASE,)]


def test_metrics_reads_emissions_and_cost_per_gpu_hour_from_the_modelled_rows(
    tmp_path: Path,
) -> None:
    from warehouse.metrics import metrics

    wh = Warehouse(tmp_path / "w.duckdb")
    insert_rollup(wh, ROLLUP)
    store(wh, WORKED)
    day = cost_ledger.cost_days(wh, at(14, 0), at(15, 0)).row(0, named=True)
    assert day["currency"] == "EUR"
    # metrics' costs are in the reporting currency (USD): the pool's euros at their rate
    config = parse(tomllib.loads(WORKED + EUR_RATE), "fleet.toml")
    by_env = metrics(wh, config, by=("environment",), start=at(14, 0), end=at(15, 0))
    row = by_env.filter(by_env["environment"] == day["environment"]).row(0, named=True)
    assert config.billing.reporting_currency == "USD"
    assert row["cost_per_gpu_hour"] == pytest.approx(float(day["cost_per_gpu_hour"]) * 1.1)
    assert row["co2e_kg"] == pytest.approx(day["co2e_kg"])
    fleet = metrics(wh, config, by=(), start=at(14, 0), end=at(15, 0)).row(0, named=True)
    assert fleet["cost_per_gpu_hour"] == pytest.approx(float(day["cost_per_gpu_hour"]) * 1.1)
    # without a rate there is no figure to give in dollars: null, never euros labelled USD
    bare = parse(tomllib.loads(WORKED), "fleet.toml")
    for by in (("environment",), ()):
        row = metrics(wh, bare, by=by, start=at(14, 0), end=at(15, 0)).row(0, named=True)
        assert row["cost_per_gpu_hour"] is None and row["co2e_kg"] == pytest.approx(day["co2e_kg"])


def test_a_sample_after_midnight_reprices_the_day_before(tmp_path: Path) -> None:
    """The energy of a day's last sample is known only from the next one: a load of the
    next day's first samples must reprice the day before too, as one load of both would."""
    sql = (
        "SELECT ChargePeriodStart, EffectiveCost, x_EnergyKwh FROM billing "
        "WHERE ChargePeriodStart IN ($d1, $d2) ORDER BY 1"
    )
    late = datetime(2026, 3, 14, 23, 58, tzinfo=UTC)
    times = [late - timedelta(minutes=2), late, late + timedelta(minutes=2)]  # 23:56 .. 00:00

    def energy(table: pa.Table, mj: list[float]) -> pa.Table:
        return table.set_column(
            table.schema.get_field_index("energy_mj"), "energy_mj", pa.array(mj)
        )

    counter = [7.2e9, 7.2e9 + 36e6, 7.2e9 + 72e6]
    apart, together = Warehouse(tmp_path / "apart.duckdb"), Warehouse(tmp_path / "one.duckdb")
    for wh in (apart, together):
        store(wh, WORKED)
    publish_samples(apart, energy(samples(times[:2]), counter[:2]))
    publish_samples(apart, energy(samples(times[2:]), counter[2:]), uri="next-day.prom")
    publish_samples(together, energy(samples(times), counter))
    days = {"d1": datetime(2026, 3, 14, tzinfo=UTC), "d2": datetime(2026, 3, 15, tzinfo=UTC)}
    assert rows(apart, sql, **days) == rows(together, sql, **days)
    assert rows(apart, sql, **days)[0][2] == pytest.approx(0.02)  # 23:58-00:00 was priced
    # and the allocation follows the repriced day: each day's allocation is its ledger's
    per_day = (
        "SELECT day, sum(cost) FROM cost_allocation WHERE day IN ($a, $b) GROUP BY day ORDER BY 1"
    )
    ledger = (
        "SELECT CAST(ChargePeriodStart AT TIME ZONE 'UTC' AS DATE) AS day, sum(EffectiveCost) "
        "FROM billing WHERE ChargePeriodStart IN ($d1, $d2) GROUP BY day ORDER BY 1"
    )
    both = {"a": days["d1"].date(), "b": days["d2"].date()}
    assert rows(apart, per_day, **both) == rows(apart, ledger, **days)
    assert rows(apart, ledger, **days) == rows(together, ledger, **days)


def test_metrics_without_a_range_prices_the_days_with_telemetry_only(tmp_path: Path) -> None:
    """The ledger models every day since the purchase; `metrics` with no range covers the
    days the GPU keys cover (here one), and a range asked for is priced whole."""
    from warehouse.metrics import metrics

    wh = Warehouse(tmp_path / "w.duckdb")
    insert_rollup(wh, ROLLUP)  # 14 March only
    store(wh, WORKED)
    config = parse(tomllib.loads(WORKED + EUR_RATE), "fleet.toml")
    day = cost_ledger.cost_days(wh, at(14, 0), at(15, 0)).row(0, named=True)
    unbounded = metrics(wh, config, by=("environment",)).row(0, named=True)
    assert unbounded["co2e_kg"] == pytest.approx(day["co2e_kg"])
    assert unbounded["cost_per_gpu_hour"] == pytest.approx(float(day["cost_per_gpu_hour"]) * 1.1)
    week = metrics(wh, config, by=("environment",), start=at(14, 0), end=at(21, 0))
    assert week.row(0, named=True)["co2e_kg"] == pytest.approx(
        sum(cost_ledger.cost_days(wh, at(14, 0), at(21, 0))["co2e_kg"])
    )
    assert week.row(0, named=True)["co2e_kg"] > 6 * day["co2e_kg"]  # server power, every day
