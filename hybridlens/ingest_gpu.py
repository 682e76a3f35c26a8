"""`hybridlens ingest gpu [SOURCE...]`: GPU telemetry files, folders and endpoints.

Files and folders go through discovery (`ingest/files.py`), endpoints through the
concurrent puller (`ingest/gpu/pull.py`); both then run the `gpu` collector through the one
driver, so an endpoint that could not be pulled is an input that failed (in `ingest_log`,
status failed, with its sentence in `quarantine`) while everything else loads. With no
SOURCE the config's `[[sources.gpu]]` entries are read, each with its own environment,
timeout and retries.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hybridlens.errors import UsageError
from hybridlens.output import quarantine_hint, shown
from ingest.contract import Unit
from ingest.driver import Progress, load
from ingest.files import Refused, Source, discover, is_url
from ingest.gpu.collector import TABLE, GpuCollector
from ingest.gpu.pull import BACKOFF_S, RETRIES, TIMEOUT_S, Endpoint, Pulled, pull_all
from ingest.gpu.readings import ReadOptions
from ingest.gpu.samples import rows
from warehouse.config import Config
from warehouse.db import Warehouse
from warehouse.report import LoadReport


@dataclass(frozen=True)
class GpuInput:
    """One SOURCE: a file, a folder or a URL, and the environment its samples fall back to."""

    name: str
    environment: str = ""
    timeout_s: float = TIMEOUT_S
    retries: int = RETRIES


@dataclass
class GpuLoad:
    """What `ingest gpu` did: the load report and how each endpoint's pull went."""

    report: LoadReport
    pulls: list[Pulled]

    @property
    def failed_pulls(self) -> list[Pulled]:
        return [p for p in self.pulls if p.error is not None]


def configured_inputs(config: Config, environment: str = "") -> list[GpuInput]:
    """The config's `[[sources.gpu]]` entries (a URL, else a path), each with its limits."""
    return [
        GpuInput(
            s.url or s.path,
            s.environment or environment,
            s.timeout_seconds,
            s.retries,
        )
        for s in config.sources.gpu
        if s.url or s.path
    ]


def ingest_gpu(
    warehouse: Warehouse,
    inputs: Sequence[GpuInput],
    config: Config,
    *,
    timezone: str = "UTC",
    progress: Progress | None = None,
    backoff_s: float = BACKOFF_S,
    workers: int | None = None,
) -> GpuLoad:
    """Pull every URL (concurrently), read every file, and load them all, one environment
    fallback at a time; nothing that failed stops the rest."""
    urls = [
        Endpoint(i.name, i.timeout_s, i.retries, i.environment) for i in inputs if is_url(i.name)
    ]
    pulls = pull_all(urls, backoff_s=backoff_s)
    groups: dict[str, list[Source | Refused]] = {}
    skipped = 0
    for pulled in pulls:
        entry: Source | Refused
        if pulled.body is None:
            entry = Refused(pulled.endpoint.url, pulled.error or "could not be pulled")
        else:
            entry = Source(Unit(pulled.endpoint.url, body=pulled.body), len(pulled.body))
        groups.setdefault(pulled.endpoint.environment, []).append(entry)
    paths: dict[str, list[Path | str]] = {}
    for i in inputs:
        if is_url(i.name):
            continue
        if "://" in i.name:  # file://, ftp://: refused by name, never read
            groups.setdefault(i.environment, []).append(
                Refused(
                    i.name,
                    f"{i.name[:200]} is not read: only http:// and https:// URLs "
                    "are pulled, and files are given as paths",
                )
            )
            continue
        paths.setdefault(i.environment, []).append(Path(i.name))
    for environment, names in paths.items():
        found, unchanged = discover(warehouse, names)
        groups.setdefault(environment, []).extend(found)
        skipped += unchanged
    report = LoadReport(files_skipped=skipped)
    for environment, sources in groups.items():
        collector = GpuCollector(options=ReadOptions(environment, timezone))
        report.add(load(warehouse, sources, config, collector, progress=progress, workers=workers))
    return GpuLoad(report, pulls)


# -- the command ---------------------------------------------------------------------------
def cmd_ingest_gpu(args: argparse.Namespace, warehouse: Warehouse, config: Config) -> int:
    """Run `ingest gpu` for parsed arguments; the exit status (1 when anything failed)."""
    if getattr(args, "prometheus", None):
        if args.sources:
            raise UsageError("give SOURCEs or --prometheus URL, not both")
        from hybridlens import ingest_gpu_prometheus

        load = ingest_gpu_prometheus.readings_loader(warehouse, config, rows)
        return ingest_gpu_prometheus.run(args, load=load)
    timezone = args.timezone or "UTC"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"--timezone {timezone!r} is not a time zone name (like UTC or Europe/Berlin)"
        ) from None
    environment = args.environment or ""
    if args.sources:
        inputs = [GpuInput(_name(s), environment) for s in args.sources]
    else:
        inputs = configured_inputs(config, environment)
        if not inputs:
            raise UsageError(
                f"nothing to read: give a SOURCE (a file, a folder or an http(s) URL) or "
                f"list [[sources.gpu]] entries in the config ({config.origin})"
            )
    done = ingest_gpu(warehouse, inputs, config, timezone=timezone)
    return summarize(done, warehouse)


def summarize(done: GpuLoad, warehouse: Warehouse) -> int:
    """The summary on stderr; 0 when everything loaded, 1 when anything failed or was
    quarantined (a dead endpoint named in one sentence at the end)."""
    report = done.report
    read = sum(1 for i in report.inputs if i.message is None or i.rows)
    print(
        f"loaded {report.rows(TABLE):,} GPU samples from {read} inputs into {warehouse.path} "
        f"({report.duplicates(TABLE):,} duplicates ignored, {report.files_skipped} unchanged "
        "files skipped)",
        file=sys.stderr,
    )
    for what, n in sorted(report.skipped.items()):
        print(f"  {shown(what)}: {n:,}", file=sys.stderr)
    failed_urls = {p.endpoint.url for p in done.failed_pulls}
    for failure in report.failures[:20]:
        if not any(failure.startswith(f"could not pull {u}") for u in failed_urls):
            print(f"  failed: {shown(failure)}", file=sys.stderr)
    bad = report.bad_records
    if bad:
        print(quarantine_hint(bad, warehouse.path), file=sys.stderr)
    failed = done.failed_pulls
    if failed:
        named = shown("; ".join(p.error or p.endpoint.url for p in failed[:5]))
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        print(
            f"{len(failed)} of {len(done.pulls)} endpoints could not be pulled: {named}{more}.",
            file=sys.stderr,
        )
    return 0 if report.ok and not failed else 1


def _name(source: str | Path) -> str:
    """argparse folds `http://` into `http:/` when given a Path: give URLs back whole."""
    text = str(source)
    for scheme in ("http", "https", "file", "ftp"):
        if text.startswith(f"{scheme}:/") and not text.startswith(f"{scheme}://"):
            return f"{scheme}://{text[len(scheme) + 2 :].lstrip('/')}"
    return text
