"""The hybridlens config: environments, models and ingest policy.

It lives in `warehouse/` because every layer reads it and the warehouse stores the last
one given, so `hybridlens demo` followed by `hybridlens metrics` sees the same SLOs.
Resolution order: --config, HYBRIDLENS_CONFIG, ./hybridlens.toml, the stored config,
built-in defaults. Validation is strict: an unknown key or a bad value names the key and
the file, because a typo in an SLO must not silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warehouse.errors import ConfigError

KINDS = ("onprem", "cloud", "edge")
CLASSIFICATIONS = ("public", "internal", "confidential", "restricted")
DEFAULT_DENY = (
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.definitions",
    "gen_ai.prompt",
    "gen_ai.prompt.*",
    "gen_ai.completion",
    "gen_ai.completion.*",
    "llm.prompts*",
    "llm.completions*",
)


@dataclass(frozen=True)
class Slo:
    latency_p95_ms: float | None = None
    availability: float | None = None
    down_error_ratio: float = 0.05
    # A minute is judged on errors only with this many requests, and judged down for
    # silence only when the same minute of the week had at least this median traffic.
    uptime_min_requests: int = 5
    uptime_min_expected: float = 1.0


@dataclass(frozen=True)
class GpuPool:
    name: str
    gpu: str = ""
    count: int = 0


@dataclass(frozen=True)
class Environment:
    name: str
    kind: str = "cloud"
    provider: str = ""
    region: str = ""
    residency: str = ""
    gpu_pools: tuple[GpuPool, ...] = ()
    slo: Slo = field(default_factory=Slo)
    sampling_ratio: float | None = None
    match: tuple[tuple[tuple[str, str], ...], ...] = ()

    def matches(self, resource: dict[str, Any]) -> bool:
        """True when any rule has all its attribute values equal to the resource's."""
        return any(all(str(resource.get(k)) == v for k, v in rule) for rule in self.match)


@dataclass(frozen=True)
class Model:
    name: str
    classification: str = "internal"
    residency: tuple[str, ...] = ()
    accuracy_floor: float | None = None
    evaluation: str = "accuracy"
    service: str | None = None
    model_attribute: str | None = None


@dataclass(frozen=True)
class IngestPolicy:
    deny_attributes: tuple[str, ...] = DEFAULT_DENY
    redaction: str = "drop"  # drop | redact
    max_attribute_bytes: int = 4096
    # Records dated further than this past the time of ingest are quarantined: one span
    # from 2028 must not move every environment's figures.
    max_clock_skew_hours: float = 24.0
    # A compressed file that ends mid-frame is still being written while it was modified
    # less than this long ago; after that its cut tail is reported as truncated.
    settle_minutes: float = 10.0
    # One span (its attributes, events and links together) larger than this is quarantined.
    max_span_bytes: int = 1_048_576


@dataclass(frozen=True)
class DashboardSettings:
    trace_link: str = ""
    default_days: int = 30


@dataclass(frozen=True)
class Config:
    environments: tuple[Environment, ...] = ()
    models: tuple[Model, ...] = ()
    ingest: IngestPolicy = field(default_factory=IngestPolicy)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    origin: str = "built-in defaults"

    def environment(self, name: str) -> Environment | None:
        return next((e for e in self.environments if e.name == name), None)

    def model(self, name: str) -> Model | None:
        return next((m for m in self.models if m.name == name), None)

    def model_attributes(self) -> dict[str, str]:
        """service name -> the attribute that names its model (non-GenAI services)."""
        return {
            m.service: m.model_attribute for m in self.models if m.service and m.model_attribute
        }

    def to_json(self) -> str:
        body = dataclasses.asdict(self)
        body.pop("origin")
        return json.dumps(_drop_none(body), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, origin: str) -> Config:
        return parse(json.loads(text), origin, stored=True)


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_drop_none(v) for v in value]
    return value


