"""`hybridlens export focus --month YYYY-MM --out FILE`: the ledger as a FOCUS dataset.

Only argparse and the standard library are imported at the top: `hybridlens --help`
builds this command's parser, and the warehouse loads when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

VERSIONS = ("1.2", "1.3")


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    """The `export` command and its `focus` format."""
    p = sub.add_parser("export", help="write the warehouse out in standard formats")
    export_sub = p.add_subparsers(dest="format", required=True, metavar="FORMAT")
    f = export_sub.add_parser(
        "focus",
        parents=[common],
        help="one billing month of the ledger (cloud, on-prem, edge) as FOCUS 1.2 or 1.3",
    )
    f.add_argument("--month", required=True, help="the billing period, YYYY-MM")
    f.add_argument(
        "--out", type=Path, required=True, help="FILE.parquet or FILE.csv (replaced whole)"
    )
    f.add_argument("--version", dest="focus_version", choices=VERSIONS, default="1.2")
    f.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from hybridlens.cli import _warehouse
    from warehouse.focus_export import export_focus, parse_month

    month = parse_month(args.month)
    done = export_focus(_warehouse(args), month, args.out, args.focus_version)
    money = ", ".join(done.currencies) or "no currency"
    print(
        f"wrote {done.rows:,} FOCUS {done.version} rows ({done.columns} columns, {money}) of "
        f"the billing period {month:%Y-%m} to {done.path}",
        file=sys.stderr,
    )
    if done.origins:
        print(
            f"  {done.origins:,} ledger rows split to models: {done.allocated:,} allocated "
            'charges in their place (docs/export.md, "Split cost allocation")',
            file=sys.stderr,
        )
    if not done.rows:
        print(
            f"  the ledger has no rows in {month:%Y-%m}: the file holds the columns only",
            file=sys.stderr,
        )
    return 0
