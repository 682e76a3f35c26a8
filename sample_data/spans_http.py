"""HTTP-served models: a SERVER span per request with one INTERNAL child naming the model.

Why two spans: a FastAPI or Spring service instruments the HTTP request, and the model
code inside it adds its own span, so the model is found on a descendant (the classifier
and embedder with ``gen_ai.request.model``, the vision model only with ``ml.model.name``).
"""

from __future__ import annotations

import math

import numpy as np

from sample_data.incidents import accuracy_at, slow_down
from sample_data.otlp_json import attrs, error_status, hex_ids, span_head
from sample_data.plan import DeploymentPlan, Plan
from sample_data.resources import NAMESPACES
from sample_data.span_parts import (
    CLASSIFIER_EVAL_RATE,
    ERRORS_HTTP,
    EVENT_TMPL,
    SERVER_PORT,
    DayBatch,
    Stats,
    draw_errors,
    eval_attrs,
    judged_accuracy,
    outage_status,
    outages_of,
    pareto_tail,
)
from sample_data.traffic_shape import NS_PER_S


def _child_pieces(dp: DeploymentPlan) -> list[str]:
    """The child span's attributes per version (an embedding's token count left as %d)."""
    dep, kind = dp.dep, dp.spec.kind
    if kind == "classifier":
        return [
            attrs([("gen_ai.request.model", dep.model), ("ml.model.version", v)])
            for _, v in dep.versions
        ]
    if kind == "embedding":
        return [
            attrs(
                [
                    ("gen_ai.operation.name", "embeddings"),
                    ("gen_ai.provider.name" if new else "gen_ai.system", "tei"),
                    ("gen_ai.request.model", dep.model),
                    ("gen_ai.response.model", dep.model),
                ]
            )
            + ',{"key":"gen_ai.usage.input_tokens","value":{"intValue":"%d"}}'
            for new in dp.new_semconv
        ]
    return [
        attrs([("ml.model.name", dep.model), ("ml.framework", "tensorrt")]) for _ in dep.versions
    ]


def http_requests(
    rng: np.random.Generator, dp: DeploymentPlan, plan: Plan, start: np.ndarray,
    vidx: np.ndarray, gid: np.ndarray, batch: DayBatch, stats: Stats,
) -> None:  # fmt: skip
    dep, spec = dp.dep, dp.spec
    n = len(start)
    in_tok = None
    if spec.kind == "embedding":
        in_tok = np.clip(rng.lognormal(math.log(dep.in_tokens), 0.8, n), 4, 512).astype(np.int64)
        model_s = (dep.base_s + in_tok * dep.per_token_s) * rng.lognormal(0.0, 0.2, n)
    else:
        model_s = rng.lognormal(math.log(dep.base_s), dep.sigma, n)
    model_s *= pareto_tail(rng, n)
    model_s *= slow_down(plan.active, dep.env, dep.model, start)
    overhead = rng.lognormal(math.log(0.003), 0.5, n)
    err, ekind = draw_errors(rng, start, dep, plan.active, ERRORS_HTTP)
    timeout = err & (ekind == 0)
    fast = err & ~timeout
    model_s[timeout] = 10.0 + rng.random(int(timeout.sum())) * 0.02
    model_s[fast] = rng.lognormal(math.log(0.004), 0.6, int(fast.sum()))
    child_ns = np.maximum((model_s * NS_PER_S).astype(np.int64), 20_000)
    over_ns = np.maximum((overhead * NS_PER_S).astype(np.int64), 10_000)
    pre_ns = (over_ns * rng.uniform(0.3, 0.7, n)).astype(np.int64)
    child_start = start + pre_ns
    child_end = child_start + child_ns
    end = start + child_ns + over_ns

    trace_ids = hex_ids(rng, n, 16)
    span_ids = hex_ids(rng, n, 8)
    child_ids = hex_ids(rng, n, 8)
    host = f"{spec.service}.{NAMESPACES[spec.service]}.svc.cluster.local"
    entry_common = attrs(
        [
            ("http.request.method", "POST"),
            ("http.route", spec.route),
            ("url.path", spec.route),
            ("url.scheme", "http"),
            ("server.address", host),
            ("server.port", SERVER_PORT),
        ]
    )
    entry_tmpl = (
        span_head(f"POST {spec.route}", 2, False) + entry_common
        + ',{"key":"http.response.status_code","value":{"intValue":"%d"}}%s]%s}'
    )  # fmt: skip
    child_tmpl = span_head(spec.child_name, 1, True) + "%s]%s}"
    child_pieces = _child_pieces(dp)

    code = np.full(n, 200, np.int64)
    statuses = [e[1] for e in ERRORS_HTTP]
    err_piece = [(attrs([("error.type", e[0])]), error_status(e[2])) for e in ERRORS_HTTP]
    for outage in outages_of(plan.active, dep):
        status_code, msg = outage_status(outage)
        statuses.append(status_code)
        err_piece.append((attrs([("error.type", str(status_code))]), error_status(msg)))
    code[err] = np.array(statuses, np.int64)[ekind[err]]
    ok_piece = ("", "")

    tails = [""] * n
    if spec.kind == "classifier":
        ev_idx = np.flatnonzero(~err & (rng.random(n) < CLASSIFIER_EVAL_RATE))
        acc = accuracy_at(plan.active, dep.env, dep.model, dep.accuracy or 0.0, start[ev_idx])
        mean = judged_accuracy(acc)
        values = rng.beta(mean * 30.0, (1 - mean) * 30.0, len(ev_idx))
        ce = child_end.tolist()
        for k, i in enumerate(ev_idx.tolist()):
            a = eval_attrs("accuracy", None, round(float(values[k]), 4))
            tails[i] = ',"events":[' + EVENT_TMPL % (ce[i], a) + "]"
        stats.evaluations += len(ev_idx)
        stats.eval_events += len(ev_idx)
        stats.eval_accuracy += len(ev_idx)
        stats.eval_pass += float(np.round(values, 4).sum())
        stats.eval_expected += float(acc.sum())

    ek = ekind.tolist()
    err_l, code_l, vidx_l = err.tolist(), code.tolist(), vidx.tolist()
    s_l, e_l, cs_l, ce_l = start.tolist(), end.tolist(), child_start.tolist(), child_end.tolist()
    tok_l = in_tok.tolist() if in_tok is not None else None
    entries: list[str] = []
    children: list[str] = []
    for i in range(n):
        epiece, status = err_piece[ek[i]] if err_l[i] else ok_piece
        sep = "," if epiece else ""
        entries.append(
            entry_tmpl
            % (trace_ids[i], span_ids[i], s_l[i], e_l[i], code_l[i], sep + epiece, status)
        )
        cp = child_pieces[vidx_l[i]]
        if tok_l is not None:
            cp = cp % tok_l[i]
        children.append(
            child_tmpl
            % (trace_ids[i], child_ids[i], span_ids[i], cs_l[i], ce_l[i], cp, status + tails[i])
        )
    batch.entry.extend(entries)
    batch.child.extend(children)
    batch.nspans.append(np.full(n, 2, np.int64))
    stats.spans += 2 * n
    stats.errors += int(err.sum())
