"""`nvidia-smi --query-gpu=... --format=csv` logs: one row per GPU per query.

The header names the query fields, with units where they have one (`memory.used [MiB]`),
and the cells repeat the unit (`19818 MiB`) unless `nounits` was given; a field the GPU
cannot report says `[N/A]`, `[Not Supported]` or similar, which is an absence, never a
zero. Timestamps are the host's local time without a zone: read as UTC unless
`--timezone` names the zone the host's clock is in. A log appended to by several runs
repeats its header; each header applies to the rows under it.

nvidia-smi column -> reading (DCGM names):

| nvidia-smi field | reading |
|---|---|
| `timestamp` | the reading's time (local, see above); without it the file's time |
| `uuid` | label `UUID` |
| `index` | label `gpu` |
| `name` | label `modelName` |
| `hostname` | label `Hostname`; without it (or `[N/A]`) the file name up to its first dot |
| `utilization.gpu` | `DCGM_FI_DEV_GPU_UTIL` (%) |
| `memory.used` / `memory.free` | `DCGM_FI_DEV_FB_USED` / `FB_FREE` (MiB) |
| `power.draw` (else `power.draw.instant`, `power.draw.average`) | `DCGM_FI_DEV_POWER_USAGE` (W) |
| `temperature.gpu` | `DCGM_FI_DEV_GPU_TEMP` (°C) |
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ingest.contract import Rejected, Unit
from ingest.gpu.dcgm import scrape_time_of
from ingest.gpu.readings import FB_FREE, FB_USED, POWER, TEMP, UTIL, Parsed, Reading, ReadOptions

_FIELD = re.compile(r"^[a-z][A-Za-z0-9_.]*(?: \[[^\]]+\])?$")
_KNOWN = frozenset(
    ("timestamp", "uuid", "index", "name", "utilization.gpu", "memory.used", "memory.free",
     "power.draw", "temperature.gpu", "pci.bus_id", "driver_version", "serial")
)  # fmt: skip
LABELS = {"uuid": "UUID", "index": "gpu", "name": "modelName", "hostname": "Hostname"}
# field -> (reading field, unit the reading is in); the first present of a field's names
_VALUES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("utilization.gpu",), UTIL, "%"),
    (("memory.used",), FB_USED, "MiB"),
    (("memory.free",), FB_FREE, "MiB"),
    (("power.draw", "power.draw.instant", "power.draw.average"), POWER, "W"),
    (("temperature.gpu",), TEMP, "C"),
)
# unit -> (the unit it converts to, factor)
_UNITS = {
    "%": ("%", 1.0),
    "MiB": ("MiB", 1.0),
    "GiB": ("MiB", 1024.0),
    "KiB": ("MiB", 1 / 1024),
    "W": ("W", 1.0),
    "mW": ("W", 1e-3),
    "C": ("C", 1.0),
}
_TIME_FORMATS = ("%Y/%m/%d %H:%M:%S.%f", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f")


@dataclass(frozen=True)
class NvidiaSmiCsv:
    """A log written by `nvidia-smi --query-gpu=... --format=csv[,noheader?][,nounits]`."""

    name: str = "nvidia-smi"

    def sniff(self, head: bytes) -> bool:
        """The first line is a header of query fields, one of them a well-known one."""
        line, newline, _ = head.partition(b"\n")
        text = line.decode("utf-8", "replace").strip().lstrip("\ufeff")
        names = [cell.strip() for cell in text.split(",")]
        if not newline:
            names = names[:-1]  # a header longer than the head: its last name may be cut
        if len(names) < 2 or not all(_FIELD.match(n) for n in names):
            return False
        return any(_bare(n) in _KNOWN for n in names)

    def read(self, data: bytes, unit: Unit, options: ReadOptions) -> Parsed:
        parsed = Parsed()
        text = data.decode("utf-8", "replace").lstrip("\ufeff")
        try:
            zone: tzinfo = ZoneInfo(options.timezone) if options.timezone != "UTC" else UTC
        except (ZoneInfoNotFoundError, ValueError):
            parsed.rejected.append(
                Rejected("file", f"--timezone {options.timezone!r} is not a time zone name", "")
            )
            return parsed
        file_time: datetime | None = None
        default_host = _host_from_name(unit)
        header: list[str] = []
        times: dict[str, datetime | None] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            cells = _cells(line)
            if cells is None:
                parsed.rejected.append(
                    Rejected(f"line {number}", "not a CSV line (a cell over 128 KiB)", line[:300])
                )
                continue
            if not cells or all(not c.strip() for c in cells):
                continue
            cells = [c.strip() for c in cells]
            if all(_FIELD.match(c) for c in cells) and any(_bare(c) in _KNOWN for c in cells):
                header = cells
                continue
            location = f"line {number}"
            excerpt = ", ".join(cells)[:300]
            if not header:
                parsed.rejected.append(Rejected(location, "a row before any header", excerpt))
                continue
            if len(cells) != len(header):
                parsed.rejected.append(
                    Rejected(
                        location,
                        f"{len(cells)} cells where the header has {len(header)} "
                        "(a cut or garbled line)",
                        excerpt,
                    )
                )
                continue
            row = {_bare(h): (c, _unit(h)) for h, c in zip(header, cells, strict=True)}
            stamp = row.get("timestamp", ("", ""))[0]
            if stamp:
                if stamp not in times:
                    times[stamp] = _local_time(stamp, zone)
                ts = times[stamp]
                if ts is None:
                    parsed.rejected.append(
                        Rejected(location, f"timestamp {stamp[:40]!r} is not a time", excerpt)
                    )
                    continue
            else:
                if file_time is None:
                    file_time, bad = scrape_time_of("", unit)
                    parsed.rejected.extend(bad)
                ts = file_time
            labels: dict[str, str] = {}
            for column, label in LABELS.items():
                cell = row.get(column, ("", ""))[0]
                if cell and not _absent(cell):
                    labels[label] = cell
            if "Hostname" not in labels and default_host:
                labels["Hostname"] = default_host
            fields: dict[str, float] = {}
            for names, name, want in _VALUES:
                found = next((row[n] for n in names if n in row and not _absent(row[n][0])), None)
                if found is None:
                    if any(n in row for n in names):
                        parsed.skipped["nvidia-smi cells [N/A] or [Not Supported]"] += 1
                    continue
                amount = _number(found[0], found[1], want)
                if amount is None:
                    parsed.skipped["nvidia-smi values that are not a number in a known unit"] += 1
                    continue
                fields[name] = amount
            parsed.readings.append(Reading(ts, labels, fields, location))
        return parsed


def _cells(line: str) -> list[str] | None:
    """One line's cells, None when `csv` refuses it. Line by line, since nvidia-smi quotes
    nothing: a stray quote in a garbled line must not swallow the lines after it."""
    if '"' not in line:  # nvidia-smi's own lines: `split` reads them as `csv` would, faster
        return line.split(",")
    try:
        return next(csv.reader([line], skipinitialspace=True), [])
    except csv.Error:
        return None


def _bare(header: str) -> str:
    return header.split(" [", 1)[0]


def _unit(header: str) -> str:
    return header.split(" [", 1)[1].rstrip("]") if " [" in header else ""


def _absent(cell: str) -> bool:
    """`[N/A]`, `[Not Supported]`, `[Unknown Error]`, `[GPU is lost]`, `N/A`: no value."""
    return cell.startswith("[") or cell in ("N/A", "")


def _number(cell: str, header_unit: str, want: str) -> float | None:
    """A cell's value in `want` units: `19818 MiB`, `100 %`, `631.95 W`, or a bare number
    in the header's unit (`nounits`)."""
    text, _, unit = cell.partition(" ")
    unit = unit.strip() or header_unit or want
    if "_" in text:  # Python reads `1_00` as 100; nvidia-smi never groups digits
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    target = _UNITS.get(unit)
    if target is None or target[0] != want:
        return None
    return value * target[1]


def _local_time(stamp: str, zone: tzinfo) -> datetime | None:
    for fmt in _TIME_FORMATS:
        try:
            naive = datetime.strptime(stamp, fmt)
        except ValueError:
            continue
        return naive.replace(tzinfo=zone).astimezone(UTC)
    return None


def _host_from_name(unit: Unit) -> str:
    """A log of one host is usually named after it (`fra-gpu-01.csv`)."""
    if unit.path is not None:
        return unit.path.name.split(".", 1)[0]
    return ""
