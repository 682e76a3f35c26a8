"""`prometheus_client`'s text parser, with each distinct label block parsed once.

A dcgm-exporter scrape repeats one GPU's labels (a dozen of them: UUID, model, host,
pod, ...) on every field's line, and `prometheus_client` spends nine tenths of its time
on those labels, character by character: a 1-minute day of one 8-GPU host took 14 s.
So each sample line's label block is swapped for a one-label token, the text is parsed
by the library as it is, and every block is parsed once, by the library too, and put
back; where most blocks are seen once (a hostile or odd exposition), that would read
each twice, so the text goes to the library as it is. Nothing here parses a label
itself: a line this cannot split safely (a backslash, a quoted metric name) goes to the
library untouched, and a block the library refuses raises as the whole text would.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

_TOKEN = "hybridlens_label_block"


def metric_families(text: str) -> Iterator[Metric]:
    """The families `text_string_to_metric_families(text)` yields, label for label."""
    blocks: dict[str, int] = {}
    if _TOKEN in text:  # a hostile text that names the token itself: no shortcut
        yield from text_string_to_metric_families(text)
        return
    lines = text.split("\n")
    swapped = 0
    for i, line in enumerate(lines):
        brace = line.find("{")
        if brace <= 0 or "\\" in line or line.lstrip().startswith(("#", "{")):
            continue
        end = line.rfind("}")  # the value and timestamp after it hold no brace
        if end < brace:
            continue
        number = blocks.setdefault(line[brace : end + 1], len(blocks))
        lines[i] = f'{line[:brace]}{{{_TOKEN}="{number}"}}{line[end + 1 :]}'
        swapped += 1
    if not blocks or len(blocks) * 2 > swapped:  # seldom repeated: parsed apart, twice the cost
        yield from text_string_to_metric_families(text)
        return
    labels = [
        _remembered(block) if len(block) <= _REMEMBER_BYTES else _labels_of(block)
        for block in blocks
    ]
    for family in text_string_to_metric_families("\n".join(lines)):
        samples = []
        for sample in family.samples:
            token = sample.labels.get(_TOKEN)
            if token is not None:
                sample = sample._replace(labels=dict(labels[int(token)]))
            samples.append(sample)
        family.samples = samples
        yield family


def _labels_of(block: str) -> tuple[tuple[str, str], ...]:
    """One block's labels, as the library reads them on a line of their own."""
    [family] = text_string_to_metric_families(f"x{block} 0\n")
    return tuple(family.samples[0].labels.items())


# Every minute's scrape of a GPU repeats its block: remember a few thousand ordinary ones
# (a hostile megabyte-long block is parsed each time rather than kept).
_REMEMBER_BYTES = 4096
_remembered = lru_cache(maxsize=4096)(_labels_of)
