"""The record of a load in progress, kept beside the warehouse file.

`hybridlens demo` serves the dashboard while it is still generating and loading days, so
a page must be able to say how much is loaded and how much is left without asking DuckDB
(a page reading the warehouse only learns what is there, not what is coming). The loader
rewrites a small JSON file atomically (write a temporary file, fsync, rename), so a reader
sees the previous record or the next one, never half of one. A record whose process has
gone without saying "done" reads as "stopped", so a page never shows a load as running
after it was killed.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

State = Literal["loading", "done", "stopped", "failed"]
STATES: tuple[State, ...] = ("loading", "done", "stopped", "failed")


@dataclass(frozen=True)
class LoadProgress:
    """How far a load of a known number of days has come."""

    state: State
    days_total: int
    days_loaded: int = 0
    files_loaded: int = 0
    loaded_through: str | None = None  # the UTC date of the newest loaded day
    message: str = ""
    pid: int = field(default_factory=os.getpid)
    updated_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    params: dict[str, Any] = field(default_factory=dict)  # what a rerun needs to resume

    def advanced(self, **changes: Any) -> LoadProgress:
        """A copy with `changes`, stamped now by this process."""
        return replace(self, pid=os.getpid(), updated_at=datetime.now(UTC).isoformat(), **changes)


def progress_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".progress.json")


def write_progress(db_path: Path, progress: LoadProgress) -> None:
    """Replace the record atomically: readers see the old one or this one."""
    target = progress_path(db_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    body = json.dumps(asdict(progress), sort_keys=True).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, body)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(target)


def read_progress(db_path: Path) -> LoadProgress | None:
    """The record beside `db_path`, or None when there is none (or it is unreadable).

    A "loading" record whose process no longer runs comes back as "stopped".
    """
    try:
        raw = json.loads(progress_path(db_path).read_bytes())
        progress = LoadProgress(
            state=raw["state"] if raw["state"] in STATES else "failed",
            days_total=int(raw["days_total"]),
            days_loaded=int(raw["days_loaded"]),
            files_loaded=int(raw["files_loaded"]),
            loaded_through=raw.get("loaded_through"),
            message=str(raw.get("message", "")),
            pid=int(raw["pid"]),
            updated_at=str(raw["updated_at"]),
            params=dict(raw.get("params") or {}),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if progress.state == "loading" and not _running(progress.pid):
        return replace(progress, state="stopped")
    return progress


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True
