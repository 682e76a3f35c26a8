"""The vocabulary the config is declared in, and the one reader that applies it.

A config section is a frozen dataclass whose fields are declared with `setting()`: the
kind (type and bounds), the default and a doc line sit on the field itself, so the
parser, the key tables of docs/config.md and the meta tests all read one declaration and
a new key is one line. This module knows nothing of hybridlens's sections: it imports
only the error type, so the declarations import it and nothing imports back.

Every message names the file, then the key with its position
(`hybridlens.toml: environments[0].slo.availability: must be a fraction in (0, 1], ...`),
because a typo in an SLO must not silently become a default.
"""

from __future__ import annotations

import dataclasses
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import MISSING, dataclass, field
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from warehouse.errors import ConfigError

SPEC = "hybridlens.setting"
UNKNOWN_KEY = "unknown key (see docs/config.md for the accepted keys)"
SHOWN_CHARS = 80  # a value quoted in a message is cut to this many characters

T = TypeVar("T")


@dataclass(frozen=True)
class Place:
    """Where a value sits, for messages: the file (or stored copy) and the key path so far."""

    origin: str
    where: str = ""  # e.g. "environments[0].slo."
    stored: bool = False  # read back from the warehouse's JSON, not from TOML

    def at(self, key: str) -> Place:
        return dataclasses.replace(self, where=f"{self.where}{key}")

    def bad(self, key: str, why: str) -> ConfigError:
        return ConfigError(f"{self.origin}: {self.where}{key}: {why}")


def show(value: Any) -> str:
    """A value as a message quotes it: repr, cut short, and safe on a value nested too deep."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # nested too deep; an int of over 4300 digits
        text = f"<a {type(value).__name__} too large to show>"
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _number(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else str(n)


class Kind(ABC):
    """A key's type and bounds: how a raw value is checked and how the docs describe it."""

    @abstractmethod
    def read(self, value: Any, at: Place, key: str) -> Any:
        """The checked value, or a ConfigError naming the key."""

    @abstractmethod
    def describe(self) -> str:
        """The type and bounds as docs/config.md's tables say them."""

    def children(self) -> tuple[str, type] | None:
        """(path suffix, section class) when the key holds a nested section."""
        return None


def _expect(value: Any, kind: type, at: Place, key: str) -> None:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
        raise at.bad(key, f"expected {kind.__name__}, got {show(value)}")


@dataclass(frozen=True)
class Integer(Kind):
    low: int
    high: int

    def read(self, value: Any, at: Place, key: str) -> int:
        _expect(value, int, at, key)
        _bounds(value, self.low, self.high, False, at, key, integer=True)
        return int(value)

    def describe(self) -> str:
        return f"integer, {self.low} to {self.high}"


@dataclass(frozen=True)
class Number(Kind):
    """A finite number; `low` is excluded by default (a target of 0 ms means nothing)."""

    low: float
    high: float
    low_open: bool = True

    def read(self, value: Any, at: Place, key: str) -> float:
        if isinstance(value, int) and not isinstance(value, bool):
            # bounds first: float() of a 400-digit integer overflows
            _bounds(value, self.low, self.high, self.low_open, at, key)
            return float(value)
        _expect(value, float, at, key)
        if not math.isfinite(value):
            raise at.bad(key, f"must be a finite number, got {show(value)}")
        _bounds(value, self.low, self.high, self.low_open, at, key)
        return float(value)

    def describe(self) -> str:
        if (self.low, self.high, self.low_open) == (0, 1, True):
            return "fraction in (0, 1]"
        left = "(" if self.low_open else "["
        return f"number in {left}{_number(self.low)}, {_number(self.high)}]"


def Fraction() -> Number:
    return Number(0, 1)


def _bounds(
    value: float,
    low: float,
    high: float,
    low_open: bool,
    at: Place,
    key: str,
    integer: bool = False,
) -> None:
    if (low, high, low_open) == (0, 1, True) and not 0 < value <= 1:
        raise at.bad(key, f"must be a fraction in (0, 1], got {show(value)}")
    if value < low or (low_open and value == low):
        if (low, low_open) == (0, True) or (integer and (low, low_open) == (1, False)):
            why = "must be positive"  # an integer of at least 1 is a positive one (not 0.9)
        elif low == 0:
            why = "must be 0 or more"
        else:
            why = f"must be more than {_number(low)}" if low_open else f"must be at least {low}"
        raise at.bad(key, f"{why}, got {show(value)}")
    if value > high:
        raise at.bad(key, f"must be at most {_number(high)}, got {show(value)}")


