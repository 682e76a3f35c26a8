"""The on-prem and edge cost model: what a day of owned GPU hardware costs, and who idled it.

Per environment, pool and UTC day: full cost = amortization + fixed + (GPU energy + server
energy) × PUE × power price. Amortization is straight-line per calendar day from the
purchase date until `amortization_years` later; fixed cost is the month's upkeep ÷ that
month's days; GPU energy is measured (`rollup_gpu_hours.energy_wh`), server energy is the
configured non-GPU power drawn all day. A day with no samples still carries amortization,
fixed cost and server energy: idle or unwatched hardware costs money, and that is the
point of showing it. The day's cost is split by GPU-hours into busy, idle-held, idle-free
and unmonitored (capacity minus what the samples cover). All money is `Decimal` rounded
to 12 places, once per part, so the parts add up to the cost exactly.

The rows are written, and kept current, by `warehouse/cost_ledger.py`.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from functools import lru_cache
from typing import Any

import pyarrow as pa

from warehouse.config_cost import CostModel
from warehouse.config_schema import Environment, GpuPool
from warehouse.tables import replace_unit

PLACES = Decimal("1e-12")  # DECIMAL(38, 12): the ledger's scale
HOURS_PER_DAY = 24
PROVIDER_PREFIX = {"onprem": "on-prem", "edge": "edge"}
MODELLED = "modelled"  # the first part of a modelled row's replace unit
# What a modelled day's cost is made of, and its split by GPU state, in money and in hours
COST_PARTS = ("x_AmortizationCost", "x_EnergyCost", "x_FixedCost", "x_BusyCost",
              "x_IdleHeldCost", "x_IdleFreeCost", "x_UnmonitoredCost")  # fmt: skip
HOUR_PARTS = ("x_CapacityGpuHours", "x_BusyGpuHours", "x_IdleHeldGpuHours",
              "x_IdleFreeGpuHours", "x_UnmonitoredGpuHours")  # fmt: skip


@dataclass(frozen=True)
class Measured:
    """What the samples say of one pool on one day (zeros where there were none)."""

    busy_gpu_hours: float = 0.0
    idle_held_gpu_hours: float = 0.0
    idle_free_gpu_hours: float = 0.0
    energy_wh: float = 0.0


@dataclass(frozen=True)
class PoolDay:
    """The model's figures for one pool on one day; `cost` = the three parts, exactly."""

    day: date
    amortization: Decimal
    fixed: Decimal
    energy: Decimal
    cost: Decimal
    capacity_gpu_hours: float
    busy_gpu_hours: float
    idle_held_gpu_hours: float
    idle_free_gpu_hours: float
    unmonitored_gpu_hours: float
    busy_cost: Decimal
    idle_held_cost: Decimal
    idle_free_cost: Decimal
    unmonitored_cost: Decimal
    cost_per_gpu_hour: Decimal
    power_price: Decimal
    gpu_kwh: Decimal
    server_kwh: Decimal
    facility_kwh: Decimal
    co2e_kg: Decimal | None


@lru_cache(maxsize=4096)  # the same config numbers, every pool-day of a backfill
def _dec(value: float | int) -> Decimal:
    """A config or measured number as the decimal it was written as (0.3, not 0.2999…)."""
    return Decimal(str(value))


def _round(value: Decimal) -> Decimal:
    return value.quantize(PLACES)


def amortization_end(purchase: date, years: int) -> date:
    """The first day past amortization: the purchase date `years` on (28 February for a
    server bought on 29 February, in a year that has none)."""
    try:
        return purchase.replace(year=purchase.year + years)
    except ValueError:
        return purchase.replace(year=purchase.year + years, day=28)


def power_price(cost: CostModel, day: date) -> Decimal:
    """The price per kWh on `day`: its month's in `power_prices`, else the pool's default."""
    month = day.strftime("%Y-%m")
    for price in cost.power_prices:
        if price.month == month and price.price_per_kwh is not None:
            return _dec(price.price_per_kwh)
    return _dec(cost.power_price_per_kwh)


