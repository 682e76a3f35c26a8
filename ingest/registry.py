"""The collectors by name: what `ingest_log.source` says and what the driver can run.

A new source family (GPU metrics, billing exports) is one module with one collector and
one line in `_BUILTIN`; the driver, staging, publish and the load report stay the same.
The built-in collectors are imported when first asked for: loading traces need not import
the billing and GPU readers (0.4 s of a small `ingest traces` run).
"""

from __future__ import annotations

import importlib

from ingest.contract import Collector
from ingest.errors import IngestError

# name -> (module, class), in the order `for_head` asks them
_BUILTIN: dict[str, tuple[str, str]] = {
    "otlp-file": ("ingest.otlp_files", "OtlpFiles"),
    "memory": ("ingest.memory", "MemoryCollector"),
    "gpu": ("ingest.gpu.collector", "GpuCollector"),
    "billing": ("ingest.billing.collector", "BillingCollector"),
}
_COLLECTORS: dict[str, Collector] = {}


def register(collector: Collector) -> None:
    """Make `collector` available by its name (a second one of the same name replaces it)."""
    if not isinstance(collector, Collector):
        raise TypeError(f"{collector!r} does not implement ingest.contract.Collector")
    _COLLECTORS[collector.name] = collector


def get(name: str) -> Collector:
    found = _COLLECTORS.get(name)
    if found is not None:
        return found
    if name not in _BUILTIN:
        raise IngestError(
            f"no collector named {name!r}; the registered ones are: {', '.join(names())}"
        )
    module, cls = _BUILTIN[name]
    collector: Collector = getattr(importlib.import_module(module), cls)()
    if collector.name != name:  # a renamed collector would write another ingest_log.source
        raise TypeError(f"{module}.{cls} is named {collector.name!r}, registered as {name!r}")
    register(collector)
    return collector


def names() -> list[str]:
    return sorted({*_BUILTIN, *_COLLECTORS})


def for_head(head: bytes, candidates: list[str] | None = None) -> Collector | None:
    """The first collector (built-in ones first, then in registration order) that claims
    these bytes."""
    for name in dict.fromkeys([*_BUILTIN, *_COLLECTORS]):
        if candidates is not None and name not in candidates:
            continue
        collector = get(name)
        if collector.sniff(head):
            return collector
    return None
