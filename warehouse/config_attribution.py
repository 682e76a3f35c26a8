"""The config's attribution section: how a ledger row finds its environment, model and cost center.

Declared apart from `config_schema` like the GPU and billing sections, so each slice adds
its section beside the others. `warehouse/attribution.py` reads it; docs/billing.md
("Attribution") says in which order the rules apply.

Patterns are checked here, when the config is read, with the engine that later applies
them (Python's `re` and `fnmatch`), so a bad pattern fails naming its key instead of
failing a page.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from warehouse.config_fields import Choice, Place, Sections, Strings, Text, setting, show

REGEX = "re:"  # a pattern that starts with this is a regular expression, else a glob
AWS_PREFIXES = ("resourcetags/", "resource_tags_", "user:", "aws:")


def is_glob(pattern: str) -> bool:
    return not pattern.startswith(REGEX)


def glob_regex(pattern: str) -> str:
    """A glob as fnmatch's regular expression for the whole id (it ends with `\\Z`)."""
    return fnmatch.translate(pattern)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A resource pattern as the regular expression that applies it, case-insensitive:
    `re:...` searched anywhere in the id, else a glob matching the whole id (anchored at
    the start too: searched unanchored, a leading `*` made every search quadratic)."""
    if not is_glob(pattern):
        return re.compile(pattern[len(REGEX) :], re.IGNORECASE)
    return re.compile(r"\A" + glob_regex(pattern), re.IGNORECASE)


@dataclass(frozen=True)
class Pattern(Text):
    """A glob, or `re:` and a regular expression, that must compile (a Text, so every
    tool that knows strings knows it)."""

    def read(self, value: Any, at: Place, key: str) -> str:
        text = super().read(value, at, key)
        if not text.removeprefix(REGEX):
            raise at.bad(key, "must not be empty")
        try:
            compile_pattern(text)
        except (re.error, RecursionError, OverflowError) as exc:
            raise at.bad(key, f"not a valid regular expression ({exc}): {show(text)}") from None
        return text

    def describe(self) -> str:
        return "glob, or `re:` and a regular expression"


@dataclass(frozen=True)
class TagKeys(Strings):
    """Tag keys as written in the config: not empty, and without AWS's prefixes, which
    are stripped from AWS's tags before they are compared (a key `user:team` would never
    match)."""

    def read(self, value: Any, at: Place, key: str) -> tuple[str, ...]:
        keys: tuple[str, ...] = super().read(value, at, key)
        for name in keys:
            if not name.strip():
                raise at.bad(key, "a tag key must not be empty")
            if name.strip().lower().startswith(AWS_PREFIXES):
                raise at.bad(
                    key,
                    f"write the tag key without AWS's prefix ({show(name)}): `resourceTags/`, "
                    "`user:` are stripped from AWS tags and `aws:` tags are ignored",
                )
        return keys

    def describe(self) -> str:
        return "list of tag keys"


def _gives_something(rule: ResourceRule) -> str | None:
    if not (rule.environment or rule.model or rule.cost_center):
        return "a resource rule must give at least one of environment, model, cost_center"
    return None


@dataclass(frozen=True)
class ResourceRule:
    CHECKS: ClassVar[tuple[Callable[[ResourceRule], str | None], ...]] = (_gives_something,)

    pattern: str = setting(
        Pattern(),
        "matched against `ResourceId`, case-insensitive: a glob over the whole id (`*` "
        "crosses `/`), or `re:` and a regular expression found anywhere in it",
        required=True,
    )
    environment: str = setting(Text(), 'the environment it gives (`""`: none)', "")
    model: str = setting(Text(), 'the model it gives (`""`: none)', "")
    cost_center: str = setting(Text(), 'the cost center it gives (`""`: none)', "")


@dataclass(frozen=True)
class RegionRule:
    region: str = setting(
        Text(), "a `RegionId` or `RegionName`, case-insensitive (`us-east-1`)", required=True
    )
    environment: str = setting(Text(), "the environment its rows get", required=True)
    provider: str = setting(
        Text(),
        '`aws`, `gcp`, `azure` or a `ProviderName` as the ledger has it (`""`: any provider)',
        "",
    )


@dataclass(frozen=True)
class Attribution:
    environment_keys: tuple[str, ...] = setting(
        TagKeys(),
        "tag and label keys that name a row's environment, the first found wins",
        ("environment", "env"),
    )
    model_keys: tuple[str, ...] = setting(
        TagKeys(), "tag and label keys that name a row's model, the first found wins", ("model",)
    )
    cost_center_keys: tuple[str, ...] = setting(
        TagKeys(),
        "tag and label keys that name a row's cost center, the first found wins",
        ("cost_center", "cost-center", "team"),
    )
    resources: tuple[ResourceRule, ...] = setting(
        Sections(ResourceRule),
        "resource-id rules, one `[[attribution.resources]]` table each, the first match wins",
        (),
    )
    regions: tuple[RegionRule, ...] = setting(
        Sections(RegionRule),
        "region -> environment rules, one `[[attribution.regions]]` table each, the first "
        "match wins; after them, an `[[environments]]` entry's own `provider` and `region`",
        (),
    )


ALLOCATION_KEYS = ("gpu-seconds", "requests", "tokens")


@dataclass(frozen=True)
class Allocation:
    key: str = setting(
        Choice(ALLOCATION_KEYS),
        "how an environment's shared cost is split across its models: `gpu-seconds` (GPU time "
        "each model's workload held, busy or idle-held; a day without any falls back to "
        "requests), `requests`, or `tokens` (input + output). Modelled on-prem and edge rows "
        "are always split by the GPU time of their own pool",
        "gpu-seconds",
    )
