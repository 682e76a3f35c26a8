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
    """Hold the lock file of `db_path` for the duration of the block.

    Writers are not starved by a stream of readers: a second file, the gate, is held
    exclusively by a writer from the moment it starts waiting until it is done, and a
    reader passes through the gate (shared, for an instant) on its way in. So once a writer
    waits, new readers queue behind it and the readers already in finish their one query.
    """
    lock_path = db_path.with_name(db_path.name + ".lock")
    gate_path = db_path.with_name(db_path.name + ".lock-gate")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        gate = os.open(gate_path, os.O_RDWR | os.O_CREAT, 0o644)
    except BaseException:
        os.close(fd)
        raise
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    started = time.monotonic()
    try:
        _acquire(gate, mode, started, timeout_s, db_path, lock_path, exclusive)
        try:
            _acquire(fd, mode, started, timeout_s, db_path, lock_path, exclusive)
        finally:
            if not exclusive:
                fcntl.flock(gate, fcntl.LOCK_UN)
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
        os.close(gate)  # closing releases the gate if this process still holds it
        os.close(fd)


def _acquire(
    fd: int,
    mode: int,
    started: float,
    timeout_s: float,
    db_path: Path,
    lock_path: Path,
    exclusive: bool,
) -> None:
    """flock `fd` in `mode`, retrying with jittered backoff until `timeout_s` from `started`."""
    delay = 0.002
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            waited = time.monotonic() - started
            if waited >= timeout_s:
                kind = "write" if exclusive else "read"
                raise WarehouseBusyError(
                    f"the warehouse {db_path} stayed busy for {waited:.0f} s; another "
                    f"process holds it (waiting for a {kind} lock on {lock_path}). "
                    "Try again when the running load has finished."
                ) from None
            time.sleep(min(delay * (0.5 + random.random()), max(timeout_s - waited, 0.0)))
            delay = min(delay * 2, 0.01)
