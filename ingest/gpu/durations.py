"""Prometheus durations (`90s`, `15m`, `1h30m`, `7d`), apart from the puller so the command
line can parse its flags without importing an HTTP client."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration(text: str) -> timedelta:
    """A Prometheus duration (`90s`, `1h30m`, `7d`) as a timedelta; ValueError otherwise."""
    text = text.strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration like 60s, 15m, 24h or 1h30m")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if not 0 < seconds <= 100 * 365 * 86400:
        raise ValueError(f"{text!r} must be more than zero and at most 100 years")
    return timedelta(seconds=seconds)
