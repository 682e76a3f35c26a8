"""The config's one declaration: what the parser, docs/config.md and the example read from it,
bounds on every number (generated from the declaration, so a new key is tested too), and
that no TOML value tree makes the parser raise anything but ConfigError."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warehouse.config import Config, key_paths, load_file, parse
from warehouse.config_docs import BLOCK, TOP, render, sections, update
from warehouse.config_fields import (
    Choice,
    Integer,
    Kind,
    Number,
    Place,
    Rules,
    Section,
    Sections,
    Spec,
    Strings,
    Text,
    UrlTemplate,
    read_section,
    setting,
    specs,
)
from warehouse.config_fields import key_paths as key_paths_of
from warehouse.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "config.md"


def declared() -> list[tuple[str, Spec]]:
    """(key path, declaration) for every key, e.g. ("environments[].slo.availability", ...)."""
    found = []
    for path, cls in sections().items():
        prefix = f"{path}." if path else ""
        found += [(f"{prefix}{f.name}", spec) for f, spec in specs(cls)]
    return found


# -- one declaration, read by everyone ----------------------------------------------------------
def test_every_attribute_of_a_section_is_a_declared_key() -> None:
    """A field added without `setting()` would be neither parsed nor documented."""
    for path, cls in sections().items():
        undeclared = {f.name for f in dataclasses.fields(cls)} - {f.name for f, _ in specs(cls)}
        assert undeclared == ({"origin"} if path == "" else set()), (path, undeclared)
    assert key_paths() == [p for p, _ in declared()]
    assert len(key_paths()) == len(set(key_paths())) >= 36


def test_every_key_has_a_doc_line_and_a_default_that_passes_its_own_bounds() -> None:
    for path, spec in declared():
        assert spec.doc.strip() and "|" not in spec.doc, path
    defaults = parse({}, "defaults")
    assert defaults == dataclasses.replace(Config(), origin="defaults")
    assert Config.from_json(Config().to_json(), "x").to_json() == Config().to_json()


def test_the_docs_tables_are_exactly_the_rendered_declaration() -> None:
    doc = DOC.read_text(encoding="utf-8")
    blocks = [m["path"] for m in BLOCK.finditer(doc)]
    assert sorted(blocks) == sorted(p or TOP for p in sections()), "one block per section"
    assert update(doc) == doc, "run: python -m warehouse.config_docs docs/config.md"
    # the hand-written prose around the tables is kept by a rewrite
    assert "#### Resolver rules: `environments[].match`" in update(doc)


def test_the_doc_renderer_adds_a_new_section_and_drops_a_gone_one() -> None:
    doc = DOC.read_text(encoding="utf-8")
    without = doc.replace("<!-- keys dashboard -->", "<!-- keys dashbord -->")
    rewritten = update(without)
    assert "dashbord" not in rewritten
    assert rewritten.count("<!-- keys dashboard -->") == 1
    assert rewritten.endswith(
        "| `dashboard.default_days` | integer, 1 to 3660 | `30` | how "
        "many days of data the pages show until you pick a range |\n"
        "<!-- /keys -->\n"
    )


# -- bounds on every number, generated from the declaration --------------------------------------
# Required keys that "x" does not fit, with values that pass alongside any other key's
# bounds (a price at its highest, so a residual value at its highest is not above it), and
# the kind a pool's cost model needs.
STAND_INS: dict[str, Any] = {
    "environments[].kind": "onprem",
    "environments[].gpu_pools[].cost.servers": 1,
    "environments[].gpu_pools[].cost.gpus_per_server": 1,
    "environments[].gpu_pools[].cost.purchase_date": "2026-01-01",
    "environments[].gpu_pools[].cost.price_per_server": 1e8,
    "environments[].gpu_pools[].cost.amortization_years": 1,
    "environments[].gpu_pools[].cost.power_prices[].month": "2026-01",
    "billing.rates[].currency": "EUR",
    "billing.rates[].since": "2026-01-01",
    "billing.budgets[].amount": 1000,
}


def place(path: str, value: Any) -> dict[str, Any]:
    """A minimal config that sets `path` to `value`, its sections' required keys filled in."""
    parts = path.split(".")
    root: dict[str, Any] = {}
    table, prefix = root, ""
    for part in parts[:-1]:
        name = part.removesuffix("[]")
        prefix = f"{prefix}{part}"
        inner = {
            f.name: STAND_INS.get(f"{prefix}.{f.name}", "x")
            for f, s in specs(sections()[prefix])
            if s.required or f"{prefix}.{f.name}" in STAND_INS
        }
        table[name] = [inner] if part.endswith("[]") else inner
        table, prefix = inner, f"{prefix}."
    table[parts[-1]] = value
    return root


