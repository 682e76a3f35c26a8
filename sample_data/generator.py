"""Seeded generator of a hybrid-cloud AI fleet's telemetry, written as real OTLP files.

Why it exists: the dashboard, the forecasts and the ingest need months of data that look
like what OpenTelemetry Collectors really write, with incidents whose ground truth is known
(``scenario.json``) so tests and demos can check that they are found. Nothing here is real.

Where things are: the fleet (``fleet``: environments, pools, models, deployments), the
incidents (``incidents``: records, not branches), the load (``traffic_shape`` and
``traffic``, whose `minute_rates` the GPU and billing generators reuse), the plan drawn
before the first day (``plan``, ``resources``), the spans (``spans_llm``, ``spans_http``,
``span_parts``), their grouping into export requests (``export_lines``), the files
(``file_writers``) and ``scenario.json`` (``summary``).

How it stays fast (about 2M spans in well under a minute): counts, timestamps, durations,
ids and tokens are drawn with numpy per (environment, model, day); every span is then one
``%``-format of a pre-built template, and batches are joined strings. Only the edge site's
protobuf frames go through protobuf objects, and that site is a small share of the load.

Injected events sit at fractions of the range (moved to the nearest weekday) so that a
three-day run has them too. Layout: ``traces/<env>/<date>.<ext>`` (one file per
environment and day, each site in its Collector's framing), ``logs/<env>/<date>.jsonl``
(evaluation log records) and ``scenario.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from sample_data.billing_scenario import BillingWriter
from sample_data.export_lines import log_lines, trace_lines
from sample_data.file_writers import write_traces
from sample_data.fleet import FLEET, Fleet
from sample_data.gpu_scenario import GpuWriter
from sample_data.incidents import INCIDENTS, Incident
from sample_data.plan import Plan, make_plan
from sample_data.span_parts import DayBatch, Stats
from sample_data.spans_http import http_requests
from sample_data.spans_llm import llm_requests
from sample_data.summary import summary as make_summary
from sample_data.traffic import arrivals
from sample_data.traffic_shape import DAY_NS, NS_PER_S

ENVIRONMENTS = FLEET.environment_names()
MODELS = FLEET.model_names()


def _day(plan: Plan, day: int, env: str, stats: dict[int, Stats]) -> DayBatch:
    """The requests of one environment-day, from the day's own stream [seed, 1, day, env]."""
    batch = DayBatch()
    env_index = plan.fleet.environment_names().index(env)
    rng = np.random.default_rng(np.random.SeedSequence([plan.seed, 1, day, env_index]))
    for dp in plan.deployments:
        if dp.dep.env != env:
            continue
        start = arrivals(dp, plan, day, rng)
        n = len(start)
        if n == 0:
            continue
        vidx = np.searchsorted(dp.rollout_ns, start, side="right") - 1
        gid = dp.gids[vidx, rng.integers(0, dp.dep.replicas, n)]
        st = stats[dp.index]
        st.requests += n
        make = llm_requests if dp.spec.kind == "llm" else http_requests
        make(rng, dp, plan, start, vidx, gid, batch, st)
        batch.start_ns.append(start)
        batch.gid.append(gid)
    return batch


def _default_end() -> datetime:
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def generate(
    outdir: Path,
    *,
    days: int = 90,
    seed: int = 7,
    scale: float = 1.0,
    end: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    fleet: Fleet = FLEET,
    incidents: Sequence[Incident] = INCIDENTS,
    gpu: bool = True,
    billing: bool = True,
) -> dict[str, Any]:
    """Write the scenario under `outdir` and return its summary (also in scenario.json).

    `end` is the exclusive end of the data (UTC, floored to the minute; default today 00:00
    so the demo looks current; a naive datetime is taken as UTC). Same arguments give
    byte-identical files: all randomness comes from `seed`. Files are per 24-hour slice
    from the start, named by the slice's UTC start date. `gpu` adds the GPU telemetry
    (``sample_data.gpu_scenario``) of the same fleet and load under `gpu/`; `billing` the
    clouds' billing exports (``sample_data.billing_scenario``) under `billing/`, written
    after the last day (a month's export holds the whole month).
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    if scale <= 0:
        raise ValueError("scale must be positive")
    if end is None:
        end = _default_end()
    elif end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    end = end.astimezone(UTC).replace(second=0, microsecond=0)
    outdir = Path(outdir)
    plan = make_plan(fleet, incidents, days, seed, scale, end)
    native_days = min(3, days // 3)
    stats = {dp.index: Stats() for dp in plan.deployments}
    files = 0
    nbytes = 0
    envs = fleet.environment_names()
    written: dict[str, dict[str, str]] = {env: {} for env in envs}
    for env in envs:
        (outdir / "traces" / env).mkdir(parents=True, exist_ok=True)
    gpus = GpuWriter(outdir, plan) if gpu else None
    if progress:
        progress(0, days)
    for day in range(days):
        day_ns = plan.start_ns + day * DAY_NS
        date = datetime.fromtimestamp(day_ns / NS_PER_S, UTC).strftime("%Y-%m-%d")
        for env in envs:
            batch = _day(plan, day, env, stats)
            lines = trace_lines(batch, plan, env, day_ns)
            native = day >= days - native_days
            framing = fleet.environment(env).framing
            name = write_traces(outdir / "traces" / env / date, lines, framing, native)
            written[env][date] = name
            files += 1
            nbytes += (outdir / "traces" / env / name).stat().st_size
            evaluations = log_lines(batch, plan, env)
            if evaluations:
                log_path = outdir / "logs" / env / f"{date}.jsonl"
                log_path.parent.mkdir(parents=True, exist_ok=True)
                log_path.write_text("".join(line + "\n" for line in evaluations))
                files += 1
                nbytes += log_path.stat().st_size
        if gpus is not None:
            gpus.day(day)
        if progress:
            progress(day + 1, days)
    if gpus is not None:
        files += gpus.files
        nbytes += gpus.nbytes
    bills = BillingWriter(outdir, plan) if billing else None
    billed = bills.write() if bills is not None else None
    if bills is not None:
        files += len(bills.files)
        nbytes += bills.nbytes
    result = make_summary(plan, stats, files, nbytes, native_days, written)
    if gpus is not None:
        result["gpu"] = gpus.summary()
    if billed is not None:
        result["billing"] = billed
    (outdir / "scenario.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result
