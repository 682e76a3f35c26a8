"""`hybridlens ingest billing [PATH...]`: cloud billing exports into the `billing` ledger.

A delivery is every file given to one command: they are read whole (never skipped as
unchanged, never resumed from an offset: an unchanged file of a unit must come along when
another file of the same unit is restated, or the replace would drop its rows) and
published in one transaction, so the files of one unit replace it together. Reading the
same delivery again replaces each unit with the same rows: it changes nothing.

Only argparse and the standard library are imported at the top: `hybridlens --help`
builds this command's parser, and the ingest machinery loads when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hybridlens.errors import UsageError
from hybridlens.output import quarantine_hint, shown

if TYPE_CHECKING:
    from ingest.files import Refused, Source
    from warehouse.config import Config
    from warehouse.db import Warehouse
    from warehouse.report import LoadReport

FORMATS = ("auto", "focus", "aws-cur", "gcp", "azure")
DATASETS = ("auto", "actual", "amortized")


def add_parser(ingest_sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    """The `ingest billing` subcommand, beside `ingest traces` and `ingest gpu`."""
    b = ingest_sub.add_parser(
        "billing",
        parents=[common],
        help="cloud billing exports: FOCUS 1.0-1.4, AWS CUR legacy and 2.0, Azure cost details "
        "(CSV, CSV.gz, Parquet); Google Cloud's billing export (CSV, JSON lines, Parquet)",
    )
    b.add_argument(
        "paths", type=Path, nargs="*", metavar="PATH", help="default: [[sources.billing]]"
    )
    b.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help=(
            "auto: told from each file's columns (default); focus: every file must be FOCUS; "
            "aws-cur: every file must be an AWS Cost and Usage Report (legacy or 2.0); "
            "gcp: every file must be a Google Cloud billing export; "
            "azure: every file must be Azure cost details"
        ),
    )
    b.add_argument(
        "--dataset",
        choices=DATASETS,
        default="auto",
        help="which dataset Azure cost details files hold (their columns do not say); auto "
        "(default): told from the file or folder name (ActualCost, AmortizedCost)",
    )
    b.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from hybridlens.cli import _stored_config

    return cmd_ingest_billing(args, *_stored_config(args))


def cmd_ingest_billing(args: argparse.Namespace, warehouse: Warehouse, config: Config) -> int:
    """Run `ingest billing` for parsed arguments; the exit status (1 when anything failed
    or was quarantined)."""
    dataset = args.dataset
    groups: dict[tuple[str, str], list[Path]] = {}
    if args.paths:
        groups = {(args.format, dataset): [Path(p) for p in args.paths]}
    else:
        for source in config.sources.billing:
            fmt = source.format if args.format == "auto" else args.format
            given = source.dataset if dataset == "auto" else dataset
            groups.setdefault((fmt, given), []).append(Path(source.path).expanduser())
        if not groups:
            raise UsageError(
                "nothing to read: give a PATH (a billing export or a folder of them) or list "
                f"[[sources.billing]] entries in the config ({config.origin})"
            )
    from warehouse.report import LoadReport

    report = LoadReport()
    for (fmt, given), paths in groups.items():
        report.add(ingest_billing(warehouse, paths, config, fmt=fmt, dataset=given))
    return summarize(report, warehouse, config)


def ingest_billing(
    warehouse: Warehouse,
    paths: list[Path],
    config: Config,
    *,
    fmt: str = "auto",
    dataset: str = "auto",
) -> LoadReport:
    """Load every file under `paths` as one delivery (one publish); `dataset` is what Azure
    cost details files hold (`auto`: told from their names)."""
    from ingest.billing.collector import BillingCollector
    from ingest.driver import load

    sources = found(paths)
    collector = BillingCollector(format=fmt, dataset=dataset)
    # DuckDB reads each file with every core: one file at a time, in this process
    return load(warehouse, sources, config, collector, workers=1, one_publish=True)


def found(paths: list[Path]) -> list[Source | Refused]:
    """Every regular file under `paths` (a file named twice is read once), whole; where an
    AWS CUR manifest is among them, the parts it lists instead of its folder's files."""
    from ingest.billing.cur_manifest import select
    from ingest.contract import Unit
    from ingest.files import Refused, Source, find_files, printable, uri_of

    entries = list(find_files(paths))
    chosen = select([e for e in entries if isinstance(e, Path)])  # AWS CUR manifests
    sources: list[Source | Refused] = [*chosen.refused]
    seen: set[str] = set()
    kept: list[Path | Refused] = [e for e in entries if isinstance(e, Refused)]
    for entry in [*kept, *chosen.files]:
        if isinstance(entry, Refused):
            sources.append(entry)
            continue
        uri = uri_of(entry)
        if uri in seen:
            continue
        seen.add(uri)
        try:
            st = entry.stat()
        except OSError as exc:
            sources.append(Refused(uri, f"cannot read {printable(entry)}: {exc.strerror or exc}"))
            continue
        sources.append(Source(Unit(uri, path=entry), st.st_size, st.st_mtime))
    return sources


