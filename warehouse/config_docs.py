"""The key tables of docs/config.md, rendered from the declarations in `config_schema`.

The docs hold one generated block per section between `<!-- keys PATH -->` and
`<!-- /keys -->` markers; the prose around them is written by hand. A test checks the
committed file equals what `update()` would make of it, so a key added to the schema
cannot go undocumented; `python -m warehouse.config_docs docs/config.md` rewrites the
blocks in place (and appends a block for a new section, to be moved where it reads best).
"""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import MISSING
from pathlib import Path
from typing import Any

from warehouse.config_fields import Section, Spec, specs, walk
from warehouse.config_schema import Config

BLOCK = re.compile(r"<!-- keys (?P<path>\S*) -->\n(?P<body>.*?)<!-- /keys -->\n", re.S)
TOP = "top-level"  # the marker's name for the keys of the file itself


def sections() -> dict[str, type]:
    """Section path ("", "environments[]", "environments[].slo", ...) -> its dataclass."""
    return {path.rstrip("."): cls for path, cls in walk(Config)}


def _default(f: dataclasses.Field[Any], spec: Spec) -> str:
    if spec.default_doc is not None:
        return spec.default_doc
    if spec.required:
        return "required"
    if isinstance(spec.kind, Section):
        return "see below"
    value = f.default if f.default_factory is MISSING else f.default_factory()
    if value is None:
        return "none"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    if isinstance(value, tuple):
        return ", ".join(f"`{v}`" for v in value) if value else "`[]`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(path: str) -> str:
    """The markdown table of the keys of the config's section at `path`."""
    return render(sections()[path], f"{path}." if path else "")


def render(cls: type, prefix: str) -> str:
    """The markdown table of a section's keys, each named with `prefix`."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for f, spec in specs(cls):
        rows.append(
            f"| `{prefix}{f.name}` | {_cell(spec.kind.describe())} | {_cell(_default(f, spec))} "
            f"| {_cell(spec.doc)} |"
        )
    return "\n".join(rows) + "\n"


def update(doc: str) -> str:
    """`doc` with every key block re-rendered, and a block appended for any new section."""
    known = sections()
    seen: set[str] = set()

    def render(match: re.Match[str]) -> str:
        name = match["path"]
        path = "" if name == TOP else name
        if path not in known:
            return ""  # a section that no longer exists: its block goes
        seen.add(path)
        return f"<!-- keys {name} -->\n{table(path)}<!-- /keys -->\n"

    text = BLOCK.sub(render, doc)
    for path in known:
        if path not in seen:
            name = path or TOP
            text += f"\n### `{name}`\n\n<!-- keys {name} -->\n{table(path)}<!-- /keys -->\n"
    return text


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else Path("docs/config.md")
    before = target.read_text(encoding="utf-8")
    after = update(before)
    if after != before:
        target.write_text(after, encoding="utf-8")
    print(f"{target}: {'rewritten' if after != before else 'already current'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
