"""SLO and accuracy-floor verdicts for rows of `metrics`: one rule set for the overview,
the environment page, the weekly report and the optimizer, so a row is never green on one
and red on another.

Pure Polars in and out, with the targets given as frames (`targets` builds them from a
config), so the report can call it without a running app.

Rules (DESIGN.md's definitions):
- p95 latency meets its SLO when p95 <= the environment's `latency_p95_ms`;
- availability meets it when it is >= the environment's `availability`;
- uptime is not a verdict: the config sets no uptime SLO, so pages draw it against the
  availability target for reference only (with light traffic a handful of judged minutes
  would otherwise turn every row red);
- accuracy breaches its floor only when the whole 95% interval lies below the model's
  `accuracy_floor`; a mean below the floor whose interval still reaches it is "at risk",
  because the evaluations cannot yet tell it apart from the floor.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from warehouse.config import Config

BREACH = "breach"
AT_RISK = "at risk"
MET = "met"
NO_SLO = "no SLO set"

STATUS_LABELS = {BREACH: "breach", AT_RISK: "at risk", MET: "met", NO_SLO: NO_SLO}

TARGET_SCHEMA = {
    "environment": pl.String,
    "configured": pl.Boolean,
    "kind": pl.String,
    "provider": pl.String,
    "region": pl.String,
    "residency": pl.String,
    "latency_p95_slo_ms": pl.Float64,
    "availability_slo": pl.Float64,
}
FLOOR_SCHEMA = {"model": pl.String, "accuracy_floor": pl.Float64}

# What a row's accuracy says against its model's floor (the accuracy tables show these).
BELOW_FLOOR = "below floor"
BELOW_WITHIN = "below floor, within the interval"
MEETS_FLOOR = "meets floor"
NO_FLOOR = "no floor set"


def targets(config: Config, seen: Iterable[str] = ()) -> pl.DataFrame:
    """Per environment, configured (in config order) or only `seen` in the data: kind,
    place and SLO targets; an unconfigured one has no targets, so it is "no SLO set"."""
    rows = [
        {
            "environment": e.name,
            "configured": True,
            "kind": e.kind,
            "provider": e.provider,
            "region": e.region,
            "residency": e.residency,
            "latency_p95_slo_ms": e.slo.latency_p95_ms,
            "availability_slo": e.slo.availability,
        }
        for e in config.environments
    ]
    known = {e.name for e in config.environments}
    rows += [
        dict.fromkeys(TARGET_SCHEMA) | {"environment": name, "configured": False}
        for name in dict.fromkeys(seen)
        if name not in known
    ]
    return pl.DataFrame(rows, schema=TARGET_SCHEMA, orient="row")


def floors(config: Config) -> pl.DataFrame:
    """Each configured model's accuracy floor (null when it sets none)."""
    rows = [(m.name, m.accuracy_floor) for m in config.models]
    return pl.DataFrame(rows, schema=FLOOR_SCHEMA, orient="row")


def floor_verdict(
    n: int, accuracy: float | None, high: float | None, floor: float | None
) -> str | None:
    """One accuracy against its floor, on the rule `evaluate` applies: below only when the
    whole interval is; None when there are no evaluations."""
    if not n or accuracy is None:
        return None
    if floor is None:
        return NO_FLOOR
    if high is not None and high < floor:
        return BELOW_FLOOR
    if accuracy < floor:
        return BELOW_WITHIN
    return MEETS_FLOOR


def below_target(value: float | None, target: float | None) -> bool:
    """A ratio under its target (a day's uptime under the availability SLO, drawn red)."""
    return value is not None and target is not None and value < target


def summary(report: pl.DataFrame) -> tuple[int, int, int]:
    """(met, judged, breached) rows of an `evaluate` result: "at risk" still meets its SLOs."""
    status = report["status"]
    met = int(status.is_in([MET, AT_RISK]).sum())
    judged = int((status != NO_SLO).sum())
    return met, judged, int((status == BREACH).sum())


@dataclass(frozen=True)
class Check:
    """One SLO check: which metric, compared how, against which target column."""

    key: str
    label: str
    value: str
    target: str


