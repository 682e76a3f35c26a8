"""``scenario.json``: what a run holds and the ground truth of what was injected into it.

Why ground truth: tests and the demo check that the dashboard finds the outage, the
regression and the less accurate build where the incident records put them, and that the
accuracy it shows is the one the files hold.
"""

from __future__ import annotations

from typing import Any

from sample_data.incidents import Active
from sample_data.otlp_json import iso
from sample_data.plan import Plan
from sample_data.span_parts import (
    CLASSIFIER_EVAL_RATE,
    EVAL_LOG_SHARE,
    LLM_EVAL_RATE,
    RELEVANCE_SHARE,
    Stats,
)
from sample_data.traffic_shape import (
    ENV_NOISE,
    GROWTH_PER_90_DAYS,
    MINUTE_SIGMA,
    MODEL_NOISE,
    WEEKEND_FACTOR,
)

COUNTS = ("requests", "spans", "errors", "evaluations")


def _framings(plan: Plan, native_days: int) -> dict[str, str]:
    described = {
        "jsonl": "json lines (.jsonl)",
        "zstd": "legacy zstd: 4-byte big-endian length + zstd frame per message "
        f"(.jsonl.zst); the last {native_days} days one zstd stream of json lines (.zst)",
        "protobuf": "protobuf: 4-byte big-endian length + ExportTraceServiceRequest (.binpb)",
    }
    out = {e.name: described[e.framing] for e in plan.fleet.environments}
    out["logs"] = "json lines of ExportLogsServiceRequest under logs/<env>/"
    return out


def _outage(a: Active) -> dict[str, Any]:
    inc = a.incident
    return {
        "environment": inc.environment,
        "start": iso(a.start_ns),
        "errors_until": iso(a.errors_until_ns),
        "end": iso(a.end_ns),
        "error_ratio": inc.number("error_ratio"),
        "http_status": int(inc.number("http_status")),
        "description": str(inc.params["description"]),
    }


def _regression(a: Active, plan: Plan) -> dict[str, Any]:
    inc = a.incident
    assert inc.window.rollout is not None
    model, version = inc.window.rollout
    dp = next(d for d in plan.deployments if (d.dep.env, d.dep.model) == (inc.environment, model))
    versions = [v for _, v in dp.dep.versions]
    j = versions.index(version)
    return {
        "environment": inc.environment,
        "service": dp.spec.service,
        "model": model,
        "from_version": versions[j - 1] if j else "",
        "to_version": version,
        "at": iso(a.start_ns),
        "latency_factor": inc.number("latency_factor"),
        "versions": versions,
    }


def _load() -> dict[str, Any]:
    (es, ep), (ms, mp) = ENV_NOISE, MODEL_NOISE
    return {
        "profile": "two daily peaks at 10:00 and 16:00 UTC, night trough 0.25 of peak",
        "weekend_factor": WEEKEND_FACTOR,
        "growth_per_90_days": GROWTH_PER_90_DAYS,
        "rates_hold_at": "end",
        "noise": f"lognormal, mean 1: hourly AR(1) per environment (sigma {es:.2f}, phi {ep:g}) "
        f"x hourly AR(1) per model (sigma {ms:.2f}, phi {mp:g}) x per minute "
        f"(sigma {MINUTE_SIGMA:.2f})",
        "evaluation_rates": {
            "llm": LLM_EVAL_RATE,
            "classifier": CLASSIFIER_EVAL_RATE,
            "llm_as_logs": round(EVAL_LOG_SHARE, 4),
            "relevance_share": RELEVANCE_SHARE,
        },
    }


def _expected_accuracy(plan: Plan, index: int, st: Stats) -> float | None:
    """The accuracy the judged requests were drawn with, on average; with none judged,
    the deployment's own unless an accuracy drop covers the end of the range."""
    dp = plan.deployments[index]
    if dp.dep.accuracy is None:
        return None
    if st.eval_accuracy:
        return round(st.eval_expected / st.eval_accuracy, 4)
    for a in plan.active:
        drop = a.kind == "accuracy_drop" and a.incident.applies(dp.dep.env, dp.dep.model)
        if drop and a.start_ns < plan.end_ns <= a.end_ns:
            return a.incident.number("accuracy")
    return dp.dep.accuracy


def summary(
    plan: Plan,
    stats: dict[int, Stats],
    files: int,
    nbytes: int,
    native_days: int,
    written: dict[str, dict[str, str]],
) -> dict[str, Any]:
    by_env: dict[str, dict[str, int]] = {}
    by_model: dict[str, dict[str, int]] = {}
    by_pair: dict[str, dict[str, dict[str, Any]]] = {}
    total = dict.fromkeys(COUNTS, 0)
    for dp in plan.deployments:
        st = stats[dp.index]
        counts = {k: getattr(st, k) for k in COUNTS}
        for bucket, key in ((by_env, dp.dep.env), (by_model, dp.dep.model)):
            agg = bucket.setdefault(key, dict.fromkeys(counts, 0))
            for k, v in counts.items():
                agg[k] += v
        pair: dict[str, Any] = dict(counts, eval_events=st.eval_events, eval_logs=st.eval_logs)
        pair["peak_rpm"] = dp.dep.peak_rpm * plan.scale
        pair["service"] = dp.spec.service
        pair["versions"] = [v for _, v in dp.dep.versions]
        expected = _expected_accuracy(plan, dp.index, st)
        if expected is not None:
            pair["accuracy_expected"] = expected
        if st.eval_accuracy:
            pair["accuracy_observed"] = round(st.eval_pass / st.eval_accuracy, 4)
        by_pair.setdefault(dp.dep.env, {})[dp.dep.model] = pair
        for k in COUNTS:
            total[k] += counts[k]
    accuracy = {
        env: {
            model: {
                "evaluation": "accuracy",
                "expected": p["accuracy_expected"],
                "observed": p.get("accuracy_observed"),
                "score": "label" if plan.fleet.model(model).kind == "llm" else "value",
            }
            for model, p in models.items()
            if "accuracy_expected" in p
        }
        for env, models in by_pair.items()
    }
    events: dict[str, Any] = {}
    outages = [a for a in plan.active if a.kind == "outage"]
    regressions = [a for a in plan.active if a.kind == "latency_regression"]
    if outages:
        events["outage"] = _outage(outages[0])
    if regressions:
        events["regression"] = _regression(regressions[0], plan)
    events["accuracy"] = accuracy
    events["rollouts"] = plan.rollouts
    return {
        "seed": plan.seed,
        "days": plan.days,
        "scale": plan.scale,
        "start": iso(plan.start_ns),
        "end": iso(plan.end_ns),
        **total,
        "files": files,
        "bytes": nbytes,
        "environments": list(plan.fleet.environment_names()),
        "models": list(plan.fleet.model_names()),
        "by_environment": by_env,
        "by_model": by_model,
        "by_environment_model": by_pair,
        "events": events,
        "load": _load(),
        "framings": _framings(plan, native_days),
        "trace_files": written,
    }