def price_pool_day(pool: GpuPool, day: date, measured: Measured) -> PoolDay | None:
    """The model for one pool on one day; None before its purchase date or without a cost."""
    cost = pool.cost
    if cost is None:
        return None
    start = date.fromisoformat(cost.purchase_date)
    if day < start:
        return None
    with localcontext() as ctx:
        ctx.prec = 60  # far past 38 digits: nothing is rounded until `_round`
        end = amortization_end(start, cost.amortization_years)
        amortizable = (_dec(cost.price_per_server) - _dec(cost.residual_value)) * cost.servers
        amortization = (
            _round(amortizable / (end - start).days) if day < end else Decimal(0).quantize(PLACES)
        )
        fixed = _round(_dec(cost.fixed_monthly_cost) / calendar.monthrange(day.year, day.month)[1])
        price = power_price(cost, day)
        gpu_kwh = _dec(measured.energy_wh) / 1000
        server_kwh = _dec(cost.server_power_w) * cost.servers * HOURS_PER_DAY / 1000
        facility_kwh = (gpu_kwh + server_kwh) * _dec(cost.pue)
        energy = _round(facility_kwh * price)
        total = amortization + fixed + energy
        capacity = float(cost.servers * cost.gpus_per_server * HOURS_PER_DAY)
        monitored = (
            measured.busy_gpu_hours + measured.idle_held_gpu_hours + measured.idle_free_gpu_hours
        )
        # More GPU-hours than capacity (more GPUs report than `count` says): the split is
        # by what was measured, and nothing is unmonitored.
        unmonitored = max(capacity - monitored, 0.0)
        whole = _dec(max(capacity, monitored))

        def share(hours: float) -> Decimal:
            return _round(total * _dec(hours) / whole)

        busy, held, free = (
            share(measured.busy_gpu_hours),
            share(measured.idle_held_gpu_hours),
            share(measured.idle_free_gpu_hours),
        )
        intensity = cost.carbon_intensity_g_per_kwh
        return PoolDay(
            day=day,
            amortization=amortization,
            fixed=fixed,
            energy=energy,
            cost=total,
            capacity_gpu_hours=capacity,
            busy_gpu_hours=measured.busy_gpu_hours,
            idle_held_gpu_hours=measured.idle_held_gpu_hours,
            idle_free_gpu_hours=measured.idle_free_gpu_hours,
            unmonitored_gpu_hours=unmonitored,
            busy_cost=busy,
            idle_held_cost=held,
            idle_free_cost=free,
            unmonitored_cost=total - busy - held - free,
            cost_per_gpu_hour=_round(total / _dec(capacity)),
            power_price=price,
            gpu_kwh=gpu_kwh,
            server_kwh=server_kwh,
            facility_kwh=facility_kwh,
            co2e_kg=None if intensity is None else facility_kwh * _dec(intensity) / 1000,
        )


# -- the ledger rows ----------------------------------------------------------------------
MONEY = pa.decimal128(38, 12)
TIME = pa.timestamp("us", tz="UTC")
ROW_SCHEMA = pa.schema(
    [
        *((n, MONEY) for n in ("BilledCost", "ContractedCost", "EffectiveCost", "ListCost")),
        *((n, TIME) for n in ("BillingPeriodStart", "BillingPeriodEnd")),
        *((n, TIME) for n in ("ChargePeriodStart", "ChargePeriodEnd")),
        *(
            (n, pa.string())
            for n in (
                "BillingAccountId",
                "BillingAccountName",
                "BillingCurrency",
                "ChargeCategory",
                "ChargeDescription",
                "ChargeFrequency",
                "InvoiceIssuerName",
                "PricingUnit",
                "ProviderName",
                "PublisherName",
                "ServiceCategory",
                "ServiceName",
                "ServiceSubcategory",
                "ServiceProviderName",
                "HostProviderName",
                "ConsumedUnit",
                "RegionId",
                "RegionName",
                "ResourceId",
                "ResourceName",
                "ResourceType",
                "x_ReplaceUnit",
                "x_Environment",
                "x_Pool",
                "x_GpuModel",
            )
        ),
        ("PricingQuantity", MONEY),
        ("ConsumedQuantity", MONEY),
        ("x_Modelled", pa.bool_()),
        ("x_Gpus", pa.int32()),
        ("x_Servers", pa.int32()),
        ("x_PurchaseDate", pa.date32()),
        ("x_AmortizationYears", pa.int32()),
        *(
            (n, MONEY)
            for n in (
                "x_PricePerServer",
                "x_ResidualValue",
                "x_PowerPricePerKwh",
                "x_FixedMonthlyCost",
                *COST_PARTS,
                "x_CostPerGpuHour",
            )
        ),
        *(
            (n, pa.float64())
            for n in (
                "x_ServerPowerW",
                "x_Pue",
                "x_CarbonIntensityGPerKwh",
                *HOUR_PARTS,
                "x_EnergyKwh",
                "x_ServerEnergyKwh",
                "x_FacilityEnergyKwh",
                "x_Co2eKg",
            )
        ),
        ("load_id", pa.int64()),
    ]
)


