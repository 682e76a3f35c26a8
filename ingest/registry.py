"""The collectors by name: what `ingest_log.source` says and what the driver can run.

A new source family (GPU metrics, billing exports) is one module with one collector and
one line here; the driver, staging, publish and the load report stay the same.
"""

from __future__ import annotations

from ingest.billing.collector import BillingCollector
from ingest.contract import Collector
from ingest.errors import IngestError
from ingest.gpu.collector import GpuCollector
from ingest.memory import MemoryCollector
from ingest.otlp_files import OtlpFiles

_COLLECTORS: dict[str, Collector] = {}


def register(collector: Collector) -> None:
    """Make `collector` available by its name (a second one of the same name replaces it)."""
    if not isinstance(collector, Collector):
        raise TypeError(f"{collector!r} does not implement ingest.contract.Collector")
    _COLLECTORS[collector.name] = collector


def get(name: str) -> Collector:
    try:
        return _COLLECTORS[name]
    except KeyError:
        known = ", ".join(sorted(_COLLECTORS))
        raise IngestError(
            f"no collector named {name!r}; the registered ones are: {known}"
        ) from None


def names() -> list[str]:
    return sorted(_COLLECTORS)


def for_head(head: bytes, candidates: list[str] | None = None) -> Collector | None:
    """The first registered collector (in registration order) that claims these bytes."""
    for name, collector in _COLLECTORS.items():
        if candidates is not None and name not in candidates:
            continue
        if collector.sniff(head):
            return collector
    return None


register(OtlpFiles())
register(MemoryCollector())
register(GpuCollector())
register(BillingCollector())
