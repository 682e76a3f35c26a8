"""The parts of the config that decide how a span is mapped, and the decisions they make.

A Mapping is built once from the config (`Mapping.from_config`) and shared by every
Batch of a load or of a running receiver, so it is frozen and cheap to pass to worker
processes. It decides a resource's environment (the config's rules, then
`deployment.environment.name`, then `deployment.environment`, then `unknown`), what the
deny list drops or redacts, the caps on one value and on one span, and how far in the
future a record may be dated. "Now" is injectable (`now_ns`) so tests are deterministic;
a long-running receiver leaves it unset and reads the clock per request.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from ingest.errors import RecordError
from ingest.otlp.fields import iso, short
from warehouse.config import Config

NS_PER_HOUR = 3600 * 10**9
# Attributes that become span columns; everything else stays in the `attributes` JSON.
MAPPED = frozenset(
    {
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.system",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.prompt_tokens",
        "gen_ai.usage.completion_tokens",
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.server.time_to_first_token",
        "gen_ai.response.time_to_first_chunk",
    }
)
# What `Mapping.key_kind` says of an attribute key
COLUMN, DENIED, KEPT, KEPT_CUT = 0, 1, 2, 3  # KEPT_CUT: kept, its key cut to 256 chars
_KEY_CACHE_MAX = 65_536  # distinct keys remembered; a hostile sender's stream of fresh keys


@dataclass(frozen=True)
class ResourceContext:
    """What every span of one resource shares, decided once per resource."""

    service: str
    version: str | None
    environment: str
    host: str | None
    json: str
    model_attribute: str | None
    weight: float | None


@dataclass(frozen=True)
class Mapping:
    """The parts of the config that decide how a span is mapped."""

    rules: tuple[tuple[str, tuple[tuple[tuple[str, str], ...], ...]], ...] = ()
    sampling: tuple[tuple[str, float], ...] = ()
    model_attributes: tuple[tuple[str, str], ...] = ()
    deny_exact: frozenset[str] = frozenset()
    deny_prefixes: tuple[str, ...] = ()
    redact: bool = False
    max_bytes: int = 4096
    max_span_bytes: int = 1_048_576
    max_clock_skew_hours: float = 24.0
    now_ns: int | None = None  # the time of ingest; None reads the clock at each add
    # key -> COLUMN/DENIED/KEPT/KEPT_CUT: the same few keys recur on every span
    key_kinds: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_config(cls, config: Config, *, now_ns: int | None = None) -> Mapping:
        ing = config.ingest
        exact = frozenset(p for p in ing.deny_attributes if not p.endswith("*"))
        prefixes = tuple(p[:-1] for p in ing.deny_attributes if p.endswith("*"))
        return cls(
            rules=tuple((e.name, e.match) for e in config.environments if e.match),
            sampling=tuple(
                (e.name, e.sampling_ratio) for e in config.environments if e.sampling_ratio
            ),
            model_attributes=tuple(sorted(config.model_attributes().items())),
            deny_exact=exact,
            deny_prefixes=prefixes,
            redact=ing.redaction == "redact",
            max_bytes=ing.max_attribute_bytes,
            max_span_bytes=ing.max_span_bytes,
            max_clock_skew_hours=ing.max_clock_skew_hours,
            now_ns=now_ns,
        )

    # -- decisions ------------------------------------------------------------------------
    def environment(self, resource: dict[str, Any]) -> str:
        for name, rules in self.rules:
            if any(all(str(resource.get(k)) == v for k, v in rule) for rule in rules):
                return name
        for key in ("deployment.environment.name", "deployment.environment"):
            value = resource.get(key)
            if isinstance(value, str) and value:
                return value[:200]
        return "unknown"

    def denied(self, key: str) -> bool:
        return key in self.deny_exact or (
            bool(self.deny_prefixes) and key.startswith(self.deny_prefixes)
        )

    def key_kind(self, key: str) -> int:
        """COLUMN, DENIED, KEPT or KEPT_CUT for an attribute key, remembered for the next span."""
        kind = self.key_kinds.get(key)
        if kind is None:
            if key in MAPPED:
                kind = COLUMN
            elif self.denied(key):
                kind = DENIED
            else:
                kind = KEPT if len(key) <= 256 else KEPT_CUT
            if len(self.key_kinds) < _KEY_CACHE_MAX:
                self.key_kinds[key] = kind
        return kind

    def ingest_time_ns(self) -> int:
        return self.now_ns if self.now_ns is not None else time.time_ns()

    def latest_ns(self) -> int:
        """The latest time a record may carry: the time of ingest plus the clock skew allowed."""
        return self.ingest_time_ns() + round(self.max_clock_skew_hours * NS_PER_HOUR)

    def future_error(self, what: str, t: int) -> RecordError:
        """The sentence for a record dated too far past the time of ingest."""
        now = self.ingest_time_ns()
        return RecordError(
            f"{what} {iso(t)} is {(t - now) / NS_PER_HOUR:.1f} h past the time of ingest "
            f"({iso(now)}); the limit is ingest.max_clock_skew_hours = "
            f"{self.max_clock_skew_hours:g}"
        )

    def span_size_error(self, size: int) -> RecordError:
        return RecordError(
            f"span is {size} bytes of attributes, events and links ({size / 2**20:.1f} MiB); "
            f"the limit is ingest.max_span_bytes = {self.max_span_bytes}"
        )

    def resource_context(self, resource: dict[str, Any]) -> ResourceContext:
        service = short(resource.get("service.name")) or "unknown_service"
        env = self.environment(resource)
        weight = dict(self.sampling).get(env)
        return ResourceContext(
            service=service,
            version=short(resource.get("service.version")),
            environment=env,
            host=short(resource.get("host.name")),
            json=orjson.dumps(self.clean(resource), option=orjson.OPT_SORT_KEYS).decode(),
            model_attribute=dict(self.model_attributes).get(service),
            weight=1.0 / weight if weight else None,
        )

    def clean(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Apply the deny list and the size cap to one attribute map."""
        out: dict[str, Any] = {}
        limit = self.max_bytes
        exact, prefixes = self.deny_exact, self.deny_prefixes
        for key, value in attrs.items():
            if key in exact or (prefixes and key.startswith(prefixes)):
                if self.redact:
                    out[key] = "[redacted]"
                continue
            if value.__class__ is str:
                if len(value) > limit:
                    value = f"{value[:limit]}…[truncated {len(value) - limit} chars]"
            elif isinstance(value, list | dict):
                try:
                    text = orjson.dumps(value, default=str).decode()
                except TypeError as exc:  # nested deeper than orjson serializes
                    raise RecordError(f"attribute {key[:100]!r} cannot be stored: {exc}") from None
                if len(text) > limit:
                    value = f"{text[:limit]}…[truncated {len(text) - limit} chars]"
            elif isinstance(value, float) and not math.isfinite(value):
                value = str(value)
            out[key if len(key) <= 256 else key[:256]] = value
        return out
