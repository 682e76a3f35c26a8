"""Display tables for the pages and the report: one row per thing, figures as labels.

Verdicts come from `warehouse.slo`, comparisons and down periods from
`warehouse.definitions`; a table only turns them into words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import quote

import polars as pl

from dashboard.formatting import DASH, fmt_count, fmt_interval, fmt_ms, fmt_pct, fmt_time
from warehouse import definitions, slo

COMPARED = {
    "lower": "lower than",
    "higher": "higher than",
    "same": "no clear difference from",
}


def _slo_cell(configured: bool | None, value: str) -> str:
    return value if configured else slo.NO_SLO


def slo_table(report: pl.DataFrame) -> pl.DataFrame:
    """environment x model rows (already worst first) as display strings, one per metric."""
    out = []
    for r in report.iter_rows(named=True):
        configured = bool(r.get("configured"))
        n = int(r.get("accuracy_n") or 0)
        out.append(
            {
                "Status": slo.STATUS_LABELS.get(r["status"], r["status"]),
                "Environment": r["environment"],
                "Model": r.get("model", DASH),
                "Missed": r["breaches"] or DASH,
                "Requests": int(r["requests"] or 0),
                "Errors": int(r["errors"] or 0),
                "Availability": fmt_pct(r["availability"]),
                "Availability SLO": _slo_cell(configured, fmt_pct(r["availability_slo"])),
                "Uptime": fmt_pct(r["uptime"]),
                "p50 (ms)": fmt_ms(r["latency_p50_ms"], unit=False),
                "p95 (ms)": fmt_ms(r["latency_p95_ms"], unit=False),
                "p95 SLO (ms)": _slo_cell(configured, fmt_ms(r["latency_p95_slo_ms"], unit=False)),
                "p99 (ms)": fmt_ms(r["latency_p99_ms"], unit=False),
                "Accuracy": fmt_pct(r["accuracy"], 1) if n else "no evaluations",
                "Accuracy 95% interval": fmt_interval(r["accuracy_lo"], r["accuracy_hi"]),
                "Evaluations": n,
                "Accuracy floor": fmt_pct(r.get("accuracy_floor"), 1),
                "Input tokens": fmt_count(r.get("input_tokens")),
                "Output tokens": fmt_count(r.get("output_tokens")),
            }
        )
    return pl.DataFrame(out, schema=_SLO_TABLE_SCHEMA, orient="row")


_SLO_TABLE_SCHEMA = {
    "Status": pl.String,
    "Environment": pl.String,
    "Model": pl.String,
    "Missed": pl.String,
    "Requests": pl.Int64,
    "Errors": pl.Int64,
    "Availability": pl.String,
    "Availability SLO": pl.String,
    "Uptime": pl.String,
    "p50 (ms)": pl.String,
    "p95 (ms)": pl.String,
    "p95 SLO (ms)": pl.String,
    "p99 (ms)": pl.String,
    "Accuracy": pl.String,
    "Accuracy 95% interval": pl.String,
    "Evaluations": pl.Int64,
    "Accuracy floor": pl.String,
    "Input tokens": pl.String,
    "Output tokens": pl.String,
}


def environment_table(
    report: pl.DataFrame,
    targets: pl.DataFrame,
    budget: pl.DataFrame,
    uptime: pl.DataFrame,
) -> pl.DataFrame:
    """One row per environment: where it is, its SLOs, how it did, and its error budget."""
    down = (
        uptime.group_by("environment").agg(pl.col("down_minutes").sum())
        if not uptime.is_empty()
        else pl.DataFrame(schema={"environment": pl.String, "down_minutes": pl.Int64})
    )
    frame = (
        report.join(
            targets.select("environment", "kind", "provider"),
            on="environment",
            how="left",
        )
        .join(down, on="environment", how="left")
        .join(budget.select("environment", "budget_left"), on="environment", how="left")
    )
    out = []
    for r in frame.iter_rows(named=True):
        configured = bool(r.get("configured"))
        out.append(
            {
                "Status": slo.STATUS_LABELS.get(r["status"], r["status"]),
                "Environment": r["environment"],
                "Kind": _kind(r["kind"], r["provider"]),
                "Missed": r["breaches"] or DASH,
                "Requests": int(r["requests"] or 0),
                "Availability": fmt_pct(r["availability"]),
                "Availability SLO": _slo_cell(configured, fmt_pct(r["availability_slo"])),
                "Uptime": fmt_pct(r["uptime"]),
                "Down minutes": int(r["down_minutes"] or 0),
                "p95 SLO (ms)": _slo_cell(configured, fmt_ms(r["latency_p95_slo_ms"], unit=False)),
                "Budget left (30 d)": _slo_cell(configured, fmt_pct(r["budget_left"], 1)),
            }
        )
    schema = {
        "Status": pl.String,
        "Environment": pl.String,
        "Kind": pl.String,
        "Missed": pl.String,
        "Requests": pl.Int64,
        "Availability": pl.String,
        "Availability SLO": pl.String,
        "Uptime": pl.String,
        "Down minutes": pl.Int64,
        "p95 SLO (ms)": pl.String,
        "Budget left (30 d)": pl.String,
    }
    return pl.DataFrame(out, schema=schema, orient="row")


def _kind(kind: str | None, provider: str | None) -> str:
    """The kind and, where it says more, the provider ("cloud · gcp", "onprem", "edge"). The
    region is left to the environment's own page, so that the table fits a 1500-px window
    with its last column (the error budget) in view."""
    if not kind:
        return DASH
    said = provider if provider and provider.lower() not in (kind.lower(), "onprem") else ""
    return f"{kind} · {said}" if said else kind


def accuracy_table(
    accuracy: pl.DataFrame, environment: str, floors: Mapping[str, float | None]
) -> pl.DataFrame:
    """One row per model of `environment`: accuracy, interval, n, floor, and how it compares
    with the same model elsewhere, claimed only where the 95% intervals do not overlap."""
    mine = accuracy.filter(pl.col("environment") == environment)
    others = accuracy.filter(pl.col("environment") != environment, pl.col("accuracy_n") > 0)
    out = []
    for r in mine.iter_rows(named=True):
        n = int(r["accuracy_n"] or 0)
        floor = floors.get(r["model"])
        found: dict[str, list[str]] = {"lower": [], "higher": [], "same": []}
        if n:
            for o in others.filter(pl.col("model") == r["model"]).iter_rows(named=True):
                side = definitions.intervals_compare(
                    r["accuracy_lo"], r["accuracy_hi"], o["accuracy_lo"], o["accuracy_hi"]
                )
                if side is not None:
                    found[side].append(o["environment"])
        parts = [
            f"{words} " + ", ".join(found[side]) for side, words in COMPARED.items() if found[side]
        ]
        verdict = slo.floor_verdict(n, r["accuracy"], r["accuracy_hi"], floor) or DASH
        out.append(
            {
                "Model": r["model"],
                "Accuracy": fmt_pct(r["accuracy"], 1) if n else "no evaluations",
                "95% interval": fmt_interval(r["accuracy_lo"], r["accuracy_hi"]),
                "Evaluations": n,
                "Floor": fmt_pct(floor, 1),
                "Against the floor": verdict,
                "Compared with other environments": "; ".join(parts) if parts else DASH,
            }
        )
    schema = {
        "Model": pl.String,
        "Accuracy": pl.String,
        "95% interval": pl.String,
        "Evaluations": pl.Int64,
        "Floor": pl.String,
        "Against the floor": pl.String,
        "Compared with other environments": pl.String,
    }
    return pl.DataFrame(out, schema=schema, orient="row")


def versions_table(versions: pl.DataFrame, changes: pl.DataFrame) -> pl.DataFrame:
    """Each (model, version) side by side, in rollout order, on `metrics`'s definitions."""
    frame = versions.join(
        changes.select("model", "version", "first_seen", "last_seen"),
        on=["model", "version"],
        how="left",
    ).sort("model", "first_seen", nulls_last=True)
    out = []
    for r in frame.iter_rows(named=True):
        n = int(r["accuracy_n"] or 0)
        out.append(
            {
                "Model": r["model"],
                "Version": r["version"],
                "First request (UTC)": fmt_time(r["first_seen"]),
                "Last request (UTC)": fmt_time(r["last_seen"]),
                "Requests": int(r["requests"] or 0),
                "Error rate": fmt_pct(r["error_rate"]),
                "p50 (ms)": fmt_ms(r["latency_p50_ms"], unit=False),
                "p95 (ms)": fmt_ms(r["latency_p95_ms"], unit=False),
                "p99 (ms)": fmt_ms(r["latency_p99_ms"], unit=False),
                "Accuracy": fmt_pct(r["accuracy"], 1) if n else "no evaluations",
                "95% interval": fmt_interval(r["accuracy_lo"], r["accuracy_hi"]),
                "Evaluations": n,
            }
        )
    schema = {
        "Model": pl.String,
        "Version": pl.String,
        "First request (UTC)": pl.String,
        "Last request (UTC)": pl.String,
        "Requests": pl.Int64,
        "Error rate": pl.String,
        "p50 (ms)": pl.String,
        "p95 (ms)": pl.String,
        "p99 (ms)": pl.String,
        "Accuracy": pl.String,
        "95% interval": pl.String,
        "Evaluations": pl.Int64,
    }
    return pl.DataFrame(out, schema=schema, orient="row")


