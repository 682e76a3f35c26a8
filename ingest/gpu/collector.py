"""The `gpu` collector: any GPU telemetry input, its format told from its content.

One collector for every GPU format, so the driver, `ingest_log.source` and the command
line see one source family; the formats (`FORMATS`) are tried in order on the input's
first bytes, never on its name or a flag. Each format reads the whole input into readings
and the one builder (`samples.rows`) makes the rows, so a format is only a reader.

Inputs are read whole from their first byte even when the driver resumes a grown file:
an nvidia-smi log's header is at its top, and the table's merge on (host, GPU, MIG
instance, time) makes the samples read before count once. A file's unterminated last
line is left for the next run while the file is younger than `ingest.settle_minutes`
(still being written); an older file, or a fetched body, is read to its end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ingest.contract import Collected, Unit
from ingest.files import printable
from ingest.framing import GZIP_MAGIC, ZSTD_MAGIC
from ingest.gpu.dcgm import DcgmExposition
from ingest.gpu.nvidia_smi import NvidiaSmiCsv
from ingest.gpu.otlp_metrics import OtlpMetrics, readings_from_request
from ingest.gpu.readings import GpuFormat, Parsed, ReadOptions
from ingest.gpu.samples import rows
from warehouse.config import Config

NAME = "gpu"
TABLE = "gpu_samples"
SNIFF_BYTES = 4096
# A zstd block yields nothing until it is whole, and a block holds up to 128 KiB, so a
# compressed input is sniffed on a longer head; opening it is capped at 64 KiB of output.
# (A 4 KiB head of a demo file whose first block was 16 KiB came out empty: "in none of
# the GPU formats".)
COMPRESSED_SNIFF_BYTES = 1 << 18
MAX_INPUT_BYTES = 1 << 30  # an input is read into memory whole: refuse anything bigger
# The formats, tried in this order; OTLP metrics (ingest/gpu/otlp_metrics.py) joins here.
# Formats whose writers append a line at a time, so an unterminated last line of a fresh
# file is still being written (OTLP metrics files are records of their own framing).
LINE_FORMATS = frozenset({"dcgm", "nvidia-smi"})
FORMATS: tuple[GpuFormat, ...] = (DcgmExposition(), NvidiaSmiCsv(), OtlpMetrics())
OTLP = OtlpMetrics().name  # the `source` of a receiver's metrics rows, as of a file's


@dataclass(frozen=True)
class GpuCollector:
    """GPU samples from DCGM expositions, nvidia-smi logs and the other GPU formats."""

    name: str = NAME
    tables: tuple[str, ...] = (TABLE,)
    options: ReadOptions = field(default_factory=ReadOptions)
    formats: tuple[GpuFormat, ...] = FORMATS

    def format_of(self, head: bytes) -> GpuFormat | None:
        return next((f for f in self.formats if f.sniff(head)), None)

    def sniff(self, head: bytes) -> bool:
        return self.format_of(head) is not None

    def plan(self, unit: Unit, size: int) -> list[Unit]:
        """One unit per input: a scrape or a log parses as a whole."""
        return [Unit(unit.uri, unit.path, unit.start, None, True, True, unit.body)]

    def collect(self, unit: Unit, config: Config) -> Collected:
        try:
            data = _read(unit)
        except (OSError, ValueError) as exc:
            return Collected(error=f"cannot read {printable(unit.uri)}: {exc}", resumable=False)
        size = len(data)
        pending = 0
        fmt = self.format_of(_sniff_head(data))
        if (
            fmt is not None
            and fmt.name in LINE_FORMATS  # text written a line at a time; not a compressed stream
            and unit.body is None
            and data
            and not data.endswith(b"\n")
            and _growing(unit, config)
        ):
            pending = size - (data.rfind(b"\n") + 1)
            data = data[: size - pending]
        if fmt is None:
            names = ", ".join(f.name for f in self.formats)
            return Collected(
                error=f"{printable(unit.uri)} is in none of the GPU formats ({names}): its "
                "format is told from its first lines, whatever its name",
                complete_offset=size,
                resumable=False,
            )
        parsed = fmt.read(data, unit, self.options)
        collected = _collected(parsed, config, self.options, fmt.name)
        collected.lines = data.count(b"\n")
        collected.complete_offset, collected.pending_bytes = size - pending, pending
        return collected


def request_collected(
    body: bytes, encoding: str, location: str, config: Config, options: ReadOptions | None = None
) -> Collected:
    """One `POST /v1/metrics` body (decompressed; `encoding` "json" or "proto") as the
    collector's frames: the receiver's accept time and its loader map a request this way."""
    content_type = "application/json" if encoding == "json" else "application/x-protobuf"
    parsed = readings_from_request(body, content_type, location)
    collected = _collected(parsed, config, options or ReadOptions(), OTLP)
    collected.lines, collected.complete_offset = 1, len(body)
    return collected


def _collected(parsed: Parsed, config: Config, options: ReadOptions, source: str) -> Collected:
    """A format's readings as `gpu_samples` rows, with what the reader and the builder
    rejected and skipped."""
    table, rejected, counts = rows(parsed.readings, config, options, source)
    skipped = parsed.skipped.copy()
    skipped.update(counts)
    return Collected(frames={TABLE: table}, rejected=[*parsed.rejected, *rejected], skipped=skipped)


def _growing(unit: Unit, config: Config) -> bool:
    """A file modified less than `ingest.settle_minutes` ago may still be being written."""
    try:
        age = time.time() - unit.path.stat().st_mtime if unit.path is not None else None
    except OSError:
        return False
    return age is not None and age < config.ingest.settle_minutes * 60


def _sniff_head(data: bytes) -> bytes:
    compressed = data[:2] == GZIP_MAGIC or data[:4] == ZSTD_MAGIC
    return data[: COMPRESSED_SNIFF_BYTES if compressed else SNIFF_BYTES]


def _read(unit: Unit) -> bytes:
    if unit.body is not None:
        return unit.body
    if unit.path is None:
        raise ValueError("the unit names neither a file nor a body")
    with unit.path.open("rb") as fh:
        data = fh.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise ValueError(f"larger than {MAX_INPUT_BYTES} bytes; split it")
    return data
