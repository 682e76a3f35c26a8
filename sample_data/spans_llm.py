"""LLM requests: one SERVER span each, with gen_ai attributes, tokens and evaluations.

Why one span: vLLM and OpenAI-compatible servers export the chat request itself as the
entry span, so the model, the token counts and the time to first token sit on it.
Latency is ``ttft + output_tokens * per_token_s`` with a heavy tail; an incident's
latency factor stretches both.
"""

from __future__ import annotations

import math

import numpy as np

from sample_data.incidents import accuracy_at, slow_down
from sample_data.otlp_json import attrs, error_status, hex_ids, span_head
from sample_data.plan import DeploymentPlan, Plan
from sample_data.resources import NAMESPACES
from sample_data.span_parts import (
    ERRORS_LLM,
    EVAL_LOG_SHARE,
    EVENT_TMPL,
    FAIL_ATTRS,
    LLM_EVAL_RATE,
    LOG_TMPL,
    PASS_ATTRS,
    RELEVANCE_SHARE,
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

CACHE_TMPL = '{"key":"gen_ai.usage.cache_read.input_tokens","value":{"intValue":"%d"}},'


def llm_requests(
    rng: np.random.Generator, dp: DeploymentPlan, plan: Plan, start: np.ndarray,
    vidx: np.ndarray, gid: np.ndarray, batch: DayBatch, stats: Stats,
) -> None:  # fmt: skip
    dep, spec = dp.dep, dp.spec
    n = len(start)
    in_tok = np.clip(rng.lognormal(math.log(dep.in_tokens), 0.7, n), 8, 30000).astype(np.int64)
    max_tok = rng.choice(np.array([512, 1024, 2048]), size=n, p=[0.5, 0.35, 0.15])
    out_tok = np.clip(rng.lognormal(math.log(dep.out_tokens), 0.55, n), 1, None).astype(np.int64)
    out_tok = np.minimum(out_tok, max_tok)
    ttft = (dep.base_s + in_tok * 0.00006) * rng.lognormal(0.0, 0.3, n)
    dur = ttft + out_tok * dep.per_token_s * rng.lognormal(0.0, 0.12, n)
    dur *= pareto_tail(rng, n)
    factor = slow_down(plan.active, dep.env, dep.model, start)
    dur *= factor
    ttft *= factor
    err, ekind = draw_errors(rng, start, dep, plan.active, ERRORS_LLM)
    timeout = err & (ekind == 0)
    fast = err & ~timeout
    dur[timeout] = 30.0 + rng.random(int(timeout.sum())) * 0.05
    dur[fast] = rng.lognormal(math.log(0.012), 0.6, int(fast.sum()))
    dur_ns = np.maximum((dur * NS_PER_S).astype(np.int64), 50_000)
    end = start + dur_ns

    trace_ids = hex_ids(rng, n, 16)
    span_ids = hex_ids(rng, n, 8)
    host = f"{spec.service}.{NAMESPACES[spec.service]}.svc.cluster.local"
    common = [
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.request.model", dep.model),
        ("gen_ai.response.model", dep.response_model),
        ("server.address", host),
        ("server.port", SERVER_PORT),
    ]
    pieces = [
        attrs([("gen_ai.provider.name" if new else "gen_ai.system", dep.provider), *common])
        for new in dp.new_semconv
    ]
    head = span_head(f"chat {dep.model}", 2, False)
    ok_tmpl = (
        head + '%s,{"key":"gen_ai.request.max_tokens","value":{"intValue":"%d"}},'
        '{"key":"gen_ai.usage.input_tokens","value":{"intValue":"%d"}},'
        '{"key":"gen_ai.usage.output_tokens","value":{"intValue":"%d"}},%s'
        '{"key":"gen_ai.server.time_to_first_token","value":{"doubleValue":%.4f}},'
        '{"key":"gen_ai.response.finish_reasons","value":{"arrayValue":{"values":'
        '[{"stringValue":"%s"}]}}}]%s}'
    )
    err_tmpl = (
        head + '%s,{"key":"gen_ai.request.max_tokens","value":{"intValue":"%d"}},'
        '{"key":"gen_ai.usage.input_tokens","value":{"intValue":"%d"}},%s]%s}'
    )
    err_pieces = [
        (attrs([("error.type", etype), ("http.response.status_code", code)]), error_status(msg))
        for etype, code, msg, _ in ERRORS_LLM
    ]
    for outage in outages_of(plan.active, dep):
        code, msg = outage_status(outage)
        err_pieces.append(
            (
                attrs([("error.type", str(code)), ("http.response.status_code", code)]),
                error_status(msg),
            )
        )

    # evaluations of successful requests: accuracy label, sometimes relevance too
    tails = [""] * n
    ev = ~err & (rng.random(n) < LLM_EVAL_RATE)
    ev_idx = np.flatnonzero(ev)
    m = len(ev_idx)
    accuracy = accuracy_at(plan.active, dep.env, dep.model, dep.accuracy or 0.0, start[ev_idx])
    passed = rng.random(m) < judged_accuracy(accuracy)
    to_log = rng.random(m) < EVAL_LOG_SHARE
    relevance = rng.random(m) < RELEVANCE_SHARE
    rel_value = rng.beta(8.0, 2.0, m)
    fail_kind = rng.integers(0, len(FAIL_ATTRS), m)
    delay = (rng.lognormal(math.log(20.0), 1.0, m) * NS_PER_S).astype(np.int64)
    observed = (rng.random(m) * 2 * NS_PER_S).astype(np.int64)
    end_l = end.tolist()
    gid_l = gid.tolist()
    for k, i in enumerate(ev_idx.tolist()):
        records = [PASS_ATTRS if passed[k] else FAIL_ATTRS[fail_kind[k]]]
        if relevance[k]:
            records.append(eval_attrs("relevance", None, round(float(rel_value[k]), 4)))
        if to_log[k]:
            t = end_l[i] + int(delay[k])
            for a in records:
                rec = LOG_TMPL % (t, t + int(observed[k]), trace_ids[i], span_ids[i], a)
                batch.logs.append((t, gid_l[i], rec))
            stats.eval_logs += len(records)
        else:
            events = ",".join(EVENT_TMPL % (end_l[i], a) for a in records)
            tails[i] = ',"events":[' + events + "]"
            stats.eval_events += len(records)
        stats.evaluations += len(records)
        stats.eval_accuracy += 1
        stats.eval_pass += int(passed[k])
    stats.eval_expected += float(accuracy.sum())

    finish = np.where(out_tok >= max_tok, "length", "stop").tolist()
    start_l, vidx_l = start.tolist(), vidx.tolist()
    mt_l, in_l, out_l, ttft_l = max_tok.tolist(), in_tok.tolist(), out_tok.tolist(), ttft.tolist()
    strs: list[str] = [""] * n
    # the prefix cache's share of the input, drawn from nothing random (the other figures
    # stay what they were), on the versions that emit the newer GenAI names
    cached = (in_tok * dep.cached_share).astype(np.int64).tolist()
    reports = [new and dep.cached_share > 0 for new in dp.new_semconv]
    for i in np.flatnonzero(~err).tolist():
        cache = CACHE_TMPL % cached[i] if reports[vidx_l[i]] else ""
        strs[i] = ok_tmpl % (
            trace_ids[i], span_ids[i], start_l[i], end_l[i], pieces[vidx_l[i]], mt_l[i],
            in_l[i], out_l[i], cache, ttft_l[i], finish[i], tails[i],
        )  # fmt: skip
    ek = ekind.tolist()
    for i in np.flatnonzero(err).tolist():
        epiece, status = err_pieces[ek[i]]
        strs[i] = err_tmpl % (
            trace_ids[i], span_ids[i], start_l[i], end_l[i], pieces[vidx_l[i]], mt_l[i],
            in_l[i], epiece, status,
        )  # fmt: skip
    batch.entry.extend(strs)
    batch.child.extend([""] * n)
    batch.nspans.append(np.ones(n, np.int64))
    stats.spans += n
    stats.errors += int(err.sum())
