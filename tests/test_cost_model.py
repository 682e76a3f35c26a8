"""The on-prem / edge cost model: the hand-computed worked example of docs/cost-model.md to
the cent, amortization's edges, and every mistake in a pool's cost table named with its key
and file."""

from __future__ import annotations

import dataclasses
import tomllib
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from warehouse import cost_ledger
from warehouse.config import Config, load_file, parse
from warehouse.config_cost import CostModel
from warehouse.cost_model import Measured, amortization_end, power_price, price_pool_day
from warehouse.db import Warehouse
from warehouse.errors import ConfigError

CENT = Decimal("0.01")
# The worked example of docs/cost-model.md: one server of 8 GPUs bought mid-March 2026.
WORKED = """
[[environments]]
name = "dc-fra"
kind = "onprem"
region = "fra"

[[environments.gpu_pools]]
name = "h100"
gpu = "H100-80GB"
count = 8
hosts = ["fra-gpu-*"]

[environments.gpu_pools.cost]
servers = 1
gpus_per_server = 8
purchase_date = 2026-03-14
price_per_server = 200000
residual_value = 20000
amortization_years = 3
server_power_w = 1000
power_price_per_kwh = 0.20
power_prices = [{ month = "2026-03", price_per_kwh = 0.30 }]
pue = 1.5
fixed_monthly_cost = 3100
carbon_intensity_g_per_kwh = 400
currency = "EUR"
"""

COLUMNS = [
    "hour",
    "environment",
    "pool",
    "host",
    "gpu_uuid",
    "mig_instance",
    "gpu_share",
    "workload",
    "samples",
    "gpu_hours",
    "util_mean",
    "energy_wh",
    "state",
]


