"""What the command line writes for people: progress bars, tables, and argument checks.

Kept apart from `cli.py` so the parser stays readable; tqdm is imported only when a bar
is drawn, so `--help` does not pay for it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any


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


def print_table(frame: Any) -> None:
    if frame.is_empty():
        print("no requests in the selected range", file=sys.stderr)
        return
    headers = frame.columns
    rows = [[_cell(v) for v in row] for row in frame.iter_rows()]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for r in rows:
        print(
            "  ".join(
                c.rjust(w) if i >= 1 and c[:1].isdigit() else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
