"""dcgm-exporter's Prometheus text exposition, read with `prometheus_client`'s own parser.

A scrape is one `/metrics` page: one series per (field, GPU) with the GPU's labels on
each. The series of one GPU (or MIG instance) at one time are folded into one reading.
Sample timestamps are used when the exposition has them; a scrape saved without them
takes its time from a `# scraped at` comment, else a time in the file name, else the
file's mtime, so the same file always gets the same time and reading it again adds
nothing. A line the parser refuses is quarantined by number and the rest still loads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from ingest.contract import Rejected, Unit
from ingest.gpu.exposition import metric_families
from ingest.gpu.readings import FIELDS, Parsed, Reading, ReadOptions
from ingest.gpu.samples import CONTAINER_LABELS, NAMESPACE_LABELS, POD_LABELS

SCRAPED_AT = "# scraped at "
_SNIFF_LINE = re.compile(rb"^(# (HELP|TYPE) [A-Za-z_:]|# scraped at |DCGM_FI_[A-Z0-9_]+[{ \t])")
# A time in a file name: 2026-11-30T10-00-00Z, 20261130T100000Z, 2026-11-30_10:00:00 ...
_NAME_TIME = re.compile(
    r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})[T_ -]?(\d{2})[:\-]?(\d{2})[:\-]?(\d{2})(?!\d)"
)
_NAME_EPOCH = re.compile(r"(?<!\d)(1\d{9})(?:\d{3})?(?!\d)")  # 10- or 13-digit epoch
_EPOCH_MIN, _EPOCH_MAX = 946_684_800.0, 32_503_680_000.0  # 2000-01-01 .. 3000-01-01
# Series of one GPU at one time share these labels; the rest of a series' labels are
# folded into its reading (the first series of a GPU wins where they differ). The pod's
# labels are part of it: a time-sliced GPU has its series once per pod, each pod's a
# reading of its own, and the samples builder lists their workloads on the GPU's one row.
_IDENTITY = (
    *("UUID", "uuid", "gpu_uuid", "GPU_I_ID", "Hostname", "hostname", "gpu"),
    *NAMESPACE_LABELS, *POD_LABELS, *CONTAINER_LABELS,
)  # fmt: skip
_WANTED = frozenset(FIELDS)


@dataclass(frozen=True)
class DcgmExposition:
    """A dcgm-exporter `/metrics` page, saved to a file or pulled from an endpoint."""

    name: str = "dcgm"

    def sniff(self, head: bytes) -> bool:
        """The first non-blank line is a HELP/TYPE comment, a scrape time or a DCGM series."""
        for line in head.splitlines():
            if line.strip():
                return _SNIFF_LINE.match(line.lstrip()) is not None
        return False

    def read(self, data: bytes, unit: Unit, options: ReadOptions) -> Parsed:
        parsed = Parsed()
        text = data.decode("utf-8", "replace")
        if "\ufffd" in text and b"\xef\xbf\xbd" not in data:
            parsed.skipped["bytes that are not UTF-8 (replaced)"] += 1
        scrape_time, rejected = scrape_time_of(text, unit)
        parsed.rejected.extend(rejected)
        try:
            families = list(_families(text))
        except ValueError:
            families, bad = _families_by_line(text)
            parsed.rejected.extend(bad)
        fold(families, scrape_time, parsed)
        return parsed


def fold(
    families: Iterable[tuple[str, str, list[tuple[dict[str, str], float, float | None]]]],
    scrape_time: datetime,
    parsed: Parsed,
) -> None:
    """The samples of each (GPU, time) as one reading, in the order first seen."""
    readings: dict[tuple[object, ...], Reading] = {}
    skipped = parsed.skipped
    for name, _typ, samples in families:
        if name not in _WANTED:
            skipped[
                "non-GPU series" if not name.startswith("DCGM_") else "DCGM series not kept"
            ] += len(samples)
            continue
        for labels, value, ts in samples:
            if not labels:
                skipped["series without labels"] += 1
                continue
            when = scrape_time if ts is None else _from_epoch(ts)
            if when is None:
                parsed.rejected.append(
                    Rejected(f"series {name}", f"sample timestamp {ts!r} is not a time", "")
                )
                continue
            key = (when, *(labels.get(k) for k in _IDENTITY))
            reading = readings.get(key)
            if reading is None:
                reading = Reading(when, dict(labels), {}, f"series {name}")
                readings[key] = reading
            else:
                for k, v in labels.items():
                    reading.labels.setdefault(k, v)
            if name in reading.fields:
                skipped["duplicate series in one scrape"] += 1
                continue
            reading.fields[name] = value
    parsed.readings.extend(readings.values())


def scrape_time_of(text: str, unit: Unit) -> tuple[datetime, list[Rejected]]:
    """When a scrape without sample timestamps was taken: its `# scraped at` comment, a time
    in its file name, its mtime; else now (a body that says nothing about its time)."""
    rejected: list[Rejected] = []
    for number, line in enumerate(text.splitlines()[:50], start=1):
        if line.startswith(SCRAPED_AT):
            value = line[len(SCRAPED_AT) :].strip()
            found = parse_time(value)
            if found is not None:
                return found, rejected
            rejected.append(
                Rejected(
                    f"line {number}",
                    f"{SCRAPED_AT.strip()!r} says {value[:60]!r}, not an ISO 8601 time or "
                    "epoch seconds; the file's name or mtime is used instead",
                    line[:300],
                )
            )
            break
    if unit.path is not None:
        named = time_in_name(unit.path.name)
        if named is not None:
            return named, rejected
        try:
            return datetime.fromtimestamp(unit.path.stat().st_mtime, UTC), rejected
        except OSError:
            pass
    return datetime.now(UTC).replace(microsecond=0), rejected


def parse_time(value: str) -> datetime | None:
    """An ISO 8601 time (UTC when it names no zone) or epoch seconds."""
    try:
        return _from_epoch(float(value))
    except ValueError:
        pass
    try:
        found = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)


def time_in_name(name: str) -> datetime | None:
    """A UTC time written into a file name (`dcgm-20261130T100000Z.prom`, `…-1764496800.txt`)."""
    match = _NAME_TIME.search(name)
    if match is not None:
        y, mo, d, h, mi, sec = (int(g) for g in match.groups())
        try:
            return datetime(y, mo, d, h, mi, sec, tzinfo=UTC)
        except ValueError:
            pass
    epoch = _NAME_EPOCH.search(name)
    return _from_epoch(float(epoch[1])) if epoch is not None else None


def _from_epoch(seconds: float) -> datetime | None:
    if not _EPOCH_MIN <= seconds < _EPOCH_MAX:  # also refuses NaN
        return None
    return datetime.fromtimestamp(seconds, UTC)


Family = tuple[str, str, list[tuple[dict[str, str], float, float | None]]]


def _families(text: str) -> Iterable[Family]:
    """(field name, type, samples) per family; a counter keeps its own name (the parser
    would add `_total` to DCGM's energy counter)."""
    for family in metric_families(text):
        typed = family.type in ("counter", "gauge")
        samples = [(s.labels, float(s.value), _seconds(s.timestamp)) for s in family.samples]
        if typed:
            yield family.name, family.type, samples
            continue
        by_name: dict[str, list[tuple[dict[str, str], float, float | None]]] = {}
        for s in family.samples:
            by_name.setdefault(s.name, []).append((s.labels, float(s.value), _seconds(s.timestamp)))
        yield from ((n, family.type, found) for n, found in by_name.items())


def _seconds(timestamp: object) -> float | None:
    """The text parser gives epoch seconds as a float (OpenMetrics' as a Timestamp)."""
    return None if timestamp is None else float(timestamp)  # type: ignore[arg-type]


def _families_by_line(text: str) -> tuple[list[Family], list[Rejected]]:
    """The slow path for an exposition the parser refuses as a whole: each sample line on
    its own under the TYPE line before it, so a bad line costs only itself."""
    families: list[Family] = []
    rejected: list[Rejected] = []
    context = ""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            if stripped.startswith(("# TYPE ", "# HELP ")):
                try:
                    list(text_string_to_metric_families(stripped + "\n"))
                except ValueError as exc:
                    rejected.append(Rejected(f"line {number}", _why(exc, "comment"), line[:300]))
                    context = ""
                    continue
                if stripped.startswith("# TYPE "):
                    context = stripped + "\n"
            continue
        try:
            families.extend(_families(context + stripped + "\n"))
        except ValueError as exc:
            rejected.append(Rejected(f"line {number}", _why(exc, "sample"), line[:300]))
    return families, rejected


def _why(exc: ValueError, what: str) -> str:
    detail = str(exc).strip()[:120]
    return f"not a Prometheus text {what}" + (f" ({detail})" if detail else "")
