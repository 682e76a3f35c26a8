"""The HTTP side of the receiver: headers checked first, then the body, then decode and spool.

The order is what keeps one client from costing the others: everything decidable from the
headers is answered before the body is read (with `Expect: 100-continue`, before it is
sent); the body is read without a decode slot, against a deadline and a minimum rate, its
bytes charged to the receiver's buffer budget; only a complete body takes decode budget.
"""

from __future__ import annotations

import hmac
import logging
import socket
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from ingest.admission import BodyReader, Charge, DecodeSlot
from ingest.contract import Collected
from ingest.otlp import Batch
from ingest.otlp_files import batch_collected
from ingest.otlp_http import (
    CONTENT_TYPES,
    MEDIA,
    SIGNALS,
    UTF8,
    Reply,
    decode,
    inflate,
    partial_message,
    request_location,
    status_body,
    success_body,
)
from ingest.otlp_metrics_http import decode_metrics, metrics_success_body

if TYPE_CHECKING:
    from ingest.receiver import Receiver

log = logging.getLogger("ingest.receiver")

_DRAIN_LIMIT = 1 << 20  # bodies of rejected requests up to this size are read and dropped
CACHE_REQUEST_SPANS = 16_384  # requests up to this many spans keep their mapped rows
ARROW_REQUEST_SPANS = 64  # from this many, as an Arrow frame (a quarter of their size as rows)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    receiver: Receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that vanish mid-request are routine; a traceback per reset is noise.
        log.debug("connection from %s failed", client_address, exc_info=True)