def incidents_table(periods: pl.DataFrame) -> pl.DataFrame:
    """Down periods, longest first, with what made their minutes down."""
    out = []
    for r in periods.sort("down_minutes", "start", descending=[True, False]).iter_rows(named=True):
        causes = []
        if r["error_minutes"]:
            causes.append(f"{r['error_minutes']} min of errors")
        if r["silent_minutes"]:
            causes.append(f"{r['silent_minutes']} min without expected traffic")
        out.append(
            {
                "Start (UTC)": fmt_time(r["start"]),
                "End (UTC)": fmt_time(r["end"]),
                "Down minutes": int(r["down_minutes"]),
                "Cause": ", ".join(causes) or DASH,
                "Requests": round(r["requests"] or 0),
                "Errors": round(r["errors"] or 0),
            }
        )
    schema = {
        "Start (UTC)": pl.String,
        "End (UTC)": pl.String,
        "Down minutes": pl.Int64,
        "Cause": pl.String,
        "Requests": pl.Int64,
        "Errors": pl.Int64,
    }
    return pl.DataFrame(out, schema=schema, orient="row")


def trace_url(template: str, trace_id: str) -> str:
    """The configured trace link for one id; the id is percent-encoded, so it stays an id."""
    return template.replace("{trace_id}", quote(str(trace_id), safe=""))


