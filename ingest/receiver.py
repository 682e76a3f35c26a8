"""`hybridlens serve-otlp`: an OTLP/HTTP receiver that never acknowledges what it could lose.

A request is decoded and mapped in its handler thread (that is how it knows how many spans,
log records or data points to report as rejected), then its decompressed body is appended
to a spool segment and fsync'd before the 200 goes out, so an acknowledged span or GPU
sample survives a crash or SIGKILL. Traces and logs map to spans and evaluations
(`ingest.otlp_http`), metrics to `gpu_samples` (`ingest.otlp_metrics_http`). A
loader thread rotates the active segment every couple of seconds and publishes it through
`warehouse.publish.publish` in one short transaction; only that publish holds the warehouse
write lock. The rows mapped at accept time are kept with the segment so the loader does not
parse them twice; a segment left by an earlier process is parsed again from disk. Loads
dedupe by (trace_id, span_id), so loading a segment twice is harmless; a segment whose exact
content is already in `ingest_log` is not even published again.

The pieces: `ingest.spool` (the durable segments), `ingest.otlp_http` (decode and answer
bodies), `ingest.admission` (byte budgets, body deadlines), `ingest.http_server` (the
handler), `ingest.spool_loader` (segment -> publish); this module wires them together and
runs the loader. `hybridlens.serve_otlp` runs one from the command line.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ingest.admission import ByteBudget
from ingest.http_server import Handler, Server, Server6
from ingest.otlp import Mapping
from ingest.otlp_http import MAX_BODY_BYTES, Decoded
from ingest.otlp_metrics_http import MetricsDecoded
from ingest.spool import DEFAULT_MAX_CACHED_BYTES, ReceiverError, Segment, Spool, read_segment
from ingest.spool_loader import SOURCE, SpoolLoader
from warehouse.config import Config
from warehouse.db import Warehouse
from warehouse.errors import WarehouseBusyError
from warehouse.report import LoadReport
from warehouse.stage import warm_arrow

__all__ = ["SOURCE", "Receiver", "ReceiverError", "Stats", "read_segment"]

log = logging.getLogger(__name__)

DEFAULT_MAX_BACKLOG_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_BUFFERED_BYTES = 128 * 1024 * 1024  # request bodies in memory (wire + inflated)
DEFAULT_MAX_DECODE_BYTES = 32 * 1024 * 1024  # decompressed bytes being decoded at once
DEFAULT_BODY_TIMEOUT_S = 30.0  # a whole body must arrive within this (SDKs give up at 10 s)
DEFAULT_MIN_BODY_RATE = 16 * 1024  # bytes/s a body must average once past the grace period
DEFAULT_BODY_GRACE_S = 2.0
DEFAULT_ADMISSION_WAIT_S = 10.0  # how long a request waits for budget before a 503
DEFAULT_MAX_PUBLISH_ATTEMPTS = 5  # failed publishes of one segment before it is set aside
# Niceness added to the loader's staging while it keeps up (Linux: per thread), so that
# where clients and receiver share the cores, staging takes the CPU they leave (the publish,
# holding the write lock, never runs niced). Off by default: the handlers share the GIL
# with it, and a starved thread that holds the GIL stalls them all (docs/receiver.md has the
# measurements). Past `loader_max_lag_s` of lag, a quarter of the backlog bound, or with an
# earlier run's segments waiting, staging runs at normal priority whatever this says.
DEFAULT_LOADER_NICE = 0
DEFAULT_LOADER_MAX_LAG_S = 10.0


@dataclass
class Stats:
    """Counters since start (benchmarks print them; they are not persisted)."""

    requests: int = 0
    accepted_spans: int = 0
    accepted_evaluations: int = 0
    accepted_gpu_samples: int = 0  # POST /v1/metrics: GPU readings mapped to rows
    rejected_data_points: int = 0
    rejected_requests: Counter[int] = field(default_factory=Counter)
    segments_loaded: int = 0  # published, or found already loaded
    segments_failed: int = 0  # set aside in the spool's failed/ folder
    loaded_requests: int = 0
    loaded_spans: int = 0
    loaded_evaluations: int = 0
    loaded_gpu_samples: int = 0
    duplicates: int = 0
    quarantined: int = 0
    loaded_bytes: int = 0
    longest_publish_ms: float = 0.0


class Receiver:
    """The HTTP server, the spool and the loader thread; `serve()` runs one until a signal.

    Usable in-process: `start()` returns the bound port (pass port=0 for a free one),
    `flush()` loads the spool now, `stop()` drains requests in flight and flushes once more.
    """

    def __init__(
        self,
        warehouse: Warehouse,
        config: Config,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        spool_dir: Path | str | None = None,
        flush_interval_s: float = 2.0,
        max_backlog_bytes: int = DEFAULT_MAX_BACKLOG_BYTES,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_cached_bytes: int = DEFAULT_MAX_CACHED_BYTES,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
        max_decode_bytes: int = DEFAULT_MAX_DECODE_BYTES,
        body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
        min_body_rate: float = DEFAULT_MIN_BODY_RATE,
        body_grace_s: float = DEFAULT_BODY_GRACE_S,
        admission_wait_s: float = DEFAULT_ADMISSION_WAIT_S,
        max_publish_attempts: int = DEFAULT_MAX_PUBLISH_ATTEMPTS,
        loader_nice: int = DEFAULT_LOADER_NICE,
        loader_max_lag_s: float = DEFAULT_LOADER_MAX_LAG_S,
    ) -> None:
        self.warehouse = warehouse
        self.config = config
        self.mapping = Mapping.from_config(config)
        self.host = host
        self.port = port
        self.token = token or None
        self.spool_dir = Path(
            spool_dir
            if spool_dir is not None
            else warehouse.path.with_name(warehouse.path.name + ".spool")
        )
        self.flush_interval_s = flush_interval_s
        self.max_backlog_bytes = max_backlog_bytes
        self.max_body_bytes = max_body_bytes
        self.max_cached_bytes = max_cached_bytes
        self.retry_after_s = max(1, math.ceil(flush_interval_s))
        # Memory is bounded by bytes: bodies held while read and inflated, and bodies being
        # decoded (about 10x their size in Python objects; docs/receiver.md has the figures).
        self.buffered = ByteBudget(max_buffered_bytes)
        self.decoding = ByteBudget(max_decode_bytes)
        self.body_timeout_s = body_timeout_s
        self.min_body_rate = min_body_rate
        self.body_grace_s = body_grace_s
        self.admission_wait_s = admission_wait_s
        self.max_publish_attempts = max(1, max_publish_attempts)
        self.loader_nice = max(0, loader_nice)
        self.loader_max_lag_s = loader_max_lag_s
        self.stats = Stats()
        self.closing = False
        self._spool: Spool | None = None
        self._loader_: SpoolLoader | None = None
        self._server: Server | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._inflight = 0
        self._last_warning = -math.inf
        self._inflight_cond = threading.Condition()

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def spool(self) -> Spool:
        if self._spool is None:
            raise RuntimeError("the receiver is not started")
        return self._spool

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> int:
        """Take the spool, listen, start the loader (which first loads any earlier backlog)."""
        self.closing = False
        warm_arrow()  # the handlers turn rows into Arrow: its one-time setup before the first
        self._spool = Spool(self.spool_dir, self.max_cached_bytes)
        try:
            cls = Server6 if ":" in self.host else Server
            self._server = cls((self.host, self.port), Handler)
        except OSError as exc:
            self._spool.close()
            self._spool = None
            raise ReceiverError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
            ) from exc
        self._server.receiver = self
        self._loader_ = SpoolLoader(
            self.warehouse,
            self.mapping,
            self._spool,
            self.decoding,
            self.admission_wait_s,
            self.config,
        )
        self.port = int(self._server.server_address[1])
        recovered = self._spool.pending
        if recovered:
            log.info("%d spool segments from an earlier run will be loaded first", recovered)
        self._stop.clear()
        self._threads = [
            threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.2},
                name="otlp-http",
                daemon=True,
            ),
            threading.Thread(
                target=self._loader, args=(0.0 if recovered else None,), name="otlp-loader"
            ),
        ]
        for thread in self._threads:
            thread.start()
        return self.port

    def stop(self, timeout_s: float = 30.0) -> LoadReport:
        """Stop listening, let requests in flight finish, load what was acknowledged."""
        if self._server is None:
            return LoadReport()
        self.closing = True
        self._server.shutdown()
        self._server.server_close()
        deadline = time.monotonic() + timeout_s
        with self._inflight_cond:
            while self._inflight and time.monotonic() < deadline:
                self._inflight_cond.wait(0.1)
        self._stop.set()
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        result = LoadReport()
        try:
            result = self.flush()
        except Exception as exc:  # what stays in the spool is loaded by the next start
            log.error(
                "the final flush failed (%s); %d bytes stay in the spool %s for the next start",
                exc,
                self.spool.backlog,
                self.spool_dir,
            )
        self.spool.close()
        self._server = None
        self._loader_ = None
        self._spool = None  # `closing` stays set: late keep-alive requests get a 503
        return result

    def __enter__(self) -> Receiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- accounting used by the handlers --------------------------------------------------------
    def backlogged(self) -> bool:
        return self._spool is not None and self._spool.backlog >= self.max_backlog_bytes

    def inflight(self, delta: int) -> None:
        with self._inflight_cond:
            self._inflight += delta
            self._inflight_cond.notify_all()

    def count(self, decoded: Decoded) -> None:
        with self._stats_lock:
            self.stats.requests += 1
            self.stats.accepted_spans += len(decoded.batch)
            self.stats.accepted_evaluations += decoded.batch.evaluation_count

    def count_metrics(self, decoded: MetricsDecoded) -> None:
        with self._stats_lock:
            self.stats.requests += 1
            self.stats.accepted_gpu_samples += decoded.rows
            self.stats.rejected_data_points += decoded.rejected

    def count_rejected(self, status: int) -> bool:
        """Count a refusal; True when it deserves a warning (5xx, at most one per 10 s)."""
        with self._stats_lock:
            self.stats.rejected_requests[status] += 1
            now = time.monotonic()
            if status < 500 or now - self._last_warning < 10:
                return False
            self._last_warning = now
            return True

    # -- loading --------------------------------------------------------------------------------
    def _loader(self, first_delay: float | None) -> None:
        delay = self.flush_interval_s if first_delay is None else first_delay
        while not self._stop.wait(delay):
            try:
                self.flush(background=True)
                delay = self.flush_interval_s
            except Exception as exc:
                delay = min(max(delay, self.flush_interval_s) * 2, 60.0)
                log.error(
                    "loading the spool failed (%s); retrying in %.0f s, nothing is lost",
                    exc,
                    delay,
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )

    def flush_nice(self) -> int:
        """The niceness the next background segment load runs at: 0 once the loader lags."""
        spool = self.spool
        behind = (
            spool.oldest_wait_s() >= self.loader_max_lag_s
            or spool.backlog >= self.max_backlog_bytes // 4
        )
        return 0 if behind else self.loader_nice

    def flush(self, *, background: bool = False) -> LoadReport:
        """Seal the active segment and load every sealed one, oldest first.

        `background` (the loader thread) stages each segment niced while the loader keeps
        up (its publish, which holds the write lock, never is); the lag is judged again
        before every segment, so a long catch-up turns urgent part-way.

        A busy warehouse stops the flush (every later segment would wait on the same lock)
        and raises, so the loader backs off. Any other failure is the segment's own: it is
        retried at the next flush, set aside after `max_publish_attempts`, and the
        segments after it load meanwhile.
        """
        with self._flush_lock:
            total = LoadReport()
            for seg in self.spool.rotate():
                try:
                    nice = self.flush_nice() if background else 0
                    total.add(self._load(seg, nice))
                except WarehouseBusyError:
                    raise
                except Exception as exc:
                    total.add(self._failed(seg, exc))
            if total.inputs or total.files_skipped:
                log.info(
                    "loaded %d spans, %d evaluations and %d GPU samples from %d segments (%d "
                    "duplicates, %d quarantined, %d failed; publish %.0f ms); spool backlog %d "
                    "bytes",
                    total.rows("spans"),
                    total.rows("evaluations"),
                    total.rows("gpu_samples"),
                    len(total.inputs) + total.files_skipped,
                    total.duplicates(),
                    total.quarantined,
                    len(total.failures),
                    total.duration_ms,
                    self.spool.backlog,
                )
            return total

    def _load(self, seg: Segment, nice: int = 0) -> LoadReport:
        assert self._loader_ is not None
        report, requests = self._loader_.load(seg, nice)
        self.spool.done(seg)
        with self._stats_lock:
            s = self.stats
            s.segments_loaded += 1
            s.loaded_requests += requests
            s.loaded_spans += report.rows("spans")
            s.loaded_evaluations += report.rows("evaluations")
            s.loaded_gpu_samples += report.rows("gpu_samples")
            s.duplicates += report.duplicates()
            s.quarantined += report.quarantined
            s.loaded_bytes += seg.size
            s.longest_publish_ms = max(s.longest_publish_ms, report.longest_publish_ms)
        return report

    def _failed(self, seg: Segment, exc: Exception) -> LoadReport:
        """Count one failed publish; past the bound, record the segment and set it aside."""
        assert self._loader_ is not None
        seg.failures += 1
        error = f"{type(exc).__name__}: {exc}"[:1000]
        if seg.failures < self.max_publish_attempts:
            log.error(
                "publishing spool segment %s failed (try %d of %d): %s",
                seg.path.name,
                seg.failures,
                self.max_publish_attempts,
                error,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            return LoadReport()
        message = (
            f"spool segment failed to publish {seg.failures} times ({error}); set aside in "
            f"{seg.path.parent / 'failed'} for replay"
        )
        report = self._loader_.record_failure(seg, message)  # raises: retried next flush
        kept = self.spool.set_aside(seg)
        log.error("%s; kept as %s, later segments load on", message, kept)
        with self._stats_lock:
            self.stats.segments_failed += 1
        return report