class Server6(Server):
    address_family = socket.AF_INET6


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: exporters reuse their connection
    server_version = "hybridlens-otlp"
    timeout = 60  # seconds a connection may sit silent mid-request
    server: Server

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
        except Reply as reply:
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
        except Reply as reply:
            if not self._replied:
                self._send_status(reply)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # a bad request must never take the server down
            log.exception("unexpected error handling %s %s", self.command, self.path)
            if not self._replied:
                self._send_status(Reply(500, f"internal error: {exc}", close=True))
            self.close_connection = True

    def _precheck(self) -> tuple[str, str, str]:
        """Everything decidable from the headers: (signal, encoding, content coding)."""
        receiver = self.server.receiver
        ctype = self.headers.get("Content-Type", "")
        self._encoding = CONTENT_TYPES.get(ctype.split(";", 1)[0].strip().lower(), "json")
        path = urlsplit(self.path).path.rstrip("/") or "/"
        signal = SIGNALS.get(path)
        if signal is None:
            raise Reply(
                404, f"no such endpoint {path}: POST OTLP to /v1/traces, /v1/logs or /v1/metrics"
            )
        if self.command != "POST":
            raise Reply(
                405, f"{self.command} is not allowed on {path}; use POST", headers={"Allow": "POST"}
            )
        if receiver.token is not None and not self._authorized(receiver.token):
            raise Reply(
                401,
                "missing or wrong bearer token (send 'Authorization: Bearer <token>')",
                headers={"WWW-Authenticate": 'Bearer realm="hybridlens"'},
            )
        media = ctype.split(";", 1)[0].strip().lower()
        encoding = CONTENT_TYPES.get(media)
        if encoding is None:
            raise Reply(
                415,
                f"unsupported Content-Type {ctype or '(none)'!r}: send application/x-protobuf "
                "or application/json",
            )
        charset = self.headers.get_param("charset", header="Content-Type")
        if encoding == "json" and isinstance(charset, str) and charset.lower() not in UTF8:
            raise Reply(415, f"OTLP/JSON must be UTF-8, not {charset}")
        coding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        if coding not in ("identity", "gzip", "deflate"):
            raise Reply(415, f"unsupported Content-Encoding {coding!r}: send gzip, deflate or none")
        length = self.headers.get("Content-Length")
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        if length is None and not chunked:
            raise Reply(411, "a Content-Length (or chunked transfer) is required", close=True)
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                raise Reply(400, f"bad Content-Length {length!r}", close=True) from None
            if size < 0:
                raise Reply(400, f"bad Content-Length {length!r}", close=True)
            if size > _wire_limit(receiver.max_body_bytes, coding):
                raise Reply(
                    413,
                    f"body of {size} bytes exceeds the {receiver.max_body_bytes} byte limit",
                    close=True,
                )
        if receiver.closing:
            raise Reply(503, "the receiver is shutting down", headers={"Retry-After": "5"})
        if receiver.backlogged():
            raise Reply(
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
        except Reply as reply:
            if not reply.close:
                reply.close = not self._drain()
            raise
        receiver.inflight(+1)
        buffered = Charge(receiver.buffered, receiver.admission_wait_s)
        try:
            body = self._receive(receiver, coding, buffered)
            slot = DecodeSlot(receiver.decoding, receiver.admission_wait_s)
            try:
                slot.take(len(body))  # only now, with the whole body in
                self._accept(receiver, signal, encoding, body, slot)
            finally:
                slot.release()
        finally:
            buffered.release()
            receiver.inflight(-1)

    def _receive(self, receiver: Receiver, coding: str, buffered: Charge) -> bytes | bytearray:
        """The whole body, decompressed, read under the deadline and the rate minimum."""
        limit = receiver.max_body_bytes
        reader = BodyReader(
            self.rfile,
            self.connection,
            deadline_s=receiver.body_timeout_s,
            min_rate=receiver.min_body_rate,
            grace_s=receiver.body_grace_s,
            charge=buffered.add,
        )
        try:
            wire = self._read_body(reader, _wire_limit(limit, coding))
        finally:
            self.connection.settimeout(self.timeout)  # keep-alive idle timeout again
        if coding == "identity":
            if len(wire) > limit:
                raise Reply(413, f"body exceeds the {limit} byte limit")
            return wire
        try:
            body = inflate(wire, coding, limit, buffered.add)
        except OverflowError:
            raise Reply(413, f"the body inflates past the {limit} byte limit") from None
        except (zlib.error, ValueError) as exc:
            raise Reply(400, f"cannot decompress the {coding} body: {exc}") from None
        buffered.free(len(wire))
        return body

    def _accept(
        self,
        receiver: Receiver,
        signal: str,
        encoding: str,
        body: bytes | bytearray,
        slot: DecodeSlot,
    ) -> None:
        received = time.time_ns()
        peer = self.client_address[0] if self.client_address else "?"
        location = request_location(self.path, peer, received)
        meta = orjson.dumps({"signal": signal, "encoding": encoding, "peer": peer, "at": received})
        if signal == "metrics":
            metrics = decode_metrics(encoding, body, receiver.config, location, slot.items)
            if not metrics.empty:
                self._spool(receiver, meta, body, metrics.collected)
            receiver.count_metrics(metrics)
            self._send(200, metrics_success_body(encoding, metrics), encoding)
            return
        decoded = decode(signal, encoding, body, receiver.mapping, location, slot.items)
        if not decoded.empty:
            self._spool(receiver, meta, body, _for_loader(decoded.batch))
        receiver.count(decoded)
        message = partial_message(decoded, signal)
        self._send(200, success_body(encoding, signal, decoded.rejected, message), encoding)

    def _spool(
        self,
        receiver: Receiver,
        meta: bytes,
        body: bytes | bytearray,
        mapped: Collected | Batch | None,
    ) -> None:
        """On stable storage before the 200, or a 503 the client retries."""
        try:
            receiver.spool.append(meta, body, mapped)
        except OSError as exc:
            log.error("cannot write the spool %s: %s", receiver.spool.directory, exc)
            raise Reply(
                503,
                f"cannot write the spool: {exc.strerror or exc}",
                headers={"Retry-After": "5"},
            ) from None

    def _read_body(self, reader: BodyReader, limit: int) -> bytes | bytearray:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(reader, limit)
        return reader.read(int(self.headers["Content-Length"]))

    def _read_chunked(self, reader: BodyReader, limit: int) -> bytes | bytearray:
        out = bytearray()
        while True:
            line = reader.readline(1024)
            if not line.endswith(b"\n"):
                raise Reply(400, "malformed chunk header", close=True)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise Reply(400, "malformed chunk size", close=True) from None
            if size == 0:
                while reader.readline(8192).strip():
                    pass  # trailers
                return out
            if len(out) + size > limit:
                raise Reply(413, f"body exceeds the {limit} byte limit", close=True)
            out += reader.read(size)
            reader.readline(8)

    def _drain(self) -> bool:
        """Read and drop a small unread body so the connection can be reused."""
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit() or int(length) > _DRAIN_LIMIT:
            return False
        size = int(length)
        return len(self.rfile.read(size)) == size

    def _send_status(self, reply: Reply) -> None:
        if self.server.receiver.count_rejected(reply.status):
            log.warning("answered %d to %s: %s", reply.status, self.address_string(), reply.message)
        else:
            log.debug("answered %d to %s: %s", reply.status, self.address_string(), reply.message)
        body = status_body(self._encoding, reply.status, reply.message)
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
        self.send_header("Content-Type", MEDIA[encoding])
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


def _for_loader(batch: Batch) -> Collected | Batch | None:
    """What a request's mapped rows are kept as for the loader: an Arrow frame (a quarter
    of their size as Python rows, but ~26 KB whatever its length), the rows of a small
    request, or nothing for a large one (the loader parses it again from the spool, under
    the decode budget)."""
    if len(batch) > CACHE_REQUEST_SPANS:
        return None
    if len(batch) < ARROW_REQUEST_SPANS:
        return batch
    collected = batch_collected(batch)
    # an empty evaluations frame beside every request's spans would cost ~26 KB each
    collected.frames = {t: f for t, f in collected.frames.items() if f.num_rows}
    return collected