@dataclass(frozen=True)
class Text(Kind):
    """A string; with `pattern`, one the whole of which matches it (`means` says what it is
    in words, for the message and the docs: "a 3-letter currency code")."""

    pattern: str | None = None
    means: str = ""

    def read(self, value: Any, at: Place, key: str) -> str:
        _expect(value, str, at, key)
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            what = self.means or f"a string matching {self.pattern}"
            raise at.bad(key, f"must be {what}, got {show(value)}")
        return str(value)

    def describe(self) -> str:
        if self.pattern is None:
            return "string"
        return f"string: {self.means}" if self.means else f"string matching `{self.pattern}`"


@dataclass(frozen=True)
class Choice(Kind):
    values: tuple[str, ...]

    def read(self, value: Any, at: Place, key: str) -> str:
        _expect(value, str, at, key)
        if value not in self.values:
            raise at.bad(key, f"must be one of {', '.join(self.values)}, got {show(value)}")
        return str(value)

    def describe(self) -> str:
        return " | ".join(f"`{v}`" for v in self.values)


@dataclass(frozen=True)
class Strings(Kind):
    def read(self, value: Any, at: Place, key: str) -> tuple[str, ...]:
        _expect(value, list, at, key)
        if not all(isinstance(v, str) for v in value):
            raise at.bad(key, f"must be a list of strings, got {show(value)}")
        return tuple(value)

    def describe(self) -> str:
        return "list of strings"


@dataclass(frozen=True)
class UrlTemplate(Kind):
    """A link template pages turn into an `<a href>`: only http(s), and it must hold the
    placeholder, so a config cannot plant `javascript:` or `data:` links on every page."""

    placeholder: str
    FORBIDDEN: ClassVar[re.Pattern[str]] = re.compile(r"[\s\"'<>\\`\x00-\x1f\x7f]")

    def read(self, value: Any, at: Place, key: str) -> str:
        _expect(value, str, at, key)
        if not value:
            return ""
        bad_char = self.FORBIDDEN.search(value)
        if bad_char:
            raise at.bad(
                key,
                f"must not contain {show(bad_char.group())} (percent-encode it), got {show(value)}",
            )
        try:
            parts = urlsplit(value)
        except ValueError:
            parts = None
        if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise at.bad(key, f"must be an http:// or https:// URL, got {show(value)}")
        if self.placeholder not in value:
            raise ConfigError(f"{at.origin}: {at.where}{key} must contain {self.placeholder}")
        return str(value)

    def describe(self) -> str:
        return f"http(s) URL with `{self.placeholder}`"


@dataclass(frozen=True)
class Rules(Kind):
    """Resolver rules: a list of non-empty tables of resource attribute = value, kept as
    sorted (attribute, value) pairs; the warehouse's JSON copy holds them as pair lists."""

    def read(self, value: Any, at: Place, key: str) -> tuple[tuple[tuple[str, str], ...], ...]:
        _expect(value, list, at, key)
        rules = []
        for j, rule in enumerate(value):
            if at.stored and isinstance(rule, list) and all(_is_pair(p) for p in rule):
                rule = dict(rule)
            if not isinstance(rule, dict) or not rule:
                raise ConfigError(
                    f"{at.origin}: {at.where}{key}[{j}] must be a non-empty table of "
                    "resource attribute = value"
                )
            for attribute, wanted in rule.items():
                if not isinstance(wanted, str | int | float):  # bool is an int
                    raise at.bad(
                        f"{key}[{j}]",
                        f"the value of {show(attribute)} must be a string, number or boolean, "
                        f"got {show(wanted)}",
                    )
            rules.append(tuple(sorted((str(k), str(v)) for k, v in rule.items())))
        return tuple(rules)

    def describe(self) -> str:
        return "list of tables"