def trace_display_pattern(template: str) -> str:
    """A regular expression whose first group pulls the trace id back out of its link."""
    head, _, tail = template.partition("{trace_id}")
    return f"^{re.escape(head)}(.*){re.escape(tail)}$"


TRACE_COLUMNS = ("Trace 1", "Trace 2", "Trace 3")


def bad_minutes_table(down: pl.DataFrame, traces: pl.DataFrame, template: str) -> pl.DataFrame:
    """Every down minute, most failed requests first, with up to three failed traces as links.

    With no trace link configured the trace columns hold the bare ids. A minute that was
    down for silence has no failed requests, hence no traces.
    """
    by_minute: dict[tuple[str, datetime], list[str]] = {}
    for t in traces.iter_rows(named=True):
        by_minute.setdefault((t["environment"], t["minute"]), []).append(t["trace_id"])
    out = []
    for r in down.sort(["errors", "minute"], descending=True).iter_rows(named=True):
        ids = by_minute.get((r["environment"], r["minute"]), [])
        cells = [trace_url(template, i) if template else i for i in ids[: len(TRACE_COLUMNS)]]
        cells += [""] * (len(TRACE_COLUMNS) - len(cells))
        row = {
            "Minute (UTC)": fmt_time(r["minute"]),
            "Cause": "errors" if r["cause"] == "errors" else "no traffic (expected some)",
            "Requests": round(r["requests"] or 0),
            "Errors": round(r["errors"] or 0),
            "Usual requests": fmt_count(r["expected"]),
        }
        row.update(zip(TRACE_COLUMNS, cells, strict=True))
        out.append(row)
    schema = {
        "Minute (UTC)": pl.String,
        "Cause": pl.String,
        "Requests": pl.Int64,
        "Errors": pl.Int64,
        "Usual requests": pl.String,
    } | dict.fromkeys(TRACE_COLUMNS, pl.String)
    return pl.DataFrame(out, schema=schema, orient="row")
