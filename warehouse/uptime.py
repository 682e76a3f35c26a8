"""Uptime per environment minute, kept current at publish time instead of rebuilt per read.

A minute's verdict needs the same minute of the week over the four weeks before it, so
rebuilding every environment-minute at read time was most of a page's SQL. Migration 004
keeps each judgeable minute's requests, errors and usual traffic in
`rollup_uptime_minutes`; `refresh_minute_verdicts` runs after each publish (the `spans`
table's after-publish hook, `warehouse.rollups.refresh_uptime_hours`) and
`queries/uptime_minutes.sql` applies the config's thresholds on read, so a new
threshold needs no rebuild. Each environment is judged over its own first to last minute:
a span from the future in one environment moves no other environment's figures.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from warehouse.config import Config
from warehouse.db import read_sql, run

if TYPE_CHECKING:  # `metrics` imports this module's SQL helpers without importing Polars
    import polars as pl


def _statements(name: str) -> list[str]:
    text = "\n".join(
        line for line in read_sql(name).splitlines() if not line.lstrip().startswith("--")
    )
    return [s.strip() for s in text.split(";") if s.strip()]


def refresh_minute_verdicts(con: Any, lo: datetime, hi: datetime) -> None:
    """Recompute the uptime rows a publish of request spans in [lo, hi) can change: up to
    four weeks after `hi`, since those minutes read their usual traffic from it."""
    params = {"lo": lo, "hi": hi}
    for statement in _statements("refresh_uptime_minutes"):
        con.execute(statement, {k: v for k, v in params.items() if f"${k}" in statement})


def slo_params(config: Config) -> dict[str, Any]:
    """The per-environment thresholds uptime_minutes.sql judges a minute by."""
    return {
        "slo_environments": [e.name for e in config.environments] or [""],
        "slo_thresholds": [e.slo.down_error_ratio for e in config.environments] or [0.05],
        "slo_min_requests": [e.slo.uptime_min_requests for e in config.environments] or [5],
        "slo_min_expected": [e.slo.uptime_min_expected for e in config.environments] or [1.0],
    }


def with_uptime_minutes(name: str) -> str:
    """A query that wraps uptime_minutes.sql, so a minute is judged in one place only."""
    return read_sql(name).replace("{uptime_minutes}", read_sql("uptime_minutes"))


def uptime_by_environment(con: Any, config: Config, params: dict[str, Any]) -> pl.DataFrame:
    """Up and down minutes and uptime per environment over the filtered range.

    With a model filter only the environments that served a selected model in the range are
    judged: the filter narrows uptime to where those models run (uptime itself counts all
    models). Without one, an environment silent all range long is judged too: its usual
    traffic makes its minutes down.
    """
    sql = with_uptime_minutes("metrics_uptime")
    return run(con, "metrics_uptime", sql, {**params, **slo_params(config)})
