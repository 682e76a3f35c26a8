"""`hybridlens serve-otlp`: an OTLP/HTTP receiver that never acknowledges what it could lose.

A request is decoded and mapped in its handler thread (that is how it knows how many spans
to report as rejected), then its decompressed body is appended to a spool segment and
fsync'd before the 200 goes out, so an acknowledged span survives a crash or SIGKILL. A
loader thread rotates the active segment every couple of seconds and publishes it with
`warehouse.publish` in one short transaction; only that publish holds the warehouse write
lock. The rows mapped at accept time are kept with the segment so the loader does not parse
them twice; a segment left by an earlier process is parsed again from disk. Loads dedupe by
(trace_id, span_id), so loading a segment twice is harmless; a segment whose exact content
is already in `ingest_log` is not even published again.

Spool record layout (all integers big-endian):
    b"HLSP" | meta length u32 | body length u32 | crc32(meta + body) u32 | meta | body
where meta is a small JSON object (signal, encoding, peer, receive time) and body is the
request body after Content-Encoding was undone.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import hmac
import logging
import math
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from ingest.errors import IngestError
from ingest.framing import MAX_RECORD_BYTES
from ingest.otlp import Batch, Mapping
from warehouse.config import Config
from warehouse.db import Warehouse
from warehouse.ingest_state import content_hash, file_state
from warehouse.publish import publish_each
from warehouse.report import InputReport
from warehouse.stage import Stage

try:  # ships with googleapis-common-protos, which the OTLP exporters depend on
    from google.rpc.status_pb2 import Status as _RpcStatus
except ImportError:  # pragma: no cover - exercised only without googleapis-common-protos
    _RpcStatus = None

log = logging.getLogger(__name__)

SOURCE = "otlp-http"
SIGNALS = {"/v1/traces": "traces", "/v1/logs": "logs"}
MAX_BODY_BYTES = MAX_RECORD_BYTES  # the OTLP/HTTP default limit, applied after decompression
DEFAULT_MAX_BACKLOG_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_CACHED_SPANS = 300_000  # ~650 B each: the mapped rows kept for the loader
DEFAULT_MAX_CONCURRENT = 8  # requests read and decoded at once: the memory bound (64 MiB each)
LOAD_CHUNK_SPANS = 100_000  # a segment parsed from disk is staged in pieces of this size
SEGMENT_SUFFIX = ".spool"
_SEGMENT = re.compile(r"^(\d{12})-\d+\.spool$")
_MAGIC = b"HLSP"
_HEADER = struct.Struct(">4sIII")
_INFLATE_STEP = 1 << 20
_DRAIN_LIMIT = 1 << 20  # bodies of rejected requests up to this size are read and dropped
_CONTENT_TYPES = {"application/x-protobuf": "proto", "application/json": "json"}
_MEDIA = {"proto": "application/x-protobuf", "json": "application/json"}
_UTF8 = ("utf-8", "utf8")
_OTHER_SIGNAL_KEYS = {
    "resourceSpans": "/v1/traces",
    "resourceLogs": "/v1/logs",
    "resourceMetrics": "/v1/metrics",
    "resourceProfiles": "/v1development/profiles",
}
# google.rpc.Code for each HTTP status we answer with (the gRPC/HTTP mapping of code.proto).
_RPC_CODES = {400: 3, 401: 16, 404: 5, 405: 12, 411: 3, 413: 8, 415: 3, 500: 13, 501: 12, 503: 14}


class ReceiverError(IngestError):
    """The receiver cannot start (spool in use, port taken, spool unwritable)."""


@dataclass
class FlushResult:
    """What one flush published; the loader logs it and tests and benchmarks read it."""

    segments: int = 0
    requests: int = 0
    spans: int = 0
    duplicates: int = 0
    evaluations: int = 0
    quarantined: int = 0
    bytes: int = 0
    publish_ms: float = 0.0

    def add(self, other: FlushResult) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Stats:
    """Counters since start (benchmarks print them; they are not persisted)."""

    requests: int = 0
    accepted_spans: int = 0
    accepted_evaluations: int = 0
    rejected_requests: Counter[int] = field(default_factory=Counter)
    loaded: FlushResult = field(default_factory=FlushResult)
    longest_publish_ms: float = 0.0


# -- the spool ---------------------------------------------------------------------------------
@dataclass(eq=False)
class _Segment:
    seq: int
    path: Path
    fd: int | None = None
    size: int = 0
    synced: int = 0
    writers: int = 0
    records: int = 0
    recovered: bool = False  # left by an earlier process: parse it from disk
    batch: Batch | None = None  # rows mapped at accept time; None: parse from disk
    digest: Any = field(default_factory=lambda: hashlib.blake2b(digest_size=16))
    sync_lock: threading.Lock = field(default_factory=threading.Lock)


class Spool:
    """Append-only, fsync'd segment files in one directory, owned by one receiver at a time.

    Writers append under a short lock and then share fsyncs (group commit): whoever syncs
    covers every record written before it started, so concurrent requests do not queue
    behind one fsync each.
    """

    def __init__(
        self, directory: Path, mapping: Mapping, max_cached_spans: int = DEFAULT_MAX_CACHED_SPANS
    ) -> None:
        self.directory = directory
        self._mapping = mapping
        self._max_cached = max_cached_spans
        self._cached = 0
        self._cond = threading.Condition()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ReceiverError(
                f"cannot use the spool directory {directory}: {exc.strerror or exc}"
            ) from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise ReceiverError(
                f"another receiver is using the spool {directory}; stop it, or give this one "
                "its own --spool"
            ) from None
        self._sealed: list[_Segment] = []
        for path in sorted(directory.iterdir()):
            match = _SEGMENT.match(path.name)
            if match and path.is_file():
                self._sealed.append(
                    _Segment(int(match[1]), path, size=path.stat().st_size, recovered=True)
                )
        self._seq = max((s.seq for s in self._sealed), default=0)
        self.backlog = sum(s.size for s in self._sealed)
        self._closed = False
        try:
            self._active = self._new_segment()
        except OSError as exc:
            os.close(self._lock_fd)
            raise ReceiverError(
                f"cannot write to the spool directory {directory}: {exc.strerror or exc}"
            ) from exc

    @property
    def pending(self) -> int:
        """Segments sealed but not yet loaded."""
        with self._cond:
            return len(self._sealed)

    def _new_segment(self) -> _Segment:
        with self._cond:
            self._seq += 1
            seq = self._seq
        path = self.directory / f"{seq:012d}-{time.time_ns() // 1_000_000}{SEGMENT_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self._sync_directory()  # the new name must survive a crash with the data it holds
        return _Segment(seq, path, fd=fd, batch=Batch(self._mapping))

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def append(self, meta: bytes, body: bytes, batch: Batch | None) -> None:
        """Write one record and return once it is on stable storage (raises OSError)."""
        record = (
            _HEADER.pack(_MAGIC, len(meta), len(body), zlib.crc32(body, zlib.crc32(meta)))
            + meta
            + body
        )
        with self._cond:
            if self._closed:
                raise OSError(errno.ESHUTDOWN, "the spool is closed")
            seg = self._active
            assert seg.fd is not None
            try:  # at `size`, not appended: the next record overwrites a failed partial one
                _write_all(seg.fd, record, seg.size)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(seg.fd, seg.size)
                raise
            seg.size += len(record)
            seg.records += 1
            seg.digest.update(record)
            self.backlog += len(record)
            self._cache(seg, batch)
            seg.writers += 1
            end = seg.size
        try:
            self._sync(seg, end)
        finally:
            with self._cond:
                seg.writers -= 1
                self._cond.notify_all()

    def _cache(self, seg: _Segment, batch: Batch | None) -> None:
        """Keep the mapped rows for the loader, until the cache bound says parse from disk."""
        if seg.batch is None:
            return
        if batch is None or self._cached + len(batch) > self._max_cached:
            self._cached -= len(seg.batch)
            seg.batch = None
            return
        seg.batch.rows.extend(batch.rows)
        for name, values in batch.evaluations.items():
            seg.batch.evaluations[name].extend(values)
        seg.batch.quarantine.extend(batch.quarantine)
        seg.batch.skipped.update(batch.skipped)
        self._cached += len(batch)

    def _sync(self, seg: _Segment, end: int) -> None:
        with seg.sync_lock:
            if seg.synced >= end:
                return  # another writer's fsync already covered this record
            target = seg.size  # every byte counted in size has been written
            assert seg.fd is not None
            os.fdatasync(seg.fd)
            seg.synced = target

    def rotate(self) -> list[_Segment]:
        """Seal the active segment (when it holds anything); all sealed segments, oldest first."""
        with self._cond:
            busy = self._active.size > 0 and not self._closed
        fresh = self._new_segment() if busy else None
        with self._cond:
            old = self._active
            if fresh is not None and self._closed:  # closed meanwhile: keep what we had
                os.close(fresh.fd)  # type: ignore[arg-type]
                fresh.path.unlink(missing_ok=True)
                fresh = None
            if fresh is not None:
                self._active = fresh
                while old.writers:
                    self._cond.wait()
                self._sealed.append(old)
            sealed = list(self._sealed)
        if fresh is not None:
            self._seal(old)
        return sealed

    def _seal(self, seg: _Segment) -> None:
        if seg.fd is None:
            return
        try:
            if os.fstat(seg.fd).st_size > seg.size:  # the remains of a failed write
                os.ftruncate(seg.fd, seg.size)
            os.fdatasync(seg.fd)
            seg.synced = seg.size
        finally:
            os.close(seg.fd)
            seg.fd = None

    def done(self, seg: _Segment) -> None:
        """The segment is in the warehouse: forget it."""
        seg.path.unlink(missing_ok=True)
        try:
            self._sync_directory()
        except OSError as exc:  # a resurrected segment is harmless: loads dedupe
            log.warning("cannot fsync the spool directory %s: %s", self.directory, exc)
        with self._cond:
            if seg in self._sealed:
                self._sealed.remove(seg)
            self.backlog -= seg.size
            if seg.batch is not None:
                self._cached -= len(seg.batch)
                seg.batch = None

    def drop_cache(self, seg: _Segment) -> None:
        with self._cond:
            if seg.batch is not None:
                self._cached -= len(seg.batch)
                seg.batch = None

    def close(self) -> None:
        """Stop taking records; an empty active segment is removed, a full one stays sealed."""
        with self._cond:
            self._closed = True
            while self._active.writers:
                self._cond.wait()
            seg = self._active
        self._seal(seg)
        if seg.size == 0:
            seg.path.unlink(missing_ok=True)
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


@dataclass(frozen=True)
class SpoolRecord:
    offset: int
    meta: dict[str, Any]
    body: bytes


def read_segment(path: Path) -> Iterator[SpoolRecord | tuple[int, str]]:
    """Every record of a segment, streamed; a damaged one comes back as (offset, reason).

    A torn last record (the process died inside a write) was never acknowledged and is
    skipped silently; damage before the end is reported so the loader can quarantine it.
    """
    with path.open("rb") as fh:
        pos = 0
        while True:
            head = fh.read(_HEADER.size)
            if len(head) < _HEADER.size:
                return  # the end, or a torn header at the end
            magic, meta_len, body_len, crc = _HEADER.unpack(head)
            if magic != _MAGIC:
                yield pos, "spool record header is damaged; the rest of the segment is skipped"
                return
            payload = fh.read(meta_len + body_len)
            if len(payload) < meta_len + body_len:
                return  # torn record at the end: never acknowledged
            if zlib.crc32(payload) != crc:
                yield pos, "spool record checksum mismatch (damaged on disk)"
            else:
                try:
                    meta = orjson.loads(payload[:meta_len])
                except orjson.JSONDecodeError:
                    yield pos, "spool record metadata is not JSON"
                else:
                    yield SpoolRecord(pos, meta, payload[meta_len:])
            pos += _HEADER.size + meta_len + body_len


# -- request decoding --------------------------------------------------------------------------
class _Reply(Exception):
    """Stop handling this request and answer with an error Status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        close: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.close = close