def at(path: str) -> str:
    return path.replace("[]", "[0]")


NUMBERS = [(p, s.kind) for p, s in declared() if isinstance(s.kind, Integer | Number)]


def test_every_number_is_bounded() -> None:
    assert {p for p, _ in NUMBERS} >= {
        "dashboard.default_days",
        "environments[].slo.latency_p95_ms",
        "environments[].gpu_pools[].count",
        "ingest.max_attribute_bytes",
        "ingest.max_clock_skew_hours",
        "ingest.settle_minutes",
        "ingest.max_span_bytes",
    }
    for path, kind in NUMBERS:
        assert isinstance(kind, Integer | Number)
        assert math.isfinite(kind.high) and kind.high < 10**9, path


def rejected(raw: dict[str, Any], path: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse(raw, "c.toml")
    message = str(info.value)
    assert message.startswith(f"c.toml: {at(path)}: "), message
    return message


@pytest.mark.parametrize("path", [p for p, _ in NUMBERS])
def test_a_number_past_its_bounds_is_refused_and_its_bounds_accepted(path: str) -> None:
    kind = dict(NUMBERS)[path]
    assert isinstance(kind, Integer | Number)
    high = kind.high
    too_big = re.compile(r"must be (at most \S+|a fraction in \(0, 1\]), got ")
    assert too_big.search(rejected(place(path, high + 1), path))
    assert too_big.search(rejected(place(path, 10**400), path))  # not an OverflowError
    parse(place(path, high), "c.toml")
    if isinstance(kind, Integer):
        parse(place(path, kind.low), "c.toml")
        rejected(place(path, kind.low - 1), path)
        assert "expected int" in rejected(place(path, float(kind.low)), path)
    else:
        if kind.low_open:
            rejected(place(path, kind.low), path)
        else:  # a closed bound: the bound itself passes, just below it does not
            parse(place(path, kind.low), "c.toml")
            rejected(place(path, kind.low - high / 1e6), path)
        parse(place(path, kind.low + high / 1e6), "c.toml")
        for bad in (math.nan, math.inf, -math.inf):
            assert "must be a finite number" in rejected(place(path, bad), path)
    assert "expected" in rejected(place(path, True), path)


def test_default_days_of_999999_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.toml"
    path.write_text("[dashboard]\ndefault_days = 999999\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_file(path)
    assert str(info.value) == (f"{path}: dashboard.default_days: must be at most 3660, got 999999")
    path.write_text("[environments.slo]\n", encoding="utf-8")  # a table where a list goes
    with pytest.raises(ConfigError, match=r"environments: expected list"):
        load_file(path)
    path.write_text('[[environments]]\nname = "e"\nslo = { latency_p95_ms = nan }\n', "utf-8")
    with pytest.raises(ConfigError, match=r"slo\.latency_p95_ms: must be a finite number"):
        load_file(path)


# -- the trace link goes into an href on every page -----------------------------------------------
@pytest.mark.parametrize(
    ("link", "why"),
    [
        ("javascript:alert(1)//{trace_id}", "must be an http:// or https:// URL"),
        ("data:text/html,<b>{trace_id}</b>", "must not contain '<'"),
        ("data:text/html;base64,PHNjcmlwdD4={trace_id}", "must be an http:// or https:// URL"),
        ("JavaScript://%0aalert(1)/{trace_id}", "must be an http:// or https:// URL"),
        ("ftp://host/{trace_id}", "must be an http:// or https:// URL"),
        ("//jaeger/trace/{trace_id}", "must be an http:// or https:// URL"),
        ("http:///trace/{trace_id}", "must be an http:// or https:// URL"),
        ('http://j/t/{trace_id}" onmouseover="alert(1)', "must not contain '\"'"),
        ("http://j/t/{trace_id}\nx", "must not contain '\\n'"),
        ("http://j/trace/", "must contain {trace_id}"),
        ("http://[::1/{trace_id}", "must be an http:// or https:// URL"),
    ],
)
def test_a_trace_link_must_be_an_http_url_with_the_trace_id(link: str, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse({"dashboard": {"trace_link": link}}, "c.toml")
    assert str(info.value).startswith("c.toml: dashboard.trace_link"), str(info.value)
    assert why in str(info.value)


@pytest.mark.parametrize(
    "link",
    [
        "",
        "http://localhost:16686/trace/{trace_id}",
        "HTTPS://grafana.example/explore?traceId={trace_id}&orgId=1",
        "https://tempo.example:3200/api/traces/{trace_id}#span",
    ],
)
def test_an_http_trace_link_is_kept(link: str) -> None:
    assert parse({"dashboard": {"trace_link": link}}, "c").dashboard.trace_link == link


def test_a_resolver_rule_value_must_be_a_scalar() -> None:
    raw = {"environments": [{"name": "e", "match": [{"k8s.cluster.name": {"x": 1}}]}]}
    with pytest.raises(ConfigError, match=r"environments\[0\]\.match\[0\]: the value of "):
        parse(raw, "c")
    raw["environments"][0]["match"] = [{"port": 8080, "tls": True}]
    assert parse(raw, "c").environments[0].match == ((("port", "8080"), ("tls", "True")),)


# -- no value tree raises anything but ConfigError -------------------------------------------------
SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.text(max_size=12),
    st.datetimes(),
    st.dates(),
    st.times(),
)
NAMES = st.one_of(
    st.sampled_from(sorted({p.rsplit(".", 1)[-1].removesuffix("[]") for p in key_paths()})),
    st.text(max_size=8),
)
TREES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=4),
    max_leaves=12,
)


