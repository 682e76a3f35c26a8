"""One day's requests and evaluation records grouped into OTLP export requests (lines).

Why grouped this way: a Collector's file exporter writes one export request per batch,
each batch holding the spans that arrived within a short window, grouped by resource and
by instrumentation scope, and never more than a batch size; readers must see that shape.
"""

# %-formatting is the point here: one C-level format per span over pre-built JSON pieces.
# ruff: noqa: UP031

from __future__ import annotations

import numpy as np

from sample_data.otlp_json import scope
from sample_data.plan import Plan
from sample_data.span_parts import DayBatch
from sample_data.traffic_shape import NS_PER_MIN, NS_PER_S

WINDOW_MIN = 10  # one export batch (request line) covers up to this many minutes at scale 1
MAX_SPANS_PER_LINE = 500
LOG_SCOPE = ("genai.evaluator", "0.7.0")


def window_minutes(scale: float) -> int:
    """Minutes per export batch: longer at small scales, where short windows would hold a
    span or two each and the repeated resource attributes would dominate the file size."""
    for minutes in (10, 15, 20, 30):
        if minutes * scale >= WINDOW_MIN:
            return minutes
    return 60


def trace_lines(batch: DayBatch, plan: Plan, env: str, day_ns: int) -> list[str]:
    """Group a day's requests into export lines: time windows, <=500 spans, by resource."""
    if not batch.start_ns:
        return []
    start = np.concatenate(batch.start_ns)
    gid = np.concatenate(batch.gid)
    nspans = np.concatenate(batch.nspans)
    order = np.argsort(start, kind="stable")
    window = (start[order] - day_ns) // (window_minutes(plan.scale) * NS_PER_MIN)
    cs = np.cumsum(nspans[order])
    first = np.searchsorted(window, window, side="left")  # first request of each window
    before = np.where(first > 0, cs[np.maximum(first - 1, 0)], 0)
    chunk = (cs - before - 1) // (MAX_SPANS_PER_LINE - 1)
    line_key = window * 1000 + chunk
    order2 = order[np.lexsort((gid[order], line_key))]
    key_sorted = line_key[np.lexsort((gid[order], line_key))]
    gid_sorted = gid[order2]

    resources = plan.resources[env]
    scopes: dict[str, tuple[str, str]] = {}
    for dp in plan.deployments:
        if dp.dep.env == env:
            child_scope = scope(dp.spec.child_scope) if dp.spec.child_scope[0] else ""
            scopes[dp.spec.service] = (scope(dp.spec.entry_scope), child_scope)
    entry, child = batch.entry, batch.child
    lines: list[str] = []
    bounds = np.flatnonzero(np.diff(key_sorted)) + 1
    for seg in np.split(np.arange(len(order2)), bounds):
        idx = order2[seg]
        g = gid_sorted[seg]
        parts: list[str] = []
        gb = np.flatnonzero(np.diff(g)) + 1
        for sub in np.split(np.arange(len(idx)), gb):
            rows = idx[sub].tolist()
            res = resources[int(g[sub[0]])]
            entry_scope, child_scope = scopes[res.service]
            scope_spans = '{"scope":%s,"spans":[%s]}' % (
                entry_scope,
                ",".join([entry[i] for i in rows]),
            )
            if child_scope:
                scope_spans += ',{"scope":%s,"spans":[%s]}' % (
                    child_scope,
                    ",".join([child[i] for i in rows]),
                )
            parts.append(
                '{"resource":{"attributes":%s},"scopeSpans":[%s]}' % (res.json, scope_spans)
            )
        lines.append('{"resourceSpans":[%s]}' % ",".join(parts))
    return lines


def log_lines(batch: DayBatch, plan: Plan, env: str) -> list[str]:
    """Evaluation log records grouped per hour and resource, as an evaluator would export."""
    if not batch.logs:
        return []
    resources = plan.resources[env]
    log_scope = scope(LOG_SCOPE)
    logs = sorted(batch.logs, key=lambda r: (r[0] // (3600 * NS_PER_S), r[1], r[0]))
    lines: list[str] = []
    i = 0
    while i < len(logs):
        hour = logs[i][0] // (3600 * NS_PER_S)
        j = i
        while j < len(logs) and logs[j][0] // (3600 * NS_PER_S) == hour and j - i < 500:
            j += 1
        parts: list[str] = []
        k = i
        while k < j:
            g = logs[k][1]
            m = k
            while m < j and logs[m][1] == g:
                m += 1
            records = ",".join(r[2] for r in logs[k:m])
            parts.append(
                '{"resource":{"attributes":%s},"scopeLogs":[{"scope":%s,"logRecords":[%s]}]}'
                % (resources[g].json, log_scope, records)
            )
            k = m
        lines.append('{"resourceLogs":[%s]}' % ",".join(parts))
        i = j
    return lines