def inflate(data: bytes, coding: str, limit: int) -> bytes:
    """Undo gzip or deflate, refusing (OverflowError) output beyond `limit` bytes.

    Inflates in 1 MiB steps, so a decompression bomb costs about `limit` of memory before
    it is refused; a truncated stream is an error rather than a silently shorter body.
    """
    if coding == "gzip":
        wbits = 31
    elif data[:1] and (data[0] & 0x0F) == 8 and int.from_bytes(data[:2], "big") % 31 == 0:
        wbits = 15  # zlib-wrapped, as RFC 9110 says deflate is
    else:
        wbits = -15  # raw deflate, which some clients send instead
    out = bytearray()
    d = zlib.decompressobj(wbits)
    pending = data
    while True:
        chunk = d.decompress(pending, _INFLATE_STEP)
        out += chunk
        if len(out) > limit:
            raise OverflowError(f"the body inflates to more than {limit} bytes")
        pending = d.unconsumed_tail
        if d.eof:
            rest = d.unused_data
            if coding == "gzip" and rest[:2] == b"\x1f\x8b":  # another gzip member
                d = zlib.decompressobj(wbits)
                pending = rest
                continue
            if rest.strip(b"\x00"):
                raise ValueError(f"{len(rest)} bytes of garbage after the {coding} stream")
            return bytes(out)
        if not pending and len(chunk) < _INFLATE_STEP:
            raise ValueError(f"the {coding} stream is truncated")


