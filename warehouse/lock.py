"""A reader/writer lock file beside the DuckDB file.

DuckDB lets one process hold a file read-write and then no other process may open it,
not even read-only. Every connection is therefore taken under this lock: shared for
readers, exclusive for writers, with a bounded wait and jittered retries so that a busy
warehouse makes callers wait a little instead of failing.
"""

from __future__ import annotations

import fcntl
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from warehouse.errors import WarehouseBusyError

_stats_lock = threading.Lock()
_stats = {"longest_write_hold_s": 0.0, "longest_wait_s": 0.0, "write_holds": 0}


def lock_stats() -> dict[str, float]:
    """Longest exclusive hold and longest wait seen in this process (for benchmarks)."""
    with _stats_lock:
        return dict(_stats)


def reset_lock_stats() -> None:
    with _stats_lock:
        _stats.update(longest_write_hold_s=0.0, longest_wait_s=0.0, write_holds=0)


@contextmanager
def locked(db_path: Path, *, exclusive: bool, timeout_s: float) -> Iterator[None]:
    """Hold the lock file of `db_path` for the duration of the block."""
    lock_path = db_path.with_name(db_path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    started = time.monotonic()
    delay = 0.002
    try:
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                if waited >= timeout_s:
                    kind = "write" if exclusive else "read"
                    raise WarehouseBusyError(
                        f"the warehouse {db_path} stayed busy for {waited:.0f} s; another "
                        f"process holds it (waiting for a {kind} lock on {lock_path}). "
                        "Try again when the running load has finished."
                    ) from None
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.1)
        acquired = time.monotonic()
        with _stats_lock:
            _stats["longest_wait_s"] = max(_stats["longest_wait_s"], acquired - started)
        try:
            yield
        finally:
            held = time.monotonic() - acquired
            if exclusive:
                with _stats_lock:
                    _stats["longest_write_hold_s"] = max(_stats["longest_write_hold_s"], held)
                    _stats["write_holds"] += 1
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