def values_for(kind: Kind, wild: bool) -> st.SearchStrategy[Any]:
    """Values near what `kind` accepts (its edges included); `wild`: now and then anything."""
    near: st.SearchStrategy[Any]
    if isinstance(kind, Integer):
        edges: list[float] = [kind.low - 1, kind.low, kind.high, kind.high + 1]
        near = st.integers(kind.low, kind.high) | st.sampled_from(edges)
    elif isinstance(kind, Number):
        edges = [kind.low, kind.high, kind.high * 1.5, math.nan, math.inf]
        near = st.floats(kind.low, kind.high) | st.sampled_from(edges)
    elif isinstance(kind, Choice):
        near = st.sampled_from(kind.values) | st.text(max_size=6)
    elif isinstance(kind, Strings):
        near = st.lists(st.text(max_size=6), max_size=3)
    elif isinstance(kind, UrlTemplate):
        near = st.sampled_from(["", "http://h/{trace_id}", "javascript:{trace_id}", "http://h/"])
    elif isinstance(kind, Rules):
        value = st.text(max_size=4) | st.integers() | st.booleans()
        near = st.lists(st.dictionaries(st.text(max_size=6), value, max_size=2), max_size=2)
    elif isinstance(kind, Section):
        near = tables(kind.cls, wild)
    elif isinstance(kind, Sections):
        near = st.lists(tables(kind.cls, wild), max_size=2)
    else:
        assert isinstance(kind, Text)
        near = st.text(max_size=8)
    return st.one_of(*[near] * 7, TREES) if wild else near  # wild: one in eight is anything