def _missing_rates(warehouse: Warehouse, config: Config) -> bool:
    """Costs in a currency the config has no rate for load as billed (nothing is lost), but
    no cost figure can be reported until it has one (DESIGN.md: an error naming it): say
    so now, as an error, rather than on the first page that sums them."""
    from warehouse.money import missing_rates

    if not warehouse.exists():  # nothing was ever loaded (an empty folder): nothing to say
        return False
    lacking = missing_rates(warehouse, config)
    for currency, first in sorted(lacking.items()):
        print(
            shown(
                f"  error: {currency} costs (from {first.date()}) have no rate to "
                f"{config.billing.reporting_currency}: they are loaded as billed, and no cost "
                f"figure is reported until the config ({config.origin}) has [[billing.rates]] "
                f'currency = "{currency}", rate = ..., since = {first.date()}'
            ),
            file=sys.stderr,
        )
    return bool(lacking)


def _warn_doubled(report: LoadReport, warehouse: Warehouse) -> bool:
    """Two runs of one export given to one command add up (a delivery is every file of a
    command): name each unit where that happened, and how to load it instead."""
    from warehouse.billing_deliveries import doubled_units

    doubled = doubled_units(warehouse, report.load_ids)
    for d in doubled:
        print(
            shown(
                f"  warning: {d.unit} holds the same "
                f"{'charge' if d.shared == 1 else f'{d.shared:,} charges'} from more than one "
                f"file ({', '.join(d.files)}): one command is one delivery, so they were added "
                "up. If they are runs of the same export (a month and its restatement, FOCUS "
                "1.2 and 1.4 of one account), load one command per delivery, oldest first; the "
                "newest alone replaces the unit"
            ),
            file=sys.stderr,
        )
    return bool(doubled)


def summarize(report: LoadReport, warehouse: Warehouse, config: Config) -> int:
    """The summary on stderr; 0 when everything loaded, 1 when anything failed or was
    quarantined, or a unit was loaded from two runs of its export, 2 when the ledger holds a
    currency the config has no rate for (a config to fix, as every UserError)."""
    from hybridlens.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE
    from warehouse.report import Status

    files = sum(1 for i in report.inputs if i.status is not Status.FAILED)
    print(
        f"loaded {report.rows('billing'):,} billing line items from {files} files into "
        f"{warehouse.path} ({report.duplicates('billing'):,} duplicated line items loaded once)",
        file=sys.stderr,
    )
    for what, n in sorted(report.skipped.items()):
        print(f"  {shown(what)}: {n:,}", file=sys.stderr)
    for failure in report.failures[:20]:
        print(f"  failed: {shown(failure)}", file=sys.stderr)
    unrated = _missing_rates(warehouse, config)
    doubled = _warn_doubled(report, warehouse)
    bad = report.bad_records
    if bad:
        print(quarantine_hint(bad, warehouse.path, "rows"), file=sys.stderr)
    if unrated:
        return EXIT_USAGE
    return EXIT_OK if report.ok and not doubled else EXIT_FAILED
