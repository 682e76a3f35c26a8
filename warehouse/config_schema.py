"""The config's sections and keys, each declared once.

Each dataclass is a section and each `setting(...)` field a key: its kind and bounds, its
default and the doc line docs/config.md shows. The parser (`config_fields.read_section`),
the docs' key tables (`config_docs`) and the meta tests all read these declarations, so a
new key is one field here and a new section one dataclass plus one field of `Config`.

Bounds are on every number because a stored value is read by every page: a
`default_days` of 999999 once passed validation and made each page a traceback.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from warehouse.config_attribution import Allocation, Attribution
from warehouse.config_billing import BillingSettings
from warehouse.config_cost import CostModel, cost_fits_count, cost_only_where_owned
from warehouse.config_fields import (
    Choice,
    Fraction,
    Integer,
    Number,
    Place,
    Rules,
    Section,
    Sections,
    Strings,
    Text,
    UrlTemplate,
    read_section,
    setting,
)
from warehouse.config_gpu import GpuSettings, Sources
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
DAY_MS = 86_400_000
MANY = 1_000_000  # a bound on counts: far above any real fleet or per-minute traffic
MIB = 1_048_576


@dataclass(frozen=True)
class Slo:
    latency_p95_ms: float | None = setting(
        Number(0, DAY_MS), "p95 latency target in ms (at most a day); met when p95 ≤ target", None
    )
    availability: float | None = setting(
        Fraction(),
        "availability target (good / all requests); met when availability ≥ target; the error "
        "budget is 1 − target over a rolling 30 days. Pages draw uptime against it for reference",
        None,
    )
    down_error_ratio: float = setting(
        Fraction(),
        "a minute with at least `uptime_min_requests` requests is down when its error ratio is "
        "above this",
        0.05,
    )
    # A minute is judged on errors only with this many requests, and judged down for
    # silence only when the same minute of the week had at least this median traffic.
    uptime_min_requests: int = setting(
        Integer(1, MANY),
        "fewer (weighted) requests than this in a minute: too few to judge it on errors",
        5,
    )
    uptime_min_expected: float = setting(
        Number(0, MANY),
        "a minute with no requests is down when the median of the same minute of the week over "
        'the 4 weeks before is at least this; otherwise it is "no data"',
        1.0,
    )


@dataclass(frozen=True)
class GpuPool:
    CHECKS: ClassVar[tuple[Callable[[GpuPool], str | None], ...]] = (cost_fits_count,)

    name: str = setting(
        Text(), "the pool's name", indexed_default="pool-{index}", default_doc="`pool-N`"
    )
    gpu: str = setting(Text(), "the GPU model (`H100-80GB`, `L4`, …)", "")
    count: int = setting(Integer(0, MANY), "how many GPUs", 0, default_doc="`0` (not stated)")
    hosts: tuple[str, ...] = setting(
        Strings(),
        "globs on host names: GPU samples from a matching host belong to this pool and its "
        "environment",
        (),
    )
    cost: CostModel | None = setting(  # noqa: RUF009 (a frozen section, None by default)
        Section(CostModel), "the on-prem / edge cost model of its servers", None
    )


@dataclass(frozen=True)
class Environment:
    CHECKS: ClassVar[tuple[Callable[[Environment], str | None], ...]] = (cost_only_where_owned,)

    name: str = setting(
        Text(), "the name pages, `metrics` and the warehouse use; unique", required=True
    )
    kind: str = setting(Choice(KINDS), "what sort of place it is", "cloud")
    provider: str = setting(Text(), "`aws`, `azure`, `gcp`, `onprem`, … (shown on pages)", "")
    region: str = setting(Text(), "the provider's region or the site's name", "")
    residency: str = setting(
        Text(),
        "the data-residency zone it is in (`eu`, `us`, …), matched against models' `residency`",
        "",
    )
    gpu_pools: tuple[GpuPool, ...] = setting(
        Sections(GpuPool), "the GPU pools there, see below", ()
    )
    slo: Slo = setting(  # noqa: RUF009 (a field with a default_factory, not a shared default)
        Section(Slo), "service-level objectives and uptime rules", factory=Slo
    )
    sampling_ratio: float | None = setting(
        Fraction(),
        "the share of traces kept by a sampler that does not write `tracestate` `ot=th:`; every "
        "span of the environment then counts as 1 / ratio requests. Without it, a span's own "
        "`ot=th:` threshold is used (1 when absent)",
        None,
    )
    match: tuple[tuple[tuple[str, str], ...], ...] = setting(
        Rules(), "resolver rules, see below", ()
    )

    def matches(self, resource: dict[str, Any]) -> bool:
        """True when any rule has all its attribute values equal to the resource's."""
        return any(all(str(resource.get(k)) == v for k, v in rule) for rule in self.match)


def _service_with_attribute(model: Model) -> str | None:
    if bool(model.service) != bool(model.model_attribute):
        return (
            "service and model_attribute go together (the attribute that names the model on "
            "that service's spans)"
        )
    return None