def modelled_unit(environment: str, day: date) -> str:
    return replace_unit(MODELLED, environment, day.isoformat())


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def ledger_row(
    env: Environment, pool: GpuPool, figures: PoolDay, load_id: int | None
) -> dict[str, Any]:
    """One `billing` row: FOCUS's columns as FOCUS means them, the model in `x_` columns."""
    cost = pool.cost
    assert cost is not None  # priced pools only
    day = figures.day
    month = day.replace(day=1)
    next_month = (month + timedelta(days=32)).replace(day=1)
    provider = f"{PROVIDER_PREFIX[env.kind]}:{env.name}"
    zero = Decimal(0).quantize(PLACES)
    return {
        "BilledCost": zero,  # nothing is invoiced: the cost is the model's
        "ContractedCost": figures.cost,
        "EffectiveCost": figures.cost,
        "ListCost": figures.cost,
        "BillingPeriodStart": midnight(month),
        "BillingPeriodEnd": midnight(next_month),
        "ChargePeriodStart": midnight(day),
        "ChargePeriodEnd": midnight(day + timedelta(days=1)),
        "BillingAccountId": env.name,
        "BillingAccountName": env.name,
        "BillingCurrency": cost.currency,
        "ChargeCategory": "Usage",
        "ChargeDescription": (
            f"modelled cost of GPU pool {pool.name} ({cost.servers} x {cost.gpus_per_server} "
            f"{pool.gpu or 'GPU'}) on {day.isoformat()}: amortization, energy and fixed cost"
        ),
        "ChargeFrequency": "Usage-Based",
        "InvoiceIssuerName": provider,
        "PricingUnit": "GPU-Hours",
        "ProviderName": provider,
        "PublisherName": provider,
        "ServiceCategory": "Compute",
        "ServiceName": "GPU servers",
        "ServiceSubcategory": "Other (Compute)",
        "ServiceProviderName": provider,
        "HostProviderName": provider,
        "ConsumedUnit": "GPU-Hours",
        "RegionId": env.region or None,
        "RegionName": env.region or None,
        "ResourceId": replace_unit(provider, pool.name),
        "ResourceName": pool.name,
        "ResourceType": "GPU pool",
        "x_ReplaceUnit": modelled_unit(env.name, day),
        "x_Environment": env.name,
        "x_Pool": pool.name,
        "x_GpuModel": pool.gpu or None,
        "PricingQuantity": _round(_dec(figures.capacity_gpu_hours)),
        "ConsumedQuantity": _round(
            _dec(figures.busy_gpu_hours + figures.idle_held_gpu_hours + figures.idle_free_gpu_hours)
        ),
        "x_Modelled": True,
        "x_Gpus": cost.servers * cost.gpus_per_server,
        "x_Servers": cost.servers,
        "x_PurchaseDate": date.fromisoformat(cost.purchase_date),
        "x_AmortizationYears": cost.amortization_years,
        "x_PricePerServer": _round(_dec(cost.price_per_server)),
        "x_ResidualValue": _round(_dec(cost.residual_value)),
        "x_PowerPricePerKwh": _round(figures.power_price),
        "x_FixedMonthlyCost": _round(_dec(cost.fixed_monthly_cost)),
        "x_AmortizationCost": figures.amortization,
        "x_EnergyCost": figures.energy,
        "x_FixedCost": figures.fixed,
        "x_BusyCost": figures.busy_cost,
        "x_IdleHeldCost": figures.idle_held_cost,
        "x_IdleFreeCost": figures.idle_free_cost,
        "x_UnmonitoredCost": figures.unmonitored_cost,
        "x_CostPerGpuHour": figures.cost_per_gpu_hour,
        "x_ServerPowerW": cost.server_power_w,
        "x_Pue": cost.pue,
        "x_CarbonIntensityGPerKwh": cost.carbon_intensity_g_per_kwh,
        "x_CapacityGpuHours": figures.capacity_gpu_hours,
        "x_BusyGpuHours": figures.busy_gpu_hours,
        "x_IdleHeldGpuHours": figures.idle_held_gpu_hours,
        "x_IdleFreeGpuHours": figures.idle_free_gpu_hours,
        "x_UnmonitoredGpuHours": figures.unmonitored_gpu_hours,
        "x_EnergyKwh": float(figures.gpu_kwh),
        "x_ServerEnergyKwh": float(figures.server_kwh),
        "x_FacilityEnergyKwh": float(figures.facility_kwh),
        "x_Co2eKg": None if figures.co2e_kg is None else float(figures.co2e_kg),
        "load_id": load_id,
    }
