"""`hybridlens serve-otlp`: run one receiver in the foreground until SIGINT or SIGTERM.

Signal handling and what the command prints live here, in the command-line package, so
`ingest.receiver.Receiver` stays a library object tests and other programs can start and
stop in-process.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from ingest.receiver import Receiver, ReceiverError
from warehouse.config import Config
from warehouse.db import Warehouse

log = logging.getLogger("ingest.receiver")


def serve(
    warehouse: Warehouse,
    config: Config,
    *,
    host: str = "127.0.0.1",
    port: int = 4318,
    token: str | None = None,
    spool_dir: Path | None = None,
) -> None:
    """Run a receiver until SIGINT or SIGTERM, then drain, flush once more and return."""
    if log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)  # one line per flush is the receiver's heartbeat
    receiver = Receiver(warehouse, config, host=host, port=port, token=token, spool_dir=spool_dir)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():  # a second Ctrl-C: give up on the drain (the spool keeps the data)
            raise KeyboardInterrupt
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            receiver.start()
        except ReceiverError as exc:
            print(f"hybridlens: error: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        auth = "bearer token required" if receiver.token else "no token"
        print(
            f"hybridlens: OTLP/HTTP receiver on {receiver.url} (POST /v1/traces, /v1/logs, "
            f"/v1/metrics; {auth}); spool {receiver.spool_dir}; warehouse {warehouse.path}; "
            "Ctrl-C stops it",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            pass
        print("hybridlens: stopping: draining requests and loading the spool", file=sys.stderr)
        receiver.stop()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