CHECKS = (
    Check("latency", "p95 latency", "latency_p95_ms", "latency_p95_slo_ms"),
    Check("availability", "availability", "availability", "availability_slo"),
    Check("accuracy", "accuracy", "accuracy", "accuracy_floor"),
)


def evaluate(frame: pl.DataFrame, targets: pl.DataFrame, floors: pl.DataFrame) -> pl.DataFrame:
    """Add targets, per-check verdicts, a status, the breached checks and a sort margin.

    `frame` has `metrics` columns and an `environment` column (and `model` for accuracy).
    Adds: latency_p95_slo_ms, availability_slo, accuracy_floor, configured, <check>_ok for
    each check (null when there is no target or no value), status (breach / at risk / met /
    no SLO set), breaches (the names of failed checks, comma separated) and margin (the
    smallest headroom over all checks as a fraction of what is allowed; negative = missed).
    """
    out = frame.join(
        targets.select("environment", "configured", "latency_p95_slo_ms", "availability_slo"),
        on="environment",
        how="left",
    ).with_columns(pl.col("configured").fill_null(False))
    if "model" in out.columns:
        out = out.join(floors, on="model", how="left")
    else:
        out = out.with_columns(accuracy_floor=pl.lit(None, dtype=pl.Float64))

    p95, p95_slo = pl.col("latency_p95_ms"), pl.col("latency_p95_slo_ms")
    avail_slo = pl.col("availability_slo")
    floor = pl.col("accuracy_floor")
    out = out.with_columns(
        **{
            "latency_ok": pl.when(p95.is_not_null() & p95_slo.is_not_null()).then(p95 <= p95_slo),
            "availability_ok": pl.when(
                pl.col("availability").is_not_null() & avail_slo.is_not_null()
            ).then(pl.col("availability") >= avail_slo),
            # Breach only when the interval is wholly below the floor (see module docstring).
            "accuracy_ok": pl.when(pl.col("accuracy").is_not_null() & floor.is_not_null()).then(
                pl.col("accuracy_hi").fill_null(pl.col("accuracy")) >= floor
            ),
            "accuracy_at_risk": pl.when(
                pl.col("accuracy").is_not_null() & floor.is_not_null()
            ).then(pl.col("accuracy") < floor),
        }
    )
    margins = [
        pl.when(p95_slo > 0).then((p95_slo - p95) / p95_slo),
        pl.when(avail_slo < 1).then((pl.col("availability") - avail_slo) / (1 - avail_slo)),
        pl.when(floor > 0).then((pl.col("accuracy") - floor) / floor),
    ]
    failed = [
        pl.when(pl.col(f"{c.key}_ok") == False).then(pl.lit(c.label))  # noqa: E712
        for c in CHECKS
    ]
    any_target = pl.any_horizontal(pl.col(f"{c.key}_ok").is_not_null() for c in CHECKS)
    out = out.with_columns(
        breaches=pl.concat_str(failed, separator=", ", ignore_nulls=True).fill_null(""),
        margin=pl.min_horizontal(margins),
    ).with_columns(
        status=pl.when(pl.col("breaches") != "")
        .then(pl.lit(BREACH))
        .when(pl.col("accuracy_at_risk").fill_null(False))
        .then(pl.lit(AT_RISK))
        .when(any_target)
        .then(pl.lit(MET))
        .otherwise(pl.lit(NO_SLO))
    )
    return out.drop("accuracy_at_risk")


def worst_first(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Breaches first (most failed checks, then least headroom), then at risk, met, no SLO."""
    rank = {BREACH: 0, AT_RISK: 1, MET: 2, NO_SLO: 3}
    return (
        frame.with_columns(
            _rank=pl.col("status").replace_strict(rank, default=4, return_dtype=pl.Int32),
            _failed=pl.col("breaches").str.count_matches(",") + (pl.col("breaches") != ""),
        )
        .sort(
            ["_rank", "_failed", "margin", *keys],
            descending=[False, True, False] + [False] * len(keys),
            nulls_last=True,
        )
        .drop("_rank", "_failed")
    )