# -- parsing -------------------------------------------------------------------------------
class _Reader:
    """Takes keys out of one table and complains, with the file name, about the rest."""

    def __init__(self, table: Any, where: str, origin: str) -> None:
        if not isinstance(table, dict):
            raise ConfigError(f"{origin}: {where} must be a table, not {type(table).__name__}")
        self.table = dict(table)
        self.where = where
        self.origin = origin

    def _bad(self, key: str, why: str) -> ConfigError:
        return ConfigError(f"{self.origin}: {self.where}{key}: {why}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        if key not in self.table:
            return default
        value = self.table.pop(key)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            names = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            raise self._bad(key, f"expected {names}, got {value!r}")
        return value

    def ratio(self, key: str, default: float | None) -> float | None:
        value = self.get(key, float, default)
        if value is not None and not 0 < value <= 1:
            raise self._bad(key, f"must be a fraction in (0, 1], got {value!r}")
        return value

    def positive(self, key: str, kind: type, default: Any) -> Any:
        value = self.get(key, kind, default)
        if value is not None and value <= 0:
            raise self._bad(key, f"must be positive, got {value!r}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.get(key, str, default)
        if value not in choices:
            raise self._bad(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def strings(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.get(key, list, None)
        if value is None:
            return default
        if not all(isinstance(v, str) for v in value):
            raise self._bad(key, f"must be a list of strings, got {value!r}")
        return tuple(value)

    def done(self) -> None:
        if self.table:
            key = sorted(self.table)[0]
            raise self._bad(key, "unknown key (see docs/config.md for the accepted keys)")


def parse(raw: dict[str, Any], origin: str, *, stored: bool = False) -> Config:
    top = _Reader(raw, "", origin)
    envs: list[Environment] = []
    for i, env_raw in enumerate(top.get("environments", list, [])):
        r = _Reader(env_raw, f"environments[{i}].", origin)
        name = r.get("name", str)
        if not name:
            raise ConfigError(f"{origin}: environments[{i}].name is required")
        slo_r = _Reader(r.get("slo", dict, {}), f"environments[{i}].slo.", origin)
        slo = Slo(
            latency_p95_ms=slo_r.positive("latency_p95_ms", float, None),
            availability=slo_r.ratio("availability", None),
            down_error_ratio=slo_r.ratio("down_error_ratio", 0.05) or 0.05,
            uptime_min_requests=slo_r.positive("uptime_min_requests", int, 5),
            uptime_min_expected=slo_r.positive("uptime_min_expected", float, 1.0),
        )
        slo_r.done()
        pools = []
        for j, pool_raw in enumerate(r.get("gpu_pools", list, [])):
            p = _Reader(pool_raw, f"environments[{i}].gpu_pools[{j}].", origin)
            count = p.get("count", int, 0)  # 0: not stated
            if count < 0:
                raise p._bad("count", f"must be 0 or more, got {count!r}")
            pools.append(
                GpuPool(
                    name=p.get("name", str, f"pool-{j}"), gpu=p.get("gpu", str, ""), count=count
                )
            )
            p.done()
        rules = []
        for j, rule in enumerate(r.get("match", list, [])):
            if stored and isinstance(rule, list):
                rule = dict(rule)
            if not isinstance(rule, dict) or not rule:
                raise ConfigError(
                    f"{origin}: environments[{i}].match[{j}] must be a non-empty table of "
                    "resource attribute = value"
                )
            rules.append(tuple(sorted((str(k), str(v)) for k, v in rule.items())))
        envs.append(
            Environment(
                name=name,
                kind=r.choice("kind", KINDS, "cloud"),
                provider=r.get("provider", str, ""),
                region=r.get("region", str, ""),
                residency=r.get("residency", str, ""),
                gpu_pools=tuple(pools),
                slo=slo,
                sampling_ratio=r.ratio("sampling_ratio", None),
                match=tuple(rules),
            )
        )
        r.done()
    _unique([e.name for e in envs], "environments", origin)

    models: list[Model] = []
    for i, model_raw in enumerate(top.get("models", list, [])):
        r = _Reader(model_raw, f"models[{i}].", origin)
        name = r.get("name", str)
        if not name:
            raise ConfigError(f"{origin}: models[{i}].name is required")
        model = Model(
            name=name,
            classification=r.choice("classification", CLASSIFICATIONS, "internal"),
            residency=r.strings("residency"),
            accuracy_floor=r.ratio("accuracy_floor", None),
            evaluation=r.get("evaluation", str, "accuracy"),
            service=r.get("service", str, None),
            model_attribute=r.get("model_attribute", str, None),
        )
        if bool(model.service) != bool(model.model_attribute):
            raise ConfigError(
                f"{origin}: models[{i}]: service and model_attribute go together (the attribute "
                "that names the model on that service's spans)"
            )
        models.append(model)
        r.done()
    _unique([m.name for m in models], "models", origin)

    ing = _Reader(top.get("ingest", dict, {}), "ingest.", origin)
    policy = IngestPolicy(
        deny_attributes=ing.strings("deny_attributes", DEFAULT_DENY),
        redaction=ing.choice("redaction", ("drop", "redact"), "drop"),
        max_attribute_bytes=ing.positive("max_attribute_bytes", int, 4096),
        max_clock_skew_hours=ing.positive("max_clock_skew_hours", float, 24.0),
        settle_minutes=ing.positive("settle_minutes", float, 10.0),
        max_span_bytes=ing.positive("max_span_bytes", int, 1_048_576),
    )
    ing.done()
    dash = _Reader(top.get("dashboard", dict, {}), "dashboard.", origin)
    dashboard = DashboardSettings(
        trace_link=dash.get("trace_link", str, ""),
        default_days=dash.positive("default_days", int, 30),
    )
    if dashboard.trace_link and "{trace_id}" not in dashboard.trace_link:
        raise ConfigError(f"{origin}: dashboard.trace_link must contain {{trace_id}}")
    dash.done()
    top.done()
    return Config(tuple(envs), tuple(models), policy, dashboard, origin)


def _unique(names: list[str], what: str, origin: str) -> None:
    seen = set()
    for n in names:
        if n in seen:
            raise ConfigError(f"{origin}: {what}: {n!r} is defined twice")
        seen.add(n)


def load_file(path: Path) -> Config:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(
            f"config file {path} is a folder: give the path of a .toml file"
        ) from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per nesting level
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    return parse(raw, str(path))


def find_file(explicit: Path | str | None) -> Path | None:
    """The config file that applies, or None when the stored config or defaults apply."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("HYBRIDLENS_CONFIG")
    if env:
        return Path(env)
    local = Path("hybridlens.toml")
    return local if local.exists() else None


def resolve(explicit: Path | str | None, warehouse: Any = None) -> tuple[Config, bool]:
    """The config that applies and whether it came from a file (so a load should store it).

    Order: --config, HYBRIDLENS_CONFIG, ./hybridlens.toml, the config stored in
    `warehouse`, built-in defaults.
    """
    path = find_file(explicit)
    if path is not None:
        return load_file(path), True
    if warehouse is not None:
        from warehouse.load import stored_config

        stored = stored_config(warehouse)
        if stored:
            origin, body = stored
            return Config.from_json(body, f"{origin} (stored in {warehouse.path})"), False
    return Config(), False
