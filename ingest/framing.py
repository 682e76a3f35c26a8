"""Turn the bytes of a telemetry file into records, sniffing the format from the bytes.

Collector file exporters write JSON lines, length-prefixed frames (protobuf, or anything
compressed in the legacy mode), or a zstd stream of JSON lines; people also hand over
single pretty-printed JSON documents and gzip files. The extension is not trusted, and
files are streamed so that a multi-gigabyte export never sits in memory whole.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

import orjson
import zstandard

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
MAX_RECORD_BYTES = 64 * 1024 * 1024  # the OTLP/HTTP request limit, also per file record
# Input that yields no record for this long is not telemetry (zeros, padding): refused,
# so 16 MiB of zeros or a small zstd file of gigabytes of them costs a moment, not minutes.
MAX_EMPTY_RUN = 1 << 20  # bytes of blank lines or zero-length frames in a row
ZERO_HEAD = 64  # an input whose first this many bytes are all zero is refused outright


@dataclass(frozen=True)
class Record:
    """One encoded message (a JSON document or a protobuf message) and where it came from."""

    payload: bytes
    encoding: str  # "json" | "proto"
    location: str  # "line 12" | "frame 3" | "document"
    error: str | None = None  # set when the framing itself is broken for this record


@dataclass
class Framing:
    """What the sniffer found; `complete_offset` is where the last complete record ends."""

    kind: str = "unknown"
    compression: str = "none"
    complete_offset: int = 0
    pending_bytes: int = 0
    lines: int = 0  # lines or frames read, so a chunk's record numbers can be rebased
    empty: int = 0  # zero-length frames, skipped
    cut: bool = False  # a gzip or zstd stream that ends inside a frame (still being written?)


def open_stream(raw: BinaryIO) -> tuple[BinaryIO, str]:
    """Wrap `raw` in a decompressor when its first bytes say gzip or zstd."""
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(cast(Any, raw))
    head = buffered.peek(4)[:4]
    if head[:2] == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=buffered, mode="rb"), "gzip"  # type: ignore[return-value]
    if head[:4] == ZSTD_MAGIC:
        return io.BufferedReader(_ZstdStream(buffered), buffer_size=1 << 20), "zstd"
    return buffered, "none"


class _ZstdStream(io.RawIOBase):
    """The decompressed bytes of concatenated zstd frames; unlike `stream_reader`, it can
    tell a stream that ends inside a frame (`cut`) from one that ends cleanly."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._obj = zstandard.ZstdDecompressor().decompressobj()
        self._fed = False  # bytes of the current frame have been fed to the decompressor
        self._out = b""
        self._feed = 64  # compressed bytes per read, adapted to the ratio seen
        self.cut = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._out:
            # input sized to give about a MiB out: a KiB of zstd can stand for 30 MiB of
            # zeros, and the decompressor cannot be told to stop early
            data = self._raw.read(self._feed)
            if not data:
                self.cut = self._fed and not self._obj.eof
                return 0
            while data:
                if self._obj.eof:
                    self._obj = zstandard.ZstdDecompressor().decompressobj()
                out = self._obj.decompress(data)
                ratio = max(1, len(out) // max(1, len(data) - len(self._obj.unused_data)))
                self._feed = max(64, min(1 << 16, (1 << 20) // ratio))
                self._out += out
                self._fed = True
                data = self._obj.unused_data if self._obj.eof else b""
                if self._obj.eof and not data:
                    self._fed = False
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        self._out = self._out[n:]
        return n


def iter_records(raw: BinaryIO, framing: Framing, *, start: int = 0) -> Iterator[Record]:
    """Yield every record of one input; fills in `framing` as it goes.

    `start` resumes an uncompressed file at a byte offset kept from an earlier run.
    Raises ValueError when the input is no telemetry format we know, or when its gzip or
    zstd stream is corrupt (records before the damage have been yielded by then).
    """
    stream, framing.compression = open_stream(raw)
    try:
        yield from _records(stream, framing, start)
    except EOFError as exc:
        if framing.compression != "gzip":
            raise
        if not framing.lines:  # not one record before the end: no stream of ours
            raise ValueError(f"corrupt gzip stream: {exc}") from exc
        framing.cut = True  # the gzip stream ends before its end marker
    except (OSError, zlib.error, zstandard.ZstdError) as exc:
        if framing.compression == "none":
            raise
        raise ValueError(f"corrupt {framing.compression} stream: {exc}") from exc
    raw_stream = getattr(stream, "raw", None)
    if isinstance(raw_stream, _ZstdStream) and raw_stream.cut:
        if not framing.lines:
            raise ValueError("corrupt zstd stream: it ends inside its first frame")
        framing.cut = True


def _records(stream: BinaryIO, framing: Framing, start: int) -> Iterator[Record]:
    if start and framing.compression == "none":
        stream.seek(start)
    framing.complete_offset = start if framing.compression == "none" else 0
    head = stream.peek(64)[:64] if hasattr(stream, "peek") else b""
    lead = head.lstrip()[:1]
    if len(head) >= ZERO_HEAD and not head.strip(b"\x00"):
        framing.kind = "unknown"
        raise ValueError(f"not OTLP: the input starts with {ZERO_HEAD} zero bytes")
    if lead in (b"{", b"["):
        yield from _json(stream, framing)
    elif head[:1] == b"\x00" or (len(head) >= 5 and _plausible_frame(head)):
        yield from _frames(stream, framing)
    elif head[:1] == b"\x0a":
        framing.kind = "protobuf"
        data = _read_limited(stream, "document")
        framing.complete_offset += len(data)
        yield Record(data, "proto", "document")
    elif not head.strip():
        framing.kind = "empty"
    else:
        framing.kind = "unknown"
        raise ValueError(
            "not OTLP: expected JSON, length-prefixed frames or protobuf; the first bytes "
            f"are {head[:16]!r}"
        )


def _read_limited(stream: BinaryIO, what: str) -> bytes:
    data = stream.read(MAX_RECORD_BYTES + 1)
    if len(data) > MAX_RECORD_BYTES:
        raise ValueError(f"{what} exceeds the {MAX_RECORD_BYTES} byte record limit")
    return data


def _plausible_frame(head: bytes) -> bool:
    size = int.from_bytes(head[:4], "big")
    return 0 < size <= MAX_RECORD_BYTES and head[4:5] in (b"{", b"\x0a", ZSTD_MAGIC[:1])


def _json(stream: BinaryIO, framing: Framing) -> Iterator[Record]:
    line_no = 0
    first = True
    blank = blank_from = 0  # bytes of blank lines in a row, from this line on
    while True:
        line = stream.readline(MAX_RECORD_BYTES + 1)
        if not line:
            return
        line_no += 1
        framing.lines = line_no
        if not line.strip():
            if not blank:
                blank_from = line_no
            blank += len(line)
            if blank > MAX_EMPTY_RUN:
                raise ValueError(
                    f"not OTLP: more than {MAX_EMPTY_RUN} bytes of blank lines from line "
                    f"{blank_from}"
                )
            if line.endswith(b"\n"):
                framing.complete_offset += len(line)
                skipped, lines = _skip_blank_lines(stream)  # in bulk, not a line at a time
                blank += skipped
                framing.complete_offset += skipped
                line_no += lines
                framing.lines = line_no
                continue
        else:
            blank = 0
        if len(line) > MAX_RECORD_BYTES and not line.endswith(b"\n"):
            size, head = len(line), line[:256]
            while line and not line.endswith(b"\n"):  # skip the rest of the giant line
                line = stream.readline(1 << 24)
                size += len(line)
            framing.complete_offset += size
            yield Record(
                head,
                "json",
                f"line {line_no}",
                error=f"record of {size} bytes exceeds the {MAX_RECORD_BYTES} byte limit",
            )
            continue
        if not line.endswith(b"\n") and line.strip() and not _parses(line):
            # The last line, unterminated and not (yet) valid JSON: a record still being
            # written (writers end each one with a newline). Left for the next run.
            framing.kind = "json-lines" if not first else framing.kind
            framing.pending_bytes = len(line)
            return
        if first and line.strip() and not _looks_complete(line) and not _lines_follow(stream):
            # A pretty-printed document: the rest of the input is that one document.
            rest = _read_limited(stream, "document")
            framing.kind = "json-document"
            data = line + rest
            if not _looks_complete(data):
                framing.pending_bytes = len(data)  # still being written: read next run
                return
            framing.complete_offset += len(data)
            yield Record(data, "json", "document")
            return
        first = False
        framing.kind = "json-lines"
        framing.complete_offset += len(line)
        if line.strip():
            yield Record(line, "json", f"line {line_no}")


def _skip_blank_lines(stream: BinaryIO) -> tuple[int, int]:
    """Consume the whole blank lines ahead (bytes, lines), in buffer-sized steps."""
    peek = getattr(stream, "peek", None)
    if peek is None:
        return 0, 0
    skipped = lines = 0
    while skipped <= MAX_EMPTY_RUN:
        ahead = peek(1 << 16)
        run = len(ahead) - len(ahead.lstrip())
        end = ahead.rfind(b"\n", 0, run) + 1  # up to the last newline inside the blank run
        if end == 0:
            break
        stream.read(end)
        skipped += end
        lines += ahead.count(b"\n", 0, end)
        if end < len(ahead):
            break
    return skipped, lines


def _lines_follow(stream: BinaryIO) -> bool:
    """True when the next line is a whole one-line JSON object: the first line was a broken
    JSON line, not the opening of a pretty-printed document (whose next line is indented)."""
    peek = getattr(stream, "peek", None)
    if peek is None:
        return False
    ahead = peek(1 << 16)
    nxt = ahead.split(b"\n", 1)[0]
    return nxt[:2] == b'{"' and len(ahead) > len(nxt) and nxt.rstrip().endswith(b"}")


def _parses(text: bytes) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def _looks_complete(text: bytes) -> bool:
    """Cheap check that a JSON text ends where its outermost brace closes."""
    t = text.rstrip()
    return t.endswith(b"}") or t.endswith(b"]")


def _frames(stream: BinaryIO, framing: Framing) -> Iterator[Record]:
    framing.kind = "length-prefixed"
    frame_no = 0
    empty_run = 0
    while True:
        prefix = stream.read(4)
        if not prefix:
            return
        if len(prefix) < 4:
            framing.pending_bytes = len(prefix)
            return
        size = int.from_bytes(prefix, "big")
        frame_no += 1
        framing.lines = frame_no
        at = framing.complete_offset
        if size == 0:
            more = _zero_frames_ahead(stream)  # skipped in bulk, not a frame at a time
            framing.empty += 1 + more
            frame_no += more
            framing.lines = frame_no
            framing.complete_offset += 4 * (1 + more)
            empty_run += 4 * (1 + more)
            if empty_run > MAX_EMPTY_RUN:
                raise ValueError(
                    f"not OTLP: more than {MAX_EMPTY_RUN // 4} zero-length frames in a row "
                    f"at byte {at}"
                )
            continue
        empty_run = 0
        if size > MAX_RECORD_BYTES:
            yield Record(
                prefix,
                "proto",
                f"frame {frame_no} at byte {at}",
                error=f"frame length {size} exceeds the {MAX_RECORD_BYTES} byte "
                "limit; the rest of the input cannot be framed",
            )
            return
        payload = stream.read(size)
        if len(payload) < size:
            framing.pending_bytes = 4 + len(payload)  # a frame still being written
            return
        framing.complete_offset += 4 + size
        location = f"frame {frame_no}"
        if payload[:4] == ZSTD_MAGIC or payload[:2] == GZIP_MAGIC:
            try:
                payload = decompress(payload, MAX_RECORD_BYTES)
            except (zstandard.ZstdError, zlib.error, OverflowError, EOFError, OSError) as exc:
                yield Record(payload[:256], "proto", location, error=f"cannot decompress: {exc}")
                continue
        encoding = "json" if payload.lstrip()[:1] == b"{" else "proto"
        yield Record(payload, encoding, location)


def _zero_frames_ahead(stream: BinaryIO) -> int:
    """Consume the zero-length frames (four zero bytes each) just ahead; how many."""
    peek = getattr(stream, "peek", None)
    if peek is None:
        return 0
    ahead = peek(1 << 16)
    count = (len(ahead) - len(ahead.lstrip(b"\x00"))) // 4
    if count:
        stream.read(4 * count)
    return count


def decompress(data: bytes, limit: int) -> bytes:
    """Undo a gzip or zstd wrapper, refusing (OverflowError) output beyond `limit` bytes.

    Reads at most limit+1 bytes, so a decompression bomb costs `limit` memory, not more.
    """
    if data[:2] == GZIP_MAGIC:
        out = zlib.decompressobj(wbits=31).decompress(data, limit + 1)
    elif data[:4] == ZSTD_MAGIC:
        reader = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(data), read_across_frames=True
        )
        chunks, got = [], 0
        while got <= limit:
            chunk = reader.read(min(1 << 22, limit + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        out = b"".join(chunks)
    else:
        return data
    if len(out) > limit:
        raise OverflowError(f"decompressed content exceeds {limit} bytes")
    return out