def tables(cls: type, wild: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Tables of `cls`'s keys, its required ones set; `wild`: sometimes with a stray key."""
    names = {f.name: st.text(min_size=1, max_size=8) for f, s in specs(cls) if s.required}
    keys = {f.name: later(s.kind, wild) for f, s in specs(cls) if f.name not in names}
    declared_part = st.fixed_dictionaries(names, optional=keys)
    if not wild:
        return declared_part
    stray = st.dictionaries(NAMES, TREES, max_size=1)
    return st.one_of(declared_part, declared_part, st.builds(merged, declared_part, stray))


def later(kind: Kind, wild: bool) -> st.SearchStrategy[Any]:
    """Deferred, so a section's strategy can hold its own nested sections'."""
    return st.deferred(lambda: values_for(kind, wild))


def merged(declared: dict[str, Any], stray: dict[str, Any]) -> dict[str, Any]:
    return {**declared, **stray}


def a_config_or_a_config_error(raw: Any) -> Config | None:
    try:
        config = parse(raw, "h.toml")
    except ConfigError as exc:
        assert str(exc).startswith("h.toml: ")
        return None
    body = config.to_json()
    json.loads(body, parse_constant=lambda c: pytest.fail(f"{c} in the stored JSON"))
    assert Config.from_json(body, "h.toml") == config
    return config


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(*[tables(Config, True)] * 6, st.dictionaries(NAMES, TREES, max_size=4), TREES))
def test_any_value_tree_is_a_config_or_a_config_error(raw: Any) -> None:
    a_config_or_a_config_error(raw)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(Config, False))
def test_a_config_near_the_declaration_parses_or_names_its_key(raw: Any) -> None:
    """Values at and just past each bound: deep into every section, where the wild trees
    above seldom reach; a config that parses survives the warehouse's JSON round trip."""
    a_config_or_a_config_error(raw)


def test_a_value_nested_past_what_repr_can_show_is_still_a_config_error() -> None:
    deep: Any = {}
    for _ in range(100_000):
        deep = {"a": deep}
    with pytest.raises(ConfigError, match=r"c: environments: expected list, got <a dict too"):
        parse({"environments": deep}, "c")
    with pytest.raises(ConfigError, match=r"dashboard\.trace_link: expected str"):
        parse({"dashboard": {"trace_link": [deep]}}, "c")


# -- a new section is one dataclass: the vocabulary is not tied to today's sections ---------------
def _positive_budget(budget: Budget) -> str | None:
    return "warn_at must not exceed amount" if budget.warn_at > budget.amount else None


@dataclasses.dataclass(frozen=True)
class Budget:
    CHECKS: ClassVar[tuple[Callable[[Budget], str | None], ...]] = (_positive_budget,)

    name: str = setting(Text(), "the budget's name", required=True)
    currency: str = setting(
        Text(pattern="[A-Z]{3}", means="a 3-letter ISO 4217 code"), "the currency", "USD"
    )
    amount: float = setting(Number(0, 1e12), "the amount per month", 1.0)
    warn_at: float = setting(Number(0, 1e12), "warn when spend passes this", 1.0)


@dataclasses.dataclass(frozen=True)
class Finance:
    budgets: tuple[Budget, ...] = setting(Sections(Budget, unique="name"), "budgets", ())


def test_a_section_declared_elsewhere_is_parsed_checked_and_rendered() -> None:
    def read(raw: Any) -> Finance:
        return read_section(Finance, raw, Place("f.toml"))

    budgets = read(
        {"budgets": [{"name": "gpu", "currency": "EUR", "amount": 5000, "warn_at": 4000}]}
    )
    assert budgets == Finance((Budget("gpu", "EUR", 5000.0, 4000.0),))
    with pytest.raises(
        ConfigError, match=r"^f\.toml: budgets\[0\]\.currency: must be a 3-letter ISO"
    ):
        read({"budgets": [{"name": "gpu", "currency": "euro"}]})
    with pytest.raises(
        ConfigError, match=r"^f\.toml: budgets\[0\]: warn_at must not exceed amount"
    ):
        read({"budgets": [{"name": "gpu", "amount": 10, "warn_at": 20}]})
    with pytest.raises(ConfigError, match=r"^f\.toml: budgets: 'a' is defined twice"):
        read({"budgets": [{"name": "a"}, {"name": "a"}]})
    assert key_paths_of(Finance) == [
        "budgets",
        "budgets[].name",
        "budgets[].currency",
        "budgets[].amount",
        "budgets[].warn_at",
    ]
    assert "| `finance.budgets[].currency` | string: a 3-letter ISO 4217 code | `USD` |" in render(
        Budget, "finance.budgets[]."
    )
