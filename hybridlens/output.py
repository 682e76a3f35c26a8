"""What the command line writes: progress bars, tables, JSON and CSV, and argument checks.

Kept apart from `cli.py` so the parser stays readable; tqdm is imported only when a bar
is drawn, so `--help` does not pay for it. `metrics` prints plain rows (`columns`, a dict
per row) rather than a Polars frame, so it never imports Polars: `write_json` and
`write_csv` write exactly the bytes Polars's `write_json` / `write_csv` wrote for the same
frame (tests/test_cli.py compares them value by value), so scripts that parse the output
see no change.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

Rows = Sequence[dict[str, Any]]


def port(text: str) -> int:
    """A TCP port to listen on: 1 to 65535 (0, "any free port", would leave the address
    printed for the user wrong)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1 to 65535)")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number above 0")
    return value


def progress_bar(
    desc: str, unit: str = "B"
) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A tqdm bar on stderr (only on a terminal) driven by (done, total) callbacks."""
    from tqdm import tqdm

    bar: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(
                total=total,
                desc=desc,
                unit=unit,
                unit_scale=True,
                file=sys.stderr,
                disable=None,
                mininterval=0.5,
            )
        b = bar["bar"]
        b.total = total
        b.update(done - b.n)

    def close() -> None:
        if "bar" in bar:
            bar["bar"].close()

    return update, close


def print_table(columns: Sequence[str], rows: Rows) -> None:
    if not rows:
        print("no requests in the selected range", file=sys.stderr)
        return
    headers = list(columns)
    cells = [[_cell(r[c]) for c in headers] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for r in cells:
        print(
            "  ".join(
                c.rjust(w) if i >= 1 and c[:1].isdigit() else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )


def float_text(value: float) -> str:
    """A float as Polars writes it: the shortest digits that read back exactly (Python's
    repr), in positional notation from 1e-5 up to 1e16, else `1.5e-7` / `1e+16`."""
    text = repr(value)
    if "e" not in text or not math.isfinite(value):
        return text
    mantissa, _, exp = text.partition("e")
    power = int(exp)
    if power == -5:  # repr switches to an exponent one power sooner than Polars
        sign = "-" if mantissa.startswith("-") else ""
        return f"{sign}0.0000{mantissa.lstrip('-').replace('.', '')}"
    return f"{mantissa}e{'+' if power > 0 else '-'}{abs(power)}"


def _json_value(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "null"
    if isinstance(value, float):
        return float_text(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


def write_json(columns: Sequence[str], rows: Rows) -> str:
    """Rows as a JSON array of objects, with no spaces, as Polars's `write_json` writes."""
    names = [json.dumps(c, ensure_ascii=False) + ":" for c in columns]
    objects = (
        "{" + ",".join(n + _json_value(r[c]) for n, c in zip(names, columns, strict=True)) + "}"
        for r in rows
    )
    return "[" + ",".join(objects) + "]"


def _csv_field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return float_text(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    text = str(value)
    if text == "" or any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def write_csv(columns: Sequence[str], rows: Rows) -> str:
    """A header line and one line per row, quoted as Polars's `write_csv` quotes."""
    lines = [",".join(_csv_field(c) for c in columns)]
    lines.extend(",".join(_csv_field(r[c]) for c in columns) for r in rows)
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


# C0 controls (a line break included: a failure is one line), DEL and C1 controls
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}


def shown(text: str) -> str:
    """Text that came from an input (a file's name, its column names, a currency) as the
    summary prints it: control characters as escapes, so a hostile export cannot clear the
    screen, rewrite the lines above or set the clipboard of whoever reads it."""
    return text.translate(_CONTROLS)


def quarantine_hint(count: int, warehouse: object, what: str = "records") -> str:
    """The line every load command ends with when it set records aside: how many, and the
    query that shows them (the warehouse is named as the user gave it)."""
    said = f"{count:,} bad {what} were" if count != 1 else f"1 bad {what.removesuffix('s')} was"
    return (
        f"{said} quarantined; see them with: duckdb {warehouse} "
        '"SELECT uri, location, error FROM quarantine ORDER BY load_id DESC LIMIT 50"'
    )
