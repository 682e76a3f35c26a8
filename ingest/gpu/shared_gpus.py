"""A GPU that Kubernetes time-slices between pods, as the samples builder sees it.

dcgm-exporter writes a shared GPU's series once per pod, with the same values, and a
Prometheus range query or OTLP metrics give each pod's series a reading of its own. The
builder (`samples.py`) makes one `gpu_samples` row of the GPU at each time: these keep
which readings fold into which row and list the row's workloads (`workloads`, migration
012), so the allocation can split the GPU's hours between them.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass

MAX_SHARED_WORKLOADS = 64  # workloads listed on one time-sliced GPU; more are counted


@dataclass
class Holders:
    """The workloads that hold each GPU at each time, for the rows' `workloads` column.

    A time-sliced GPU has a reading per pod, with the same values: the first is its row,
    and a reading of another workload adds that workload (and any value the row lacks)
    to it. A reading of the same workload is a duplicate, a row of its own that the
    publish dedupes as usual."""

    keys: list[tuple[object, ...]] = dataclasses.field(default_factory=list)  # a row each
    first: dict[tuple[object, ...], tuple[int, str | None]] = dataclasses.field(
        default_factory=dict
    )  # the GPU's row at a time, and its workload
    shared: dict[tuple[object, ...], set[str | None]] = dataclasses.field(default_factory=dict)

    def another(
        self, key: tuple[object, ...], workload: str | None, counts: Counter[str]
    ) -> int | None:
        """The row this reading folds into, when `workload` shares a GPU that has a row at
        this time; None when the reading is a row of its own."""
        found = self.first.get(key)
        if found is None:
            self.first[key] = (len(self.keys), workload)
        elif workload != found[1]:
            held = self.shared.setdefault(key, {found[1]})
            if workload not in held:
                if len(held) < MAX_SHARED_WORKLOADS:
                    held.add(workload)
                else:  # a hostile scrape's thousand pods on one GPU: names, not payloads
                    counts[f"workloads past {MAX_SHARED_WORKLOADS} on one time-sliced GPU"] += 1
                return found[0]
        self.keys.append(key)
        return None

    def column(self) -> list[list[str] | None]:
        """Each row's workloads, sorted, where two or more hold its GPU; else None."""
        if not self.shared:  # no GPU is time-sliced: the common case costs nothing
            return [None] * len(self.keys)
        named = {k: sorted(w for w in v if w is not None) for k, v in self.shared.items()}
        listed = {k: v for k, v in named.items() if len(v) > 1}
        return [listed.get(k) for k in self.keys]


def fold(
    columns: dict[str, list[object]],
    row: int,
    values: dict[str, float | None],
    holder: dict[str, str | None],
) -> None:
    """Another pod's reading of a GPU that has `row` at that time: the values the row lacks
    (a series only one pod's labels carry), and its pod where the row names none."""
    for column, value in values.items():
        if value is not None and columns[column][row] is None:
            columns[column][row] = value
    if columns["workload"][row] is None and holder["workload"] is not None:
        for column, name in holder.items():
            columns[column][row] = name