@dataclass(frozen=True)
class Model:
    CHECKS: ClassVar[tuple[Callable[[Model], str | None], ...]] = (_service_with_attribute,)

    name: str = setting(
        Text(),
        "the model as spans name it (`gen_ai.request.model`, or the value of "
        "`model_attribute`); unique",
        required=True,
    )
    classification: str = setting(Choice(CLASSIFICATIONS), "how sensitive its data is", "internal")
    residency: tuple[str, ...] = setting(
        Strings(),
        "the residency zones its data may be in (environments' `residency`); empty: anywhere",
        (),
    )
    accuracy_floor: float | None = setting(
        Fraction(), "breached only when the whole 95% interval of accuracy lies below it", None
    )
    evaluation: str = setting(
        Text(),
        "the `gen_ai.evaluation.name` that counts as this model's accuracy; others are stored "
        "but not counted",
        "accuracy",
    )
    service: str | None = setting(
        Text(), "a service whose spans carry no `gen_ai.request.model` …", None
    )
    model_attribute: str | None = setting(
        Text(),
        "… and the span attribute that names the model on them (e.g. `ml.model.name`); the two "
        "go together",
        None,
    )


@dataclass(frozen=True)
class IngestPolicy:
    deny_attributes: tuple[str, ...] = setting(
        Strings(),
        "attribute keys never stored; a trailing `*` makes a prefix. Setting the list replaces "
        "the default, so keep its entries",
        DEFAULT_DENY,
        default_doc="prompts and completions: " + ", ".join(f"`{k}`" for k in DEFAULT_DENY),
    )
    redaction: str = setting(
        Choice(("drop", "redact")),
        "a denied attribute is left out, or kept with the value `[redacted]`",
        "drop",
    )
    max_attribute_bytes: int = setting(
        Integer(1, 16 * MIB),
        "longer values are cut to this many characters and marked `…[truncated N chars]`",
        4096,
    )
    # Records dated further than this past the time of ingest are quarantined: one span
    # from 2028 must not move every environment's figures.
    max_clock_skew_hours: float = setting(
        Number(0, 87_600),
        "records dated more than this past the time of ingest are quarantined, so one clock "
        "from the future cannot move anyone's figures (at most 10 years)",
        24.0,
    )
    # A compressed file that ends mid-frame is still being written while it was modified
    # less than this long ago; after that its cut tail is reported as truncated.
    settle_minutes: float = setting(
        Number(0, 10_080),
        "a compressed file that ends mid-frame and was modified less than this long ago is "
        "still being written (its tail stays pending); older, it is reported as truncated "
        "(at most a week)",
        10.0,
    )
    # One span (its attributes, events and links together) larger than this is quarantined.
    max_span_bytes: int = setting(
        Integer(1, 64 * MIB),
        "a span whose attributes, events and links together are larger than this is quarantined",
        MIB,
    )


@dataclass(frozen=True)
class DashboardSettings:
    trace_link: str = setting(
        UrlTemplate("{trace_id}"),
        "turns trace ids on pages into links to your tracing UI, e.g. "
        "`http://jaeger:16686/trace/{trace_id}`; only `http://` and `https://` links",
        "",
    )
    default_days: int = setting(
        Integer(1, 3660), "how many days of data the pages show until you pick a range", 30
    )


@dataclass(frozen=True)
class Config:
    environments: tuple[Environment, ...] = setting(
        Sections(Environment, unique="name"),
        "where models run, one `[[environments]]` table each; the first whose `match` rule "
        "fits a span wins",
        (),
    )
    models: tuple[Model, ...] = setting(
        Sections(Model, unique="name"),
        "the models, one `[[models]]` table each; a model found in the data but not listed is "
        "kept, with the defaults",
        (),
    )
    ingest: IngestPolicy = setting(  # noqa: RUF009 (a field with a default_factory)
        Section(IngestPolicy),
        "what trace ingest keeps of attributes, and the limits on what it accepts",
        factory=IngestPolicy,
    )
    dashboard: DashboardSettings = setting(  # noqa: RUF009 (a field with a default_factory)
        Section(DashboardSettings), "what the pages link to and show", factory=DashboardSettings
    )
    attribution: Attribution = setting(  # noqa: RUF009 (a field with a default_factory)
        Section(Attribution),
        "how each ledger row finds its environment, model and cost center",
        factory=Attribution,
    )
    allocation: Allocation = setting(  # noqa: RUF009 (a field with a default_factory)
        Section(Allocation),
        "how shared cost is split across models (warehouse/allocation.py)",
        factory=Allocation,
    )
    gpu: GpuSettings = setting(  # noqa: RUF009 (a field with a default_factory)
        Section(GpuSettings),
        "how GPU telemetry is judged and tied to workloads",
        factory=GpuSettings,
    )
    billing: BillingSettings = setting(  # noqa: RUF009 (a field with a default_factory)
        Section(BillingSettings),
        "how costs are reported: the reporting currency, rates into it, the billing lag",
        factory=BillingSettings,
    )
    sources: Sources = setting(  # noqa: RUF009 (a field with a default_factory)
        Section(Sources), "what the collectors pull when given nothing to read", factory=Sources
    )
    origin: str = "built-in defaults"  # where it came from, for messages: not a key

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
        try:
            raw = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ConfigError(f"{origin}: not valid JSON: {exc}") from None
        return parse(raw, origin, stored=True)


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_drop_none(v) for v in value]
    return value


def parse(raw: dict[str, Any], origin: str, *, stored: bool = False) -> Config:
    """A config from a TOML (or, `stored`, the warehouse's JSON) value tree: a Config, or a
    ConfigError naming `origin` and the key — never another exception."""
    return read_section(Config, raw, Place(origin, "", stored), extra={"origin": origin})
