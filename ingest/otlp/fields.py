"""Decoding one OTLP field at a time: ids, times, enums, counts and attribute values.

Every decoder either returns the value in the form the rows want or raises RecordError
with a sentence that names the field, so a bad span is quarantined with a reason and
never stops its neighbours. The JSON and protobuf walks share these, so both encodings
accept and refuse exactly the same values.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from ingest.errors import RecordError

BadRecord = RecordError  # the name the other ingest modules and tests know it by

KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUSES = ("UNSET", "OK", "ERROR")
MIN_NS = 946_684_800 * 10**9  # 2000-01-01: anything earlier is a zero or a broken clock
MAX_NS = 4_102_444_800 * 10**9  # 2100-01-01
MAX_COUNT = 2**53
UNSET_TIMES = (None, "", "0", 0)  # a zero time means "not set" (OTLP), here as in protobuf


def message(exc: BaseException) -> str:
    """The sentence a quarantine row shows for an exception raised while decoding."""
    if isinstance(exc, KeyError):
        return f"missing field {exc}"
    return str(exc) or type(exc).__name__


def excerpt(raw: bytes | str, limit: int = 500) -> str:
    if isinstance(raw, bytes):
        raw = raw[:limit].decode("utf-8", errors="backslashreplace")
    return raw[:limit]


def excerpt_json(value: Any, limit: int = 500) -> str:
    """The start of a decoded JSON value, serialized again, for a quarantine row."""
    try:
        return excerpt(orjson.dumps(value), limit)
    except TypeError:  # nested deeper than orjson serializes
        return f"({type(value).__name__} nested too deeply to show)"


def short(value: Any, limit: int = 256) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[:limit] + "…"


def iso(ns: int) -> str:
    """A nanosecond timestamp as a UTC ISO 8601 string, to the second, for messages."""
    return datetime.fromtimestamp(ns // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_HEX = re.compile(r"[0-9a-fA-F]+")
is_hex = _HEX.fullmatch  # for the walks' inline fast path: the same test `hex_id` makes


def hex_id(value: Any, size: int, field_name: str) -> str:
    if not isinstance(value, str) or not value:
        raise RecordError(f"{field_name} is missing")
    if len(value) == size * 2 and _HEX.fullmatch(value):  # the common case, kept cheap
        if not value.strip("0"):
            raise RecordError(f"{field_name} is all zeros (invalid)")
        return value.lower()
    if len(value) == size * 2:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise RecordError(f"{field_name} {value[:40]!r} is not hex") from None
    else:
        try:  # proto3 JSON's default bytes encoding, emitted by some non-OTLP encoders
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != size:
            raise RecordError(
                f"{field_name} {value[:40]!r} must be {size * 2} hex digits, got {len(value)} chars"
            ) from None
    if not any(raw):
        raise RecordError(f"{field_name} is all zeros (invalid)")
    return raw.hex()


def bytes_id(value: bytes, size: int, field_name: str) -> str:
    if len(value) != size:
        raise RecordError(f"{field_name} must be {size} bytes, got {len(value)}")
    if not any(value):
        raise RecordError(f"{field_name} is all zeros (invalid)")
    return value.hex()


def ns(value: Any, field_name: str) -> int:
    if value is None or value == "":
        raise RecordError(f"{field_name} is missing")
    if isinstance(value, bool):
        raise RecordError(f"{field_name} must be an integer, got {value!r}")
    try:
        t = int(value)
    except (TypeError, ValueError):
        raise RecordError(f"{field_name} {str(value)[:40]!r} is not an integer") from None
    if not MIN_NS <= t < MAX_NS:
        raise RecordError(
            f"{field_name} {t} is outside 2000-01-01..2100-01-01 (a zero, a wrong unit or a "
            "broken clock)"
        )
    return t


def enum(value: Any, names: tuple[str, ...], prefix: str, field_name: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < len(names):
            return names[value]
    elif isinstance(value, str):  # lenient: enum names are not OTLP/JSON but are common
        name = value.removeprefix(prefix)
        if name in names:
            return name
    raise RecordError(f"{field_name} {str(value)[:40]!r} is not a known value ({', '.join(names)})")


def count(value: Any, field_name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = int(value)
        except (TypeError, ValueError):
            raise RecordError(f"{field_name} {str(value)[:40]!r} is not a count") from None
    if not 0 <= value < MAX_COUNT:
        raise RecordError(f"{field_name} {value!r} is out of range")
    return int(value)


def seconds_to_ms(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value) * 1000.0 if 0 <= value < 86400 else None
    return None


def tracestate_weight(trace_state: str | None) -> float:
    """Adjusted count from the W3C `ot=th:` rejection threshold (1.0 when absent)."""
    if not trace_state or "th:" not in trace_state:
        return 1.0
    for member in trace_state.split(","):
        key, _, value = member.strip().partition("=")
        if key != "ot":
            continue
        for part in value.split(";"):
            name, _, th = part.partition(":")
            if name == "th" and 0 < len(th) <= 14:
                try:
                    threshold = int(th.ljust(14, "0"), 16)
                except ValueError:
                    return 1.0
                return float(2**56) / (2**56 - threshold)
    return 1.0


# -- attribute values ---------------------------------------------------------------------------
def json_attrs(items: Any) -> dict[str, Any]:
    if not items:
        return {}
    if not isinstance(items, list):
        raise RecordError("attributes is not a list of {key, value}")
    out: dict[str, Any] = {}
    for item in items:
        key = item["key"]
        if not isinstance(key, str):
            raise RecordError(f"attribute key {key!r} is not a string")
        value = item.get("value")
        if value.__class__ is dict:
            text = value.get("stringValue")
            if text.__class__ is str:  # most attributes are strings: skip the dispatch
                out[key] = text
                continue
        out[key] = json_value(value)
    return out


def json_value(value: Any) -> Any:
    if not value:
        return None
    if not isinstance(value, dict):
        raise RecordError(f"attribute value {str(value)[:40]!r} is not an AnyValue object")
    if "stringValue" in value:
        v = value["stringValue"]
        return v if isinstance(v, str) else str(v)
    if "intValue" in value:
        try:
            return int(value["intValue"])
        except (TypeError, ValueError):
            raise RecordError(
                f"intValue {str(value['intValue'])[:40]!r} is not an integer"
            ) from None
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return [json_value(v) for v in (value["arrayValue"] or {}).get("values") or ()]
    if "kvlistValue" in value:
        return json_attrs((value["kvlistValue"] or {}).get("values"))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def proto_attrs(items: Iterable[Any]) -> dict[str, Any]:
    return {kv.key: proto_value(kv.value) for kv in items}


def proto_value(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "string_value":
        return value.string_value
    if which == "array_value":
        return [proto_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return proto_attrs(value.kvlist_value.values)
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, which)