def _is_pair(item: Any) -> bool:
    return isinstance(item, list) and len(item) == 2 and all(isinstance(s, str) for s in item)


@dataclass(frozen=True)
class Section(Kind):
    """A nested table (`[environments.slo]`) declared by its own dataclass."""

    cls: type

    def read(self, value: Any, at: Place, key: str) -> Any:
        _expect(value, dict, at, key)
        return read_section(self.cls, value, at.at(f"{key}."))

    def describe(self) -> str:
        return "table"

    def children(self) -> tuple[str, type]:
        return ("", self.cls)


@dataclass(frozen=True)
class Sections(Kind):
    """A list of tables (`[[environments]]`), each declared by one dataclass; `unique`
    names the attribute no two entries may share."""

    cls: type
    unique: str | None = None

    def read(self, value: Any, at: Place, key: str) -> tuple[Any, ...]:
        _expect(value, list, at, key)
        items: tuple[Any, ...] = tuple(
            read_section(self.cls, raw, at.at(f"{key}[{i}]."), index=i)
            for i, raw in enumerate(value)
        )
        if self.unique:
            seen = set()
            for item in items:
                name = getattr(item, self.unique)
                if name in seen:
                    raise at.bad(key, f"{name!r} is defined twice")
                seen.add(name)
        return items

    def describe(self) -> str:
        return "list of tables"

    def children(self) -> tuple[str, type]:
        return ("[]", self.cls)


@dataclass(frozen=True)
class Spec:
    """One key's declaration, kept in its dataclass field's metadata."""

    kind: Kind
    doc: str
    required: bool = False  # missing or empty is an error
    indexed_default: str | None = None  # default built from the entry's position: "pool-{index}"
    default_doc: str | None = None  # how the docs show the default, when not the value itself


def setting(
    kind: Kind,
    doc: str,
    default: Any = MISSING,
    *,
    factory: Callable[[], Any] | None = None,
    required: bool = False,
    indexed_default: str | None = None,
    default_doc: str | None = None,
) -> Any:
    """A dataclass field that is also a config key's declaration."""
    spec = Spec(kind, doc, required, indexed_default, default_doc)
    metadata = {SPEC: spec}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def specs(cls: type) -> Iterator[tuple[dataclasses.Field[Any], Spec]]:
    """The declared keys of a section, in declaration order."""
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(SPEC)
        if isinstance(spec, Spec):
            yield f, spec


def read_section(
    cls: type[T],
    raw: Any,
    at: Place,
    *,
    index: int = 0,
    extra: dict[str, Any] | None = None,
) -> T:
    """One table read by its declaration: every key checked, unknown keys refused, then the
    section's own cross-key checks (`CHECKS`, each returning a complaint or None)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{at.origin}: {at.where} must be a table, not {type(raw).__name__}")
    table = dict(raw)
    values: dict[str, Any] = dict(extra or {})
    for f, spec in specs(cls):
        if f.name in table:
            value = spec.kind.read(table.pop(f.name), at, f.name)
            if spec.required and not value:
                raise ConfigError(f"{at.origin}: {at.where}{f.name} is required")
            values[f.name] = value
        elif spec.indexed_default is not None:
            values[f.name] = spec.indexed_default.format(index=index)
        elif spec.required:
            raise ConfigError(f"{at.origin}: {at.where}{f.name} is required")
    if table:
        raise at.bad(min(str(k) for k in table), UNKNOWN_KEY)
    section = cls(**values)
    for check in getattr(cls, "CHECKS", ()):
        complaint = check(section)
        if complaint:
            raise ConfigError(f"{at.origin}: {at.where.rstrip('.')}: {complaint}")
    return section


def walk(cls: type, path: str = "") -> Iterator[tuple[str, type]]:
    """Every section under `cls` as (path, class): ("", Config), ("environments[]", ...)."""
    yield path, cls
    for f, spec in specs(cls):
        nested = spec.kind.children()
        if nested:
            yield from walk(nested[1], f"{path}{f.name}{nested[0]}.")


def key_paths(cls: type) -> list[str]:
    """Every accepted key as a path: `environments`, `environments[].slo.availability`, ..."""
    return [f"{path}{f.name}" for path, section in walk(cls) for f, _ in specs(section)]
