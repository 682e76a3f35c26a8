"""Which OTLP signal a protobuf payload carries, read from the wire without parsing it all.

ExportTraceServiceRequest, ExportLogsServiceRequest and ExportMetricsServiceRequest look
alike for two levels: field 1 holds resources, whose field 2 holds scopes, whose field 2
holds the items. Only the items differ, by the wire type of their fields: a Span has
fixed64 times in fields 7 and 8 (where a LogRecord has varints and a Metric has
messages), a LogRecord has a fixed64 time in field 1 (where a Span has its trace id and a
Metric its name). So the first item whose fields fit one schema alone decides; a payload
with no item, or none that decides, is `None`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

Signal = Literal["traces", "logs", "metrics"]

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
# field number -> wire type, per item message (opentelemetry-proto 1.x)
_ITEMS: dict[Signal, dict[int, int]] = {
    "traces": {
        1: _LEN, 2: _LEN, 3: _LEN, 4: _LEN, 5: _LEN, 6: _VARINT, 7: _I64, 8: _I64, 9: _LEN,
        10: _VARINT, 11: _LEN, 12: _VARINT, 13: _LEN, 14: _VARINT, 15: _LEN, 16: _I32,
    },
    "logs": {
        1: _I64, 2: _VARINT, 3: _LEN, 5: _LEN, 6: _LEN, 7: _VARINT, 8: _I32, 9: _LEN,
        10: _LEN, 11: _I64, 12: _LEN,
    },
    "metrics": {1: _LEN, 2: _LEN, 3: _LEN, 5: _LEN, 7: _LEN, 9: _LEN, 10: _LEN, 11: _LEN, 12: _LEN},
}  # fmt: skip
_LEGACY_SCOPES = 1000  # instrumentation_library_* before OTLP 1.0: same layout as scopes
_MAX_ITEMS = 64  # items looked at before giving up on an undecidable payload


class _Malformed(ValueError):
    pass


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Malformed
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, start, end of the value) of one message's fields."""
    while pos < end:
        tag, pos = _varint(buf, pos, end)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise _Malformed
        if wire == _VARINT:
            _, after = _varint(buf, pos, end)
        elif wire == _I64:
            after = pos + 8
        elif wire == _I32:
            after = pos + 4
        elif wire == _LEN:
            size, pos = _varint(buf, pos, end)
            after = pos + size
        else:  # groups (3, 4) are not used by OTLP; 6 and 7 do not exist
            raise _Malformed
        if after > end:
            raise _Malformed
        yield number, wire, pos, after
        pos = after


def _fits(buf: bytes, start: int, end: int) -> set[Signal]:
    """The signals whose item schema one item's fields fit (unknown field numbers allowed)."""
    fits: set[Signal] = set(_ITEMS)
    for number, wire, _, _ in _fields(buf, start, end):
        for signal in list(fits):
            expected = _ITEMS[signal].get(number)
            if expected is not None and expected != wire:
                fits.discard(signal)
    return fits


def _items(buf: bytes) -> Iterator[tuple[int, int]]:
    """The byte ranges of the items, through resources and scopes (legacy ones too)."""
    for number, wire, start, end in _fields(buf, 0, len(buf)):
        if number != 1 or wire != _LEN:
            continue
        for n2, w2, s2, e2 in _fields(buf, start, end):
            if n2 not in (2, _LEGACY_SCOPES) or w2 != _LEN:
                continue
            for n3, w3, s3, e3 in _fields(buf, s2, e2):
                if n3 == 2 and w3 == _LEN:
                    yield s3, e3


def detect_signal(payload: bytes) -> Signal | None:
    """ "traces", "logs" or "metrics" for an OTLP export request; None when it cannot tell.

    None means an empty request (no span, log record or metric), a payload that is not
    protobuf, or items that fit no schema or more than one.
    """
    try:
        for n, (start, end) in enumerate(_items(payload)):
            if n >= _MAX_ITEMS:
                return None
            fits = _fits(payload, start, end)
            if len(fits) == 1:
                return fits.pop()
            if not fits:
                return None
    except _Malformed:
        return None
    return None


def is_empty(payload: bytes) -> bool:
    """Whether a payload is a well-formed export request that holds no item at all."""
    try:
        return next(_items(payload), None) is None
    except _Malformed:
        return False
