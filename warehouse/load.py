"""The old import path of the write path's pieces, kept so callers move at their own pace.

The write path now lives in `warehouse.stage` (Stage), `warehouse.publish` (publish,
publish_each), `warehouse.tables` (the write specs), `warehouse.rollups` (the hook) and
`warehouse.ingest_state` (resume state and the stored config). New code imports those.
"""

from __future__ import annotations

from warehouse.ingest_state import (
    content_hash,
    file_state,
    file_states,
    log_failure,
    store_config,
    stored_config,
)
from warehouse.rollups import LATENCY_GAMMA, rebuild_rollups
from warehouse.stage import Stage

__all__ = [
    "LATENCY_GAMMA",
    "Stage",
    "content_hash",
    "file_state",
    "file_states",
    "log_failure",
    "rebuild_rollups",
    "store_config",
    "stored_config",
]