def count_items(signal: str, request: Any) -> int:
    """Spans or log records in a decoded protobuf request."""
    if signal == "logs":
        return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


def count_json_items(signal: str, doc: dict[str, Any]) -> int:
    """Spans or log records in an OTLP/JSON request, counting only where the shape allows."""
    outer, inner, leaf = (
        ("resourceLogs", "scopeLogs", "logRecords")
        if signal == "logs"
        else ("resourceSpans", "scopeSpans", "spans")
    )
    total = 0
    for resource in doc.get(outer) or ():
        scopes = resource.get(inner) if isinstance(resource, dict) else None
        for scope in scopes if isinstance(scopes, list) else ():
            items = scope.get(leaf) if isinstance(scope, dict) else None
            total += len(items) if isinstance(items, list) else 0
    return total


@dataclass
class Decoded:
    """One request, mapped: the Batch, and the counts for `partial_success`."""

    batch: Batch
    total: int
    rejected: int

    @property
    def empty(self) -> bool:
        b = self.batch
        return not b.rows and not b.evaluation_count and not b.quarantine


def decode(signal: str, encoding: str, body: bytes, mapping: Mapping, location: str) -> Decoded:
    """Map one request body; raises _Reply(400) when it is not an OTLP request at all."""
    batch = Batch(mapping)
    if encoding == "proto":
        cls = ExportLogsServiceRequest if signal == "logs" else ExportTraceServiceRequest
        try:
            request = cls.FromString(body)
        except DecodeError as exc:
            raise _Reply(400, f"not a valid OTLP protobuf {signal} request: {exc}") from None
        total = count_items(signal, request)
        if total:
            batch.add_proto(body, location, signal=signal)
    else:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise _Reply(400, f"not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise _Reply(400, f"expected a JSON object, got {type(doc).__name__}")
        key = "resourceLogs" if signal == "logs" else "resourceSpans"
        if key not in doc:
            other = next((k for k in _OTHER_SIGNAL_KEYS if k in doc), None)
            if other:
                raise _Reply(
                    400, f"this is a {other} request; send it to {_OTHER_SIGNAL_KEYS[other]}"
                )
            return Decoded(batch, 0, 0)  # only unknown fields: an empty request
        if not isinstance(doc[key], list):
            raise _Reply(400, f"{key} is not a list")
        total = count_json_items(signal, doc)
        batch.add_json(doc, location, signal=signal)
    if signal == "logs":
        ignored = sum(n for what, n in batch.skipped.items() if what.startswith("log records"))
        accepted = batch.evaluation_count + ignored
    else:
        accepted = len(batch)
    return Decoded(batch, total, max(total - accepted, 0))


def _status_body(encoding: str, status: int, message: str) -> bytes:
    code = _RPC_CODES.get(status, 2)
    if encoding == "proto":
        if _RpcStatus is not None:
            return _RpcStatus(code=code, message=message).SerializeToString()
        text = message.encode()  # google.rpc.Status: 1 code (varint), 2 message (string)
        return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text
    return orjson.dumps({"code": code, "message": message})


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        bits, n = n & 0x7F, n >> 7
        out.append(bits | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _success_body(encoding: str, signal: str, rejected: int, message: str) -> bytes:
    partial = rejected > 0 or bool(message)
    if encoding == "json":
        if not partial:
            return b"{}"
        key = "rejectedLogRecords" if signal == "logs" else "rejectedSpans"
        return orjson.dumps(
            {"partialSuccess": {key: str(rejected), "errorMessage": message}}
        )  # int64 is a decimal string in proto3 JSON
    if signal == "logs":
        logs = ExportLogsPartialSuccess(rejected_log_records=rejected, error_message=message)
        return ExportLogsServiceResponse(
            partial_success=logs if partial else None
        ).SerializeToString()
    spans = ExportTracePartialSuccess(rejected_spans=rejected, error_message=message)
    return ExportTraceServiceResponse(
        partial_success=spans if partial else None
    ).SerializeToString()


def _partial_message(decoded: Decoded, signal: str) -> str:
    q = decoded.batch.quarantine
    if not q:
        return ""
    what = "log records" if signal == "logs" else "spans"
    head = "; ".join(f"{loc.split(': ', 1)[-1]}: {err}" for loc, err, _ in q[:3])
    more = f" (and {len(q) - 3} more)" if len(q) > 3 else ""
    lead = f"{decoded.rejected} of {decoded.total} {what} rejected" if decoded.rejected else ""
    lead = lead or "accepted with warnings"
    return f"{lead}: {head}{more}; they are kept in the warehouse's quarantine table"[:2000]


# -- HTTP --------------------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    receiver: Receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that vanish mid-request are routine; a traceback per reset is noise.
        log.debug("connection from %s failed", client_address, exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: exporters reuse their connection
    server_version = "hybridlens-otlp"
    timeout = 60  # seconds a connection may sit silent mid-request
    server: _Server

    # -- plumbing ---------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_POST(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def handle_expect_100(self) -> bool:
        """Refuse before the body is sent when the headers already decide the answer."""
        try:
            self._precheck()
        except _Reply as reply:
            reply.close = True  # the client may or may not send the body now
            self._send_status(reply)
            return False
        return super().handle_expect_100()

    def _dispatch(self) -> None:
        receiver = self.server.receiver
        self._encoding = "json"
        self._replied = False
        try:
            self._serve(receiver)
        except _Reply as reply:
            if not self._replied:
                self._send_status(reply)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # a bad request must never take the server down
            log.exception("unexpected error handling %s %s", self.command, self.path)
            if not self._replied:
                self._send_status(_Reply(500, f"internal error: {exc}", close=True))
            self.close_connection = True

    def _precheck(self) -> tuple[str, str, str]:
        """Everything decidable from the headers: (signal, encoding, content coding)."""
        receiver = self.server.receiver
        ctype = self.headers.get("Content-Type", "")
        self._encoding = _CONTENT_TYPES.get(ctype.split(";", 1)[0].strip().lower(), "json")
        path = urlsplit(self.path).path.rstrip("/") or "/"
        signal = SIGNALS.get(path)
        if signal is None:
            hint = (
                "; GPU metrics come from the DCGM/nvidia-smi collectors"
                if path == "/v1/metrics"
                else ""
            )
            raise _Reply(404, f"no such endpoint {path}: POST OTLP to /v1/traces or /v1/logs{hint}")
        if self.command != "POST":
            raise _Reply(
                405, f"{self.command} is not allowed on {path}; use POST", headers={"Allow": "POST"}
            )
        if receiver.token is not None and not self._authorized(receiver.token):
            raise _Reply(
                401,
                "missing or wrong bearer token (send 'Authorization: Bearer <token>')",
                headers={"WWW-Authenticate": 'Bearer realm="hybridlens"'},
            )
        media = ctype.split(";", 1)[0].strip().lower()
        encoding = _CONTENT_TYPES.get(media)
        if encoding is None:
            raise _Reply(
                415,
                f"unsupported Content-Type {ctype or '(none)'!r}: send application/x-protobuf "
                "or application/json",
            )
        charset = self.headers.get_param("charset", header="Content-Type")
        if encoding == "json" and isinstance(charset, str) and charset.lower() not in _UTF8:
            raise _Reply(415, f"OTLP/JSON must be UTF-8, not {charset}")
        coding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        if coding not in ("identity", "gzip", "deflate"):
            raise _Reply(
                415, f"unsupported Content-Encoding {coding!r}: send gzip, deflate or none"
            )
        length = self.headers.get("Content-Length")
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        if length is None and not chunked:
            raise _Reply(411, "a Content-Length (or chunked transfer) is required", close=True)
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                raise _Reply(400, f"bad Content-Length {length!r}", close=True) from None
            if size < 0:
                raise _Reply(400, f"bad Content-Length {length!r}", close=True)
            if size > _wire_limit(receiver.max_body_bytes, coding):
                raise _Reply(
                    413,
                    f"body of {size} bytes exceeds the {receiver.max_body_bytes} byte limit",
                    close=True,
                )
        if receiver.closing:
            raise _Reply(503, "the receiver is shutting down", headers={"Retry-After": "5"})
        if receiver.backlogged():
            raise _Reply(
                503,
                "the spool backlog is over its bound; the loader is behind (is the warehouse "
                "locked by a long job?)",
                headers={"Retry-After": str(receiver.retry_after_s)},
            )
        return signal, encoding, coding

    def _authorized(self, token: str) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode(), token.encode())

    # -- the request ------------------------------------------------------------------------
    def _serve(self, receiver: Receiver) -> None:
        try:
            signal, encoding, coding = self._precheck()
        except _Reply as reply:
            if not reply.close:
                reply.close = not self._drain()
            raise
        if not receiver.slots.acquire(timeout=10):
            raise _Reply(
                503, "too many requests in progress", headers={"Retry-After": "1"}, close=True
            )
        try:
            receiver.inflight(+1)
            try:
                self._accept(receiver, signal, encoding, coding)
            finally:
                receiver.inflight(-1)
        finally:
            receiver.slots.release()

    def _accept(self, receiver: Receiver, signal: str, encoding: str, coding: str) -> None:
        limit = receiver.max_body_bytes
        body = self._read_body(_wire_limit(limit, coding))
        if coding != "identity":
            try:
                body = inflate(body, coding, limit)
            except OverflowError:
                raise _Reply(413, f"the body inflates past the {limit} byte limit") from None
            except (zlib.error, ValueError) as exc:
                raise _Reply(400, f"cannot decompress the {coding} body: {exc}") from None
        elif len(body) > limit:
            raise _Reply(413, f"body exceeds the {limit} byte limit")
        received = time.time_ns()
        peer = self.client_address[0] if self.client_address else "?"
        location = _location(self.path, peer, received)
        decoded = decode(signal, encoding, body, receiver.mapping, location)
        if not decoded.empty:
            meta = orjson.dumps(
                {"signal": signal, "encoding": encoding, "peer": peer, "at": received}
            )
            try:
                receiver.spool.append(meta, body, decoded.batch)
            except OSError as exc:
                log.error("cannot write the spool %s: %s", receiver.spool.directory, exc)
                raise _Reply(
                    503,
                    f"cannot write the spool: {exc.strerror or exc}",
                    headers={"Retry-After": "5"},
                ) from None
        receiver.count(decoded)
        message = _partial_message(decoded, signal)
        self._send(200, _success_body(encoding, signal, decoded.rejected, message), encoding)

    def _read_body(self, limit: int) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        size = int(self.headers["Content-Length"])
        body = self.rfile.read(size)
        if len(body) < size:
            raise ConnectionError("the client closed the connection mid-body")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        out = bytearray()
        while True:
            line = self.rfile.readline(1024)
            if not line.endswith(b"\n"):
                raise _Reply(400, "malformed chunk header", close=True)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _Reply(400, "malformed chunk size", close=True) from None
            if size == 0:
                while self.rfile.readline(8192).strip():
                    pass  # trailers
                return bytes(out)
            if len(out) + size > limit:
                raise _Reply(413, f"body exceeds the {limit} byte limit", close=True)
            data = self.rfile.read(size)
            if len(data) < size:
                raise ConnectionError("the client closed the connection mid-chunk")
            out += data
            self.rfile.readline(8)

    def _drain(self) -> bool:
        """Read and drop a small unread body so the connection can be reused."""
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit() or int(length) > _DRAIN_LIMIT:
            return False
        size = int(length)
        return len(self.rfile.read(size)) == size

    def _send_status(self, reply: _Reply) -> None:
        if self.server.receiver.count_rejected(reply.status):
            log.warning("answered %d to %s: %s", reply.status, self.address_string(), reply.message)
        else:
            log.debug("answered %d to %s: %s", reply.status, self.address_string(), reply.message)
        body = _status_body(self._encoding, reply.status, reply.message)
        self._send(reply.status, body, self._encoding, reply.headers, close=reply.close)

    def _send(
        self,
        status: int,
        body: bytes,
        encoding: str,
        headers: dict[str, str] | None = None,
        *,
        close: bool = False,
    ) -> None:
        self._replied = True
        self.send_response(status)
        self.send_header("Content-Type", _MEDIA[encoding])
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _wire_limit(limit: int, coding: str) -> int:
    """The most bytes we read off the wire: compression may add a little to incompressible data."""
    return limit if coding == "identity" else limit + limit // 64 + (1 << 20)


def _location(path: str, peer: str, received_ns: int) -> str:
    at = datetime.fromtimestamp(received_ns / 1e9, UTC).isoformat(timespec="milliseconds")
    return f"POST {urlsplit(path).path} from {peer} at {at.replace('+00:00', 'Z')}"


# -- the receiver ------------------------------------------------------------------------------
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
        max_cached_spans: int = DEFAULT_MAX_CACHED_SPANS,
        max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT,
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
        self.max_cached_spans = max_cached_spans
        self.retry_after_s = max(1, math.ceil(flush_interval_s))
        self.slots = threading.BoundedSemaphore(max_concurrent_requests)
        self.stats = Stats()
        self.closing = False
        self._spool: Spool | None = None
        self._server: _Server | None = None
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
        self._spool = Spool(self.spool_dir, self.mapping, self.max_cached_spans)
        try:
            cls = _Server6 if ":" in self.host else _Server
            self._server = cls((self.host, self.port), _Handler)
        except OSError as exc:
            self._spool.close()
            self._spool = None
            raise ReceiverError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
            ) from exc
        self._server.receiver = self
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

    def stop(self, timeout_s: float = 30.0) -> FlushResult:
        """Stop listening, let requests in flight finish, load what was acknowledged."""
        if self._server is None:
            return FlushResult()
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
        result = FlushResult()
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
                self.flush()
                delay = self.flush_interval_s
            except Exception as exc:
                delay = min(max(delay, self.flush_interval_s) * 2, 60.0)
                log.error(
                    "loading the spool failed (%s); retrying in %.0f s, nothing is lost",
                    exc,
                    delay,
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )

    def flush(self) -> FlushResult:
        """Seal the active segment and load every sealed one, oldest first."""
        with self._flush_lock:
            total = FlushResult()
            for seg in self.spool.rotate():
                total.add(self._load(seg))
            if total.segments:
                log.info(
                    "loaded %d spans and %d evaluations from %d requests (%d duplicates, %d "
                    "quarantined; publish %.0f ms); spool backlog %d bytes",
                    total.spans,
                    total.evaluations,
                    total.requests,
                    total.duplicates,
                    total.quarantined,
                    total.publish_ms,
                    self.spool.backlog,
                )
            return total

    def _load(self, seg: _Segment) -> FlushResult:
        loaded = self._publish(seg)
        self.spool.done(seg)
        with self._stats_lock:
            self.stats.loaded.add(loaded)
            self.stats.longest_publish_ms = max(self.stats.longest_publish_ms, loaded.publish_ms)
        return loaded

    def _publish(self, seg: _Segment) -> FlushResult:
        """Publish one sealed segment (parsed outside the write lock); raises to retry later."""
        uri = str(seg.path.absolute())
        if seg.recovered:
            digest = content_hash(seg.path)
            if file_state(self.warehouse, uri) == (digest, seg.size):
                log.info("spool segment %s was loaded before the last stop; removing it", uri)
                return FlushResult(segments=1, bytes=seg.size)
        else:
            digest = seg.digest.hexdigest()
        stage = Stage()
        try:
            index = stage.begin(InputReport(uri=uri, content_hash=digest, byte_offset=seg.size))
            if seg.batch is not None:
                requests = seg.records
                self._stage(stage, index, seg.batch)
            else:
                requests = self._stage_from_disk(stage, index, seg)
            if stage.rows() == 0 and not stage.quarantine:
                return FlushResult(segments=1, requests=requests, bytes=seg.size)
            result = publish_each(self.warehouse, stage, source=SOURCE)
        finally:
            stage.close()
        return FlushResult(
            segments=1,
            requests=requests,
            spans=result.rows("spans"),
            duplicates=result.duplicates(),
            evaluations=result.rows("evaluations"),
            quarantined=result.quarantined,
            bytes=seg.size,
            publish_ms=result.duration_ms,
        )

    def _stage(self, stage: Stage, index: int, batch: Batch) -> None:
        spans, evaluations = batch.to_arrow()
        stage.add("spans", spans, index)
        stage.add("evaluations", evaluations, index)
        for location, error, excerpt in batch.quarantine:
            stage.reject(index, location, error, excerpt)
        if batch.skipped:
            stage.inputs[index].skipped.update(batch.skipped)

    def _stage_from_disk(self, stage: Stage, index: int, seg: _Segment) -> int:
        """Parse a segment again from its file, staging it in bounded pieces."""
        self.spool.drop_cache(seg)
        batch = Batch(self.mapping)
        requests = 0
        for record in read_segment(seg.path):
            if isinstance(record, tuple):
                offset, reason = record
                batch.quarantine.append((f"spool byte {offset}", reason, ""))
                continue
            requests += 1
            meta = record.meta
            signal = "logs" if meta.get("signal") == "logs" else "traces"
            location = _location(
                "/v1/logs" if signal == "logs" else "/v1/traces",
                str(meta.get("peer", "?")),
                int(meta.get("at") or 0),
            )
            if meta.get("encoding") == "json":
                try:
                    batch.add_json(orjson.loads(record.body), location, signal=signal)
                except orjson.JSONDecodeError as exc:  # was valid when accepted: disk damage
                    batch.quarantine.append((location, f"not valid JSON: {exc}", ""))
            else:
                batch.add_proto(record.body, location, signal=signal)
            if len(batch) >= LOAD_CHUNK_SPANS:
                self._stage(stage, index, batch)
                batch = Batch(self.mapping)
        self._stage(stage, index, batch)
        return requests


# -- the command ---------------------------------------------------------------------------------
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
            f"hybridlens: OTLP/HTTP receiver on {receiver.url} (POST /v1/traces, /v1/logs; "
            f"{auth}); spool {receiver.spool_dir}; warehouse {warehouse.path}; Ctrl-C stops it",
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
