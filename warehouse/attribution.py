"""Cost attribution: every ledger row's environment, model and cost center, and which rule
gave each (docs/billing.md "Attribution").

Computed when read, never stored: the rules live in the config, and a stored copy would go
stale with every config change or late delivery. `benchmarks/billing_attribution.py`
measures the cost: 3 to 4.5 s for 200,000 rows (60,000 resources, 20 resource rules) on
a loaded 2-core machine, a quarter of it the pattern matching, well inside the read limit.
Tags, inherited labels, GPU hosts and regions are matched in DuckDB
(`queries/billing_attribution.sql`); only the `[[attribution.resources]]` patterns are
matched here, once per distinct ResourceId, with the same `re` / `fnmatch` the config was
checked with, so a pattern that passed validation cannot fail a page. Every config value
reaches SQL as a bound parameter.

Nothing is dropped: a row no rule gives a dimension gets `unallocated` for it, and
`untagged` lists the biggest of those resources so they can be tagged.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from warehouse.config_attribution import ResourceRule, compile_pattern, glob_regex, is_glob
from warehouse.config_schema import Config
from warehouse.db import read_sql, run
from warehouse.session import Source, connection

if TYPE_CHECKING:  # polars is imported by the reads that return frames, not by the hooks
    import polars as pl

# The rules in precedence order (each dimension takes the first that gives it); the SQL
# reads this list as $hows, so the order is stated once.
HOWS = ("modelled", "tag", "inherited", "resource", "gpu-host", "region", "unallocated")
UNALLOCATED = "unallocated"
DIMENSIONS = ("environment", "model", "cost_center")
MATCHED_CHARS = 4096  # a resource id is matched on its first this many characters
PROVIDERS = {"aws": "aws", "gcp": "gcp", "google": "gcp", "azure": "azure", "microsoft": "azure"}
LO = datetime(1970, 1, 1, tzinfo=UTC)
HI = datetime(9999, 1, 1, tzinfo=UTC)


def tag_keys(keys: tuple[str, ...]) -> list[str]:
    """Configured keys as the SQL compares them: trimmed, lower case (the data's keys are
    normalized the same way, plus AWS's prefixes)."""
    return [k.strip().lower() for k in keys]


def region_rules(config: Config) -> list[dict[str, Any]]:
    """[[attribution.regions]] in order, then each environment whose (provider, region)
    no other environment shares: a region two environments claim decides nothing."""
    rules = [
        (
            PROVIDERS.get(r.provider.strip().lower(), r.provider.strip().lower()),
            r.region,
            r.environment,
        )
        for r in config.attribution.regions
    ]
    claimed: dict[tuple[str, str], list[str]] = {}
    for env in config.environments:
        if env.provider.strip() and env.region.strip():
            provider = env.provider.strip().lower()
            key = (PROVIDERS.get(provider, provider), env.region.strip().lower())
            claimed.setdefault(key, []).append(env.name)
    rules += [(p, r, names[0]) for (p, r), names in claimed.items() if len(names) == 1]
    return [
        {"ord": i, "provider": p, "region": r.strip().lower(), "environment": e}
        for i, (p, r, e) in enumerate(rules)
    ]


def _matchers(rules: tuple[ResourceRule, ...]) -> list[tuple[re.Pattern[str], list[ResourceRule]]]:
    """The rules as few regular expressions as keep their order: a run of globs becomes one
    alternation (all anchored at the start, so the first alternative that matches is the
    first rule, and `lastgroup` names it), a `re:` rule stays on its own, as it is searched."""
    blocks: list[tuple[re.Pattern[str], list[ResourceRule]]] = []
    run: list[ResourceRule] = []

    def close() -> None:
        if len(run) > 1:
            alternatives = "|".join(f"(?P<r{i}>{glob_regex(r.pattern)})" for i, r in enumerate(run))
            try:
                blocks.append((re.compile(rf"\A(?:{alternatives})", re.IGNORECASE), list(run)))
            except re.error:  # a future fnmatch that names its own groups: one by one
                blocks.extend((compile_pattern(r.pattern), [r]) for r in run)
        elif run:
            blocks.append((compile_pattern(run[0].pattern), list(run)))
        run.clear()

    for rule in rules:
        if is_glob(rule.pattern):
            run.append(rule)
        else:
            close()
            blocks.append((compile_pattern(rule.pattern), [rule]))
    close()
    return blocks


def resource_matches(resource_ids: list[str], config: Config) -> list[dict[str, Any]]:
    """ResourceId -> the values of the first [[attribution.resources]] rule matching it
    (ids no rule matches are left out)."""
    blocks = _matchers(config.attribution.resources)
    found = []
    for rid in resource_ids if blocks else []:
        text = rid[:MATCHED_CHARS]
        for pattern, rules in blocks:
            hit = pattern.search(text)
            if hit:
                rule = rules[0] if len(rules) == 1 else rules[int(str(hit.lastgroup)[1:])]
                found.append(
                    {
                        "resource_id": rid,
                        "environment": rule.environment,
                        "model": rule.model,
                        "cost_center": rule.cost_center,
                    }
                )
                break
    return found


def params_for(con: Any, config: Config, lo: datetime, hi: datetime) -> dict[str, Any]:
    """The parameters of billing_attribution.sql over [lo, hi) under `config`."""
    resources: list[dict[str, Any]] = []
    if config.attribution.resources:
        ids = run(
            con, "billing_resource_ids", read_sql("billing_resource_ids"), {"lo": lo, "hi": hi}
        )
        resources = resource_matches(ids["ResourceId"].to_list(), config)
    section = config.attribution
    return {
        "lo": lo,
        "hi": hi,
        "environment_keys": tag_keys(section.environment_keys),
        "model_keys": tag_keys(section.model_keys),
        "cost_center_keys": tag_keys(section.cost_center_keys),
        "environment_names": [e.name for e in config.environments],
        "model_names": [m.name for m in config.models],
        "resources": resources,
        "regions": region_rules(config),
        "hows": list(HOWS),
    }


def attributed(
    source: Source, config: Config, start: datetime | None = None, end: datetime | None = None
) -> pl.DataFrame:
    """Every billing row charged in [start, end) (None: unbounded): its key figures, the
    `environment`, `model` and `cost_center` it is attributed to, `how` (the first rule in
    HOWS that gave any of them) and `<dimension>_how` for each."""
    lo, hi = start or LO, end or HI
    with connection(source) as con:
        params = params_for(con, config, lo, hi)
        return run(con, "billing_attribution", read_sql("billing_attribution"), params)


def untagged(
    source: Source,
    config: Config,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    dimension: str | None = None,
    limit: int = 20,
    rows: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The biggest unmatched resources in [start, end): per (ResourceId, ResourceName,
    provider, service, currency) their EffectiveCost and rows, largest first. Unmatched
    means no rule gave anything (`how` unallocated), or, with `dimension`, nothing gave
    that one (`environment`, `model`, `cost_center`). `rows`: what `attributed` returned for
    the same range and config, so a page that has it does not place the ledger twice."""
    if dimension is not None and dimension not in DIMENSIONS:
        raise ValueError(f"dimension must be one of {', '.join(DIMENSIONS)}, got {dimension!r}")
    if not 1 <= limit <= 100_000:
        raise ValueError(f"limit must be 1 to 100000, got {limit!r}")
    lo, hi = start or LO, end or HI
    picked = {"dimension": dimension or "", "limit": limit}
    with connection(source) as con:
        if rows is not None:
            sql = read_sql("billing_untagged").replace("{billing_attribution}", _ROWS_VIEW)
            con.register("_attributed_rows", rows)
            try:
                return run(con, "billing_untagged", sql, picked)
            finally:
                con.unregister("_attributed_rows")
        sql = read_sql("billing_untagged").replace(
            "{billing_attribution}", read_sql("billing_attribution")
        )
        return run(con, "billing_untagged", sql, {**params_for(con, config, lo, hi), **picked})


_ROWS_VIEW = "SELECT * FROM _attributed_rows"
