"""Pieces of OTLP/JSON text and random identifiers, built once and reused by every span.

Why text and not objects: a span is one ``%``-format over pre-built JSON pieces, which is
what keeps months of spans fast to write (see ``sample_data.generator``).
"""

# %-formatting is the point here: one C-level format per span over pre-built JSON pieces.
# ruff: noqa: UP031

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from sample_data.traffic_shape import NS_PER_S


def attr(key: str, value: Any) -> str:
    """One KeyValue in OTLP/JSON; ints go out as decimal strings (proto3 JSON int64)."""
    if isinstance(value, bool):
        v = '{"boolValue":%s}' % ("true" if value else "false")
    elif isinstance(value, int):
        v = '{"intValue":"%d"}' % value
    elif isinstance(value, float):
        v = '{"doubleValue":%r}' % value
    else:
        v = '{"stringValue":%s}' % json.dumps(str(value))
    return '{"key":%s,"value":%s}' % (json.dumps(key), v)


def attrs(pairs: Sequence[tuple[str, Any]]) -> str:
    return ",".join(attr(k, v) for k, v in pairs)


def scope(name_version: tuple[str, str]) -> str:
    return '{"name":%s,"version":%s}' % (json.dumps(name_version[0]), json.dumps(name_version[1]))


def span_head(name: str, kind: int, parent: bool) -> str:
    """The start of a span's JSON up to its attribute list, with %-slots for ids and times."""
    p = ',"parentSpanId":"%s"' if parent else ""
    return (
        '{"traceId":"%s","spanId":"%s"' + p + ',"name":' + json.dumps(name) + ',"kind":'
        + str(kind) + ',"startTimeUnixNano":"%d","endTimeUnixNano":"%d","attributes":['
    )  # fmt: skip


def error_status(message: str) -> str:
    return ',"status":{"code":2,"message":%s}' % json.dumps(message)


def hex_ids(rng: np.random.Generator, n: int, nbytes: int) -> list[str]:
    """Random lowercase hex ids; an all-zero id (invalid in OTLP) is 2**-64 unlikely."""
    width = 2 * nbytes
    text = rng.bytes(n * nbytes).hex()
    return [text[i : i + width] for i in range(0, n * width, width)]


def token(rng: np.random.Generator, n: int, alphabet: str = "bcdfghjklmnpqrstvwxz2456789") -> str:
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), n))


def uuid4(rng: np.random.Generator) -> str:
    h = bytearray(rng.bytes(16))
    h[6] = (h[6] & 0x0F) | 0x40
    h[8] = (h[8] & 0x3F) | 0x80
    s = h.hex()
    return f"{s[:8]}-{s[8:12]}-{s[12:16]}-{s[16:20]}-{s[20:]}"


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / NS_PER_S, UTC).isoformat().replace("+00:00", "Z")