def at(day: int, hour: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


# What the GPU rollup makes of the example's samples (the rollup is the gpu-rollups hook's;
# these rows are what it must produce, computed by hand):
#  GPU-A, busy 10:00-13:00. Its energy counter (mJ since boot) reads 7.2e9 at 10:00,
#    10.8e9 at 11:00, then the host reboots: 1.8e9 at 12:00, 5.4e9 at 13:00. As
#    Prometheus's increase(), a drop means the new value counts from zero:
#    hour 10: 10.8e9 - 7.2e9 = 3.6e9 mJ = 1000 Wh; hour 11: 1.8e9 mJ = 500 Wh (not
#    1.8e9 - 10.8e9 < 0); hour 12: 3.6e9 mJ = 1000 Wh. Together 2500 Wh.
#  GPU-B, idle-held by m1 for hours 10 and 11, 100 Wh each; GPU-C idle-free for hour 10,
#    50 Wh. GPU energy that day: 2500 + 200 + 50 = 2750 Wh = 2.75 kWh.
#  A host no pool rule claims (pool NULL) and a sample from the day before the purchase:
#    neither is costed.
def hour_row(
    when: datetime, gpu: str, energy_wh: float, state: str, pool: str | None = "h100"
) -> tuple[Any, ...]:
    """One rollup_gpu_hours row of one whole GPU-hour on the example's host."""
    workload = "m1" if state != "idle-free" else None
    host = "fra-gpu-1" if pool else "lab-box"
    util = {"busy": 80.0, "idle-held": 1.0, "idle-free": 0.0}[state]
    return (when, "dc-fra", pool, host, gpu, "", 1.0, workload, 60, 1.0, util, energy_wh, state)


ROLLUP = [
    hour_row(at(14, 10), "GPU-A", 1000.0, "busy"),
    hour_row(at(14, 11), "GPU-A", 500.0, "busy"),
    hour_row(at(14, 12), "GPU-A", 1000.0, "busy"),
    hour_row(at(14, 10), "GPU-B", 100.0, "idle-held"),
    hour_row(at(14, 11), "GPU-B", 100.0, "idle-held"),
    hour_row(at(14, 10), "GPU-C", 50.0, "idle-free"),
    hour_row(at(14, 10), "GPU-X", 999.0, "busy", pool=None),
    hour_row(at(13, 10), "GPU-A", 400.0, "busy"),
]


def worked_config(tmp_path: Path, text: str = WORKED) -> Config:
    path = tmp_path / "hybridlens.toml"
    path.write_text(text, encoding="utf-8")
    return load_file(path)


def insert_rollup(wh: Warehouse, rows: list[tuple[Any, ...]]) -> None:
    with wh.write() as con:
        con.executemany(
            f"INSERT INTO rollup_gpu_hours ({', '.join(COLUMNS)}) VALUES "
            f"({', '.join('?' * len(COLUMNS))})",
            rows,
        )


def ledger(wh: Warehouse, day: date) -> dict[str, Any]:
    with wh.read() as con:
        frame = con.sql(
            "SELECT * FROM billing WHERE ChargePeriodStart = $day",
            params={"day": datetime(day.year, day.month, day.day, tzinfo=UTC)},
        ).pl()
    assert len(frame) <= 1, frame
    return frame.to_dicts()[0] if len(frame) else {}


@pytest.fixture
def worked(tmp_path: Path) -> Warehouse:
    wh = Warehouse(tmp_path / "w.duckdb")
    insert_rollup(wh, ROLLUP)
    config = worked_config(tmp_path)
    days = {date(2026, 3, d) for d in (13, 14, 15)} | {date(2026, 4, 1)}
    days |= {date(2029, 3, 13), date(2029, 3, 14)}
    with wh.write() as con:
        cost_ledger.replace_days(con, config, {"dc-fra": days}, load_id=None)
    return wh


def test_the_worked_example_matches_the_hand_computation_to_the_cent(worked: Warehouse) -> None:
    # Amortization: (200,000 - 20,000) x 1 server over 2026-03-14 .. 2029-03-14, which is
    # 365 + 365 + 366 (2028 is a leap year) = 1096 days: 180,000 / 1096 a day.
    amortization = Decimal("164.233576642336")
    assert amortization == (Decimal(180_000) / 1096).quantize(Decimal("1e-12"))
    fixed_march = Decimal(3100) / 31  # 100.00 a day
    assert ledger(worked, date(2026, 3, 13)) == {}, "no cost before the purchase date"

    # The purchase day, with samples. Energy: GPUs 2.75 kWh (the counter reset counted as
    # increase() does) + server 1000 W x 24 h = 24 kWh; x PUE 1.5 = 40.125 kWh; x March's
    # price 0.30 = 12.0375. Full cost = 164.233576642336 + 100 + 12.0375 = 276.271076642336.
    day = ledger(worked, date(2026, 3, 14))
    assert day["x_AmortizationCost"] == amortization
    assert day["x_FixedCost"] == fixed_march
    assert day["x_EnergyCost"] == Decimal("12.0375")
    assert day["EffectiveCost"] == Decimal("276.271076642336")
    assert day["EffectiveCost"].quantize(CENT) == Decimal("276.27")
    assert (day["x_EnergyKwh"], day["x_ServerEnergyKwh"]) == (2.75, 24.0)
    assert day["x_FacilityEnergyKwh"] == 40.125
    assert day["x_Co2eKg"] == pytest.approx(16.05)  # 40.125 kWh x 400 g / 1000
    # Capacity 8 GPUs x 24 h = 192 GPU-hours: 3 busy, 2 idle-held, 1 idle-free, 186 unmonitored.
    assert day["x_CapacityGpuHours"] == 192
    hours = [day[f"x_{k}GpuHours"] for k in ("Busy", "IdleHeld", "IdleFree", "Unmonitored")]
    assert hours == [3, 2, 1, 186]
    # The cost split by those hours: 276.271076642336 x 3/192, x 2/192, x 1/192, the rest.
    split = [day[f"x_{k}Cost"] for k in ("Busy", "IdleHeld", "IdleFree", "Unmonitored")]
    assert [s.quantize(CENT) for s in split] == [
        Decimal("4.32"),
        Decimal("2.88"),
        Decimal("1.44"),
        Decimal("267.64"),
    ]
    assert sum(split) == day["EffectiveCost"], "the parts add up exactly"
    assert day["x_CostPerGpuHour"].quantize(CENT) == Decimal("1.44")  # 276.27 / 192
    assert day["BilledCost"] == 0 and day["x_Modelled"] is True

    # The day after, no samples: amortization, fixed and server energy (24 x 1.5 x 0.30 =
    # 10.80) still count, every GPU-hour unmonitored.
    quiet = ledger(worked, date(2026, 3, 15))
    assert quiet["EffectiveCost"] == Decimal("275.033576642336")
    assert quiet["x_EnergyCost"] == Decimal("10.8") and quiet["x_EnergyKwh"] == 0
    assert quiet["x_UnmonitoredCost"] == quiet["EffectiveCost"]
    assert quiet["x_UnmonitoredGpuHours"] == 192

    # April: the default power price (36 kWh x 0.20 = 7.20) and 3100 / 30 days.
    april = ledger(worked, date(2026, 4, 1))
    assert april["x_FixedCost"] == Decimal("103.333333333333")
    assert april["EffectiveCost"] == Decimal("274.766909975669")
    assert april["EffectiveCost"].quantize(CENT) == Decimal("274.77")

    # The last amortized day, then fully depreciated: only its running cost (March 2029 has
    # no listed price: 7.20 of energy, 100 fixed).
    assert ledger(worked, date(2029, 3, 13))["x_AmortizationCost"] == amortization
    done = ledger(worked, date(2029, 3, 14))
    assert done["x_AmortizationCost"] == 0
    assert done["EffectiveCost"] == Decimal("107.2")


def test_a_modelled_row_is_a_focus_usage_row(worked: Warehouse) -> None:
    day = ledger(worked, date(2026, 3, 14))
    assert day["ProviderName"] == day["PublisherName"] == day["ServiceProviderName"]
    assert day["ProviderName"] == "on-prem:dc-fra" == day["InvoiceIssuerName"]
    assert (day["ChargeCategory"], day["ChargeFrequency"]) == ("Usage", "Usage-Based")
    assert (day["ServiceCategory"], day["ServiceSubcategory"]) == ("Compute", "Other (Compute)")
    assert (day["BillingAccountId"], day["BillingCurrency"]) == ("dc-fra", "EUR")
    assert day["ChargePeriodStart"] == at(14, 0) and day["ChargePeriodEnd"] == at(15, 0)
    assert day["BillingPeriodStart"] == at(1, 0) and day["BillingPeriodEnd"] == at(1, 0, 4)
    assert day["ListCost"] == day["ContractedCost"] == day["EffectiveCost"]
    assert day["PricingQuantity"] == 192 and day["ConsumedQuantity"] == 6
    assert day["x_ReplaceUnit"] == "modelled/dc-fra/2026-03-14"
    assert (day["x_PurchaseDate"], day["x_Gpus"], day["x_Servers"]) == (date(2026, 3, 14), 8, 1)
    assert day["x_PowerPricePerKwh"] == Decimal("0.3") and day["x_Pue"] == 1.5


def test_the_amortization_adds_up_to_price_less_residual() -> None:
    config = parse(tomllib.loads(WORKED), "t.toml")
    h100 = config.environments[0].gpu_pools[0]
    first, end = date(2026, 3, 14), amortization_end(date(2026, 3, 14), 3)
    total = Decimal(0)
    for ordinal in range(first.toordinal(), end.toordinal()):
        figures = price_pool_day(h100, date.fromordinal(ordinal), Measured())
        assert figures is not None
        total += figures.amortization
    assert (end - first).days == 1096
    assert abs(total - 180_000) < CENT  # rounded to 12 places per day, 1096 days


def test_a_leap_day_purchase_ends_on_the_28th() -> None:
    assert amortization_end(date(2024, 2, 29), 1) == date(2025, 2, 28)
    assert amortization_end(date(2024, 2, 29), 4) == date(2028, 2, 29)
    assert amortization_end(date(2026, 3, 14), 3) == date(2029, 3, 14)


def test_more_gpu_hours_than_capacity_split_by_what_was_measured() -> None:
    config = parse(tomllib.loads(WORKED), "t.toml")
    h100 = config.environments[0].gpu_pools[0]
    figures = price_pool_day(h100, date(2026, 3, 15), Measured(200.0, 100.0, 0.0, 0.0))
    assert figures is not None and figures.unmonitored_gpu_hours == 0
    assert figures.busy_cost + figures.idle_held_cost == figures.cost
    assert figures.busy_cost == (figures.cost * 2 / 3).quantize(Decimal("1e-12"))


def test_power_price_by_month() -> None:
    cost = parse(tomllib.loads(WORKED), "t").environments[0].gpu_pools[0].cost
    assert isinstance(cost, CostModel)
    assert power_price(cost, date(2026, 3, 31)) == Decimal("0.3")
    assert power_price(cost, date(2026, 4, 1)) == Decimal("0.2")
    assert power_price(cost, date(2027, 3, 1)) == Decimal("0.2")


def test_the_cost_config_round_trips_through_the_stored_copy() -> None:
    config = parse(tomllib.loads(WORKED), "t.toml")
    again = Config.from_json(config.to_json(), "stored")
    assert again.environments == config.environments
    assert again.environments[0].gpu_pools[0].cost == config.environments[0].gpu_pools[0].cost


def test_count_left_out_is_taken_from_the_servers() -> None:
    config = parse(tomllib.loads(WORKED.replace("count = 8\n", "")), "t.toml")
    pool = config.environments[0].gpu_pools[0]
    figures = price_pool_day(pool, date(2026, 3, 15), Measured())
    assert pool.count == 0 and figures is not None and figures.capacity_gpu_hours == 192


# -- mistakes ---------------------------------------------------------------------------------
POOL = "environments[0].gpu_pools[0]"
MISTAKES = {
    # name: (replace this, with this, text the message must contain besides the file)
    "count is not servers x GPUs": (
        "count = 8",
        "count = 16",
        f"{POOL}: count (16) must equal cost.servers × cost.gpus_per_server (1 × 8 = 8)",
    ),
    "a cloud environment": (
        'kind = "onprem"',
        'kind = "cloud"',
        "environments[0]: gpu_pools[0].cost: a cost model is for kind onprem or edge",
    ),
    "residual above price": (
        "residual_value = 20000",
        "residual_value = 250000",
        f"{POOL}.cost: residual_value (250000) must not exceed price_per_server (200000)",
    ),
    "an impossible date": (
        "purchase_date = 2026-03-14",
        'purchase_date = "2026-02-30"',
        f"{POOL}.cost.purchase_date: must be a date (YYYY-MM-DD), got '2026-02-30'",
    ),
    "a date and time": (
        "purchase_date = 2026-03-14",
        "purchase_date = 2026-03-14T10:00:00Z",
        f"{POOL}.cost.purchase_date: must be a date (YYYY-MM-DD) without a time",
    ),
    "a date in words": (
        "purchase_date = 2026-03-14",
        'purchase_date = "last spring"',
        f"{POOL}.cost.purchase_date: must be a date (YYYY-MM-DD), got 'last spring'",
    ),
    "a date from the stone age": (
        "purchase_date = 2026-03-14",
        "purchase_date = 1066-10-14",
        f"{POOL}.cost.purchase_date: must be between 1990-01-01 and 2100-12-31",
    ),
    "a lowercase currency": (
        'currency = "EUR"',
        'currency = "eur"',
        f"{POOL}.cost.currency: must be a 3-letter ISO 4217 currency code",
    ),
    "an injected currency": (
        'currency = "EUR"',
        'currency = "EUR\'; DROP TABLE billing; --"',
        f"{POOL}.cost.currency: must be a 3-letter ISO 4217 currency code",
    ),
    "a month listed twice": (
        'power_prices = [{ month = "2026-03", price_per_kwh = 0.30 }]',
        'power_prices = [{ month = "2026-03", price_per_kwh = 0.3 }, '
        '{ month = "2026-03", price_per_kwh = 0.4 }]',
        f"{POOL}.cost.power_prices: '2026-03' is defined twice",
    ),
    "month 13": (
        'month = "2026-03"',
        'month = "2026-13"',
        f"{POOL}.cost.power_prices[0].month: must be a month as YYYY-MM",
    ),
    "a month without a price": (
        ", price_per_kwh = 0.30 }]",
        " }]",
        f"{POOL}.cost.power_prices[0]: price_per_kwh is required",
    ),
    "a PUE below 1": ("pue = 1.5", "pue = 0.9", f"{POOL}.cost.pue: must be at least 1"),
    "a NaN price": (
        "price_per_server = 200000",
        "price_per_server = nan",
        f"{POOL}.cost.price_per_server: must be a finite number",
    ),
    "a huge price": (
        "price_per_server = 200000",
        "price_per_server = 1e300",
        f"{POOL}.cost.price_per_server: must be at most 100000000",
    ),
    "a negative power price": (
        "power_price_per_kwh = 0.20",
        "power_price_per_kwh = -0.2",
        f"{POOL}.cost.power_price_per_kwh: must be 0 or more",
    ),
    "no purchase date": (
        "purchase_date = 2026-03-14\n",
        "",
        f"{POOL}.cost.purchase_date is required",
    ),
    "an unknown key": (
        "pue = 1.5",
        "pue = 1.5\ndepreciation = 'fast'",
        f"{POOL}.cost.depreciation: unknown key",
    ),
    "zero GPUs per server": (
        "gpus_per_server = 8",
        "gpus_per_server = 0",
        f"{POOL}.cost.gpus_per_server: must be positive",
    ),
}


@pytest.mark.parametrize("name", MISTAKES)
def test_a_mistake_in_a_cost_table_names_the_key_and_the_file(tmp_path: Path, name: str) -> None:
    old, new, wanted = MISTAKES[name]
    assert old in WORKED, name
    path = tmp_path / "fleet.toml"
    path.write_text(WORKED.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_file(path)
    assert str(info.value).startswith(f"{path}: "), str(info.value)
    assert wanted in str(info.value)


def test_an_edge_environment_is_modelled_as_edge(tmp_path: Path) -> None:
    config = worked_config(tmp_path, WORKED.replace('kind = "onprem"', 'kind = "edge"'))
    env = config.environments[0]
    assert dataclasses.replace(env, kind="edge") == env
    wh = Warehouse(tmp_path / "w.duckdb")
    with wh.write() as con:
        cost_ledger.replace_days(con, config, {"dc-fra": {date(2026, 3, 20)}}, load_id=None)
    assert ledger(wh, date(2026, 3, 20))["ProviderName"] == "edge:dc-fra"
