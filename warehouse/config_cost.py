"""The config's on-prem and edge cost model: what a GPU pool's hardware, power and upkeep cost.

Declared apart from `config_schema`, which hooks it onto `GpuPool` as `cost`, so a pool
that says nothing about money stays as it was and the cost model is one section here.
Every number is bounded: the model multiplies them, and a price of 1e300 or a PUE of 0
would write nonsense into the ledger that finance then sums. Money keys are in the pool's
`currency`; `warehouse/cost_model.py` turns them into exact decimals, never floats.

Dates are kept as ISO text (`2026-03-14`), not `datetime.date`, so the stored JSON copy of
the config round-trips through `Config.to_json` unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar, Protocol

from warehouse.config_fields import (
    Integer,
    Kind,
    Number,
    Place,
    Sections,
    Text,
    setting,
    show,
)

MAX_MONEY = 1e8  # per server or per month: far above any real server, site or bill
MAX_POWER_PRICE = 100.0  # per kWh, in any currency in use: retail power costs well under 1
MAX_SERVER_W = 100_000.0  # a rack of servers draws less; one server a few kW
MAX_INTENSITY = 3_000.0  # gCO2e/kWh: lignite, the dirtiest grid source, is about 1,100
FIRST_DAY, LAST_DAY = date(1990, 1, 1), date(2100, 12, 31)
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
MONTH = r"\d{4}-(0[1-9]|1[0-2])"  # YYYY-MM


@dataclass(frozen=True)
class Day(Kind):
    """A calendar date: a TOML date (`2026-03-14`, unquoted) or, in the stored copy, its ISO
    text. A date and time is refused: a purchase is dated by the day, and a time would say
    more than the model uses."""

    low: date = FIRST_DAY
    high: date = LAST_DAY

    def read(self, value: Any, at: Place, key: str) -> str:
        if isinstance(value, datetime):
            raise at.bad(key, f"must be a date (YYYY-MM-DD) without a time, got {show(value)}")
        day: date | None = value if isinstance(value, date) else None
        if isinstance(value, str) and _ISO_DAY.fullmatch(value):
            try:
                day = date.fromisoformat(value)
            except ValueError:
                day = None
        if day is None:
            raise at.bad(key, f"must be a date (YYYY-MM-DD), got {show(value)}")
        if not self.low <= day <= self.high:
            raise at.bad(key, f"must be between {self.low} and {self.high}, got {day}")
        return day.isoformat()

    def describe(self) -> str:
        return f"date, {self.low} to {self.high}"


def _price_given(price: PowerPrice) -> str | None:
    return None if price.price_per_kwh is not None else "price_per_kwh is required"


@dataclass(frozen=True)
class PowerPrice:
    CHECKS: ClassVar[tuple[Callable[[PowerPrice], str | None], ...]] = (_price_given,)

    month: str = setting(
        Text(MONTH, "a month as YYYY-MM"),
        "the calendar month (UTC) this price holds for",
        required=True,
    )
    price_per_kwh: float | None = setting(
        Number(0, MAX_POWER_PRICE, low_open=False),
        "the power price that month, per kWh, in the pool's currency",
        None,
        default_doc="required",
    )


def _residual_below_price(cost: CostModel) -> str | None:
    if cost.residual_value > cost.price_per_server:
        return (
            f"residual_value ({cost.residual_value:g}) must not exceed price_per_server "
            f"({cost.price_per_server:g}): it is what one server is still worth at the end"
        )
    return None


@dataclass(frozen=True)
class CostModel:
    """What one pool's servers cost: bought on one day, amortized straight-line per calendar
    day, plus their energy and a fixed monthly upkeep. A pool of servers bought on different
    days is one pool per purchase."""

    CHECKS: ClassVar[tuple[Callable[[CostModel], str | None], ...]] = (_residual_below_price,)

    servers: int = setting(
        Integer(1, 1_000_000),
        "how many servers the pool has; the pool's `count`, when stated, must equal "
        "servers × gpus_per_server (left out, it is that)",
        required=True,
    )
    gpus_per_server: int = setting(Integer(1, 64), "GPUs in each server", required=True)
    purchase_date: str = setting(
        Day(),
        "the day the servers were bought (a TOML date, unquoted); amortization starts that day "
        "and the pool has no cost before it",
        required=True,
    )
    price_per_server: float = setting(
        Number(0, MAX_MONEY), "what one server cost, GPUs included", required=True
    )
    amortization_years: int = setting(
        Integer(1, 30),
        "years over which price − residual is spread evenly over the calendar days from the "
        "purchase date; afterwards the servers cost only their energy and fixed cost",
        required=True,
    )
    residual_value: float = setting(
        Number(0, MAX_MONEY, low_open=False),
        "what one server is still worth when amortization ends (at most its price)",
        0.0,
    )
    server_power_w: float = setting(
        Number(0, MAX_SERVER_W, low_open=False),
        "the non-GPU power of one server (CPUs, memory, fans, disks), in W, drawn all day",
        0.0,
    )
    power_price_per_kwh: float = setting(
        Number(0, MAX_POWER_PRICE, low_open=False),
        "the power price per kWh in months `power_prices` does not list (0: power is paid "
        "inside `fixed_monthly_cost`)",
        0.0,
    )
    power_prices: tuple[PowerPrice, ...] = setting(
        Sections(PowerPrice, unique="month"),
        "the power price of given months, one table each (see below)",
        (),
    )
    pue: float = setting(
        Number(1, 5, low_open=False),
        "power usage effectiveness: the site's power per watt that reaches the servers "
        "(cooling, losses); multiplies GPU and server energy",
        1.0,
    )
    fixed_monthly_cost: float = setting(
        Number(0, MAX_MONEY, low_open=False),
        "space, staff, network and support per month, spread evenly over that month's days",
        0.0,
    )
    carbon_intensity_g_per_kwh: float | None = setting(
        Number(0, MAX_INTENSITY, low_open=False),
        "the grid's carbon intensity in gCO₂e per kWh; none: emissions are not estimated",
        None,
    )
    currency: str = setting(
        Text(r"[A-Z]{3}", "a 3-letter ISO 4217 currency code (`EUR`)"),
        "the currency of every amount above, and of the ledger rows",
        "USD",
    )


class _PoolWithCost(Protocol):
    @property
    def count(self) -> int: ...

    @property
    def cost(self) -> CostModel | None: ...


def cost_fits_count(pool: _PoolWithCost) -> str | None:
    """A `GpuPool` check: where both `count` and `cost` say how many GPUs there are, they
    must describe the same hardware."""
    cost = pool.cost
    if cost is None or pool.count in (0, cost.servers * cost.gpus_per_server):
        return None  # 0: not stated, so the servers say how many GPUs there are
    return (
        f"count ({pool.count}) must equal cost.servers × cost.gpus_per_server "
        f"({cost.servers} × {cost.gpus_per_server} = {cost.servers * cost.gpus_per_server})"
    )


class _EnvironmentWithPools(Protocol):
    @property
    def kind(self) -> str: ...

    @property
    def gpu_pools(self) -> tuple[_PoolWithCost, ...]: ...


def cost_only_where_owned(environment: _EnvironmentWithPools) -> str | None:
    """An `Environment` check: a cloud's cost comes from its bill, so modelling it as well
    would count it twice."""
    if environment.kind in ("onprem", "edge"):
        return None
    owned = [i for i, pool in enumerate(environment.gpu_pools) if pool.cost is not None]
    if not owned:
        return None
    return (
        f"gpu_pools[{owned[0]}].cost: a cost model is for kind onprem or edge; a "
        f"{environment.kind} environment's cost comes from its bill (drop the cost table "
        "or fix the kind)"
    )
