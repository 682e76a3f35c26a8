"""`hybridlens metrics`: the definitions' figures, and what they cost, per group.

Only argparse and the standard library are imported at the top: `hybridlens --help`
builds this command's parser, and the warehouse loads when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used at run time: `metrics` starts in well under 0.5 s
    from warehouse.config import Config
    from warehouse.session import Session


def add_parser(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    common: argparse.ArgumentParser,
    parse_time: Callable[[str], datetime],
) -> None:
    p = sub.add_parser(
        "metrics", parents=[common], help="latency, availability, uptime, accuracy, cost"
    )
    p.add_argument(
        "--from",
        dest="start",
        type=parse_time,
        default=None,
        help="inclusive start, ISO 8601, UTC unless it says otherwise",
    )
    p.add_argument("--to", dest="end", type=parse_time, default=None, help="exclusive end")
    p.add_argument(
        "--by",
        default="environment,model",
        help="group columns from environment,model,version (default environment,model); "
        "'' or none for one row of fleet totals",
    )
    p.add_argument("--environment", action="append", default=None, help="only this (repeatable)")
    p.add_argument("--model", action="append", default=None, help="only this (repeatable)")
    p.add_argument(
        "--basis",
        choices=("full", "marginal"),
        default="full",
        help="cost basis of the cost keys: full (hardware amortized) or marginal (what one "
        "more unit costs now: on-prem capacity costs only its energy)",
    )
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    """Reads the stored config and the figures over one connection and prints plain rows,
    so the command imports neither Polars nor pyarrow (docs/dashboard.md has the timings).
    A figure it cannot compute (a cost without a rate) is null, and exit 2 with the sentence
    that says what to add: the other figures are still worth printing."""
    from hybridlens.cli import _warehouse
    from hybridlens.errors import EXIT_OK, EXIT_USAGE, UsageError
    from hybridlens.output import print_table, shown, write_csv, write_json
    from warehouse.config import find_file, resolve
    from warehouse.metrics import check_group, metric_rows
    from warehouse.session import session

    try:
        by = check_group(args.by.split(","))
    except ValueError as exc:  # a bad --by is the user's to fix, not a bug
        raise UsageError(str(exc)) from None
    if args.start is not None and args.end is not None and args.start >= args.end:
        raise UsageError(
            f"--from {args.start.isoformat()} is not before --to {args.end.isoformat()}: "
            "the range is empty"
        )
    warehouse = _warehouse(args)
    # A config file is read before the warehouse is opened, so a bad one is named first.
    config = resolve(args.config)[0] if find_file(args.config) is not None else None
    with session(warehouse) as s:
        if config is None:
            config = resolve(None, s)[0]
        result = metric_rows(
            s,
            config,
            start=args.start,
            end=args.end,
            by=by,
            environments=args.environment,
            models=args.model,
            basis=args.basis,
        )
        notes = _unknown_names(args, config, s)
    if args.format == "json":
        sys.stdout.write(write_json(result.columns, result.rows) + "\n")
    elif args.format == "csv":
        sys.stdout.write(write_csv(result.columns, result.rows))
    else:
        print_table(result.columns, result.rows)
    for note in notes:
        print(f"hybridlens: note: {shown(note)}", file=sys.stderr)
    for problem in result.problems:  # after the rows, so a reader of the terminal sees it
        print(f"hybridlens: error: {shown(problem)}", file=sys.stderr)
    return EXIT_USAGE if result.problems else EXIT_OK  # a config to fix, as a UserError is


def _unknown_names(args: argparse.Namespace, config: Config, s: Session) -> list[str]:
    """A --environment or --model that neither the warehouse (at any time) nor the config
    names: most likely a typo, which an empty answer alone would not tell."""
    from warehouse.db import read_sql

    asked = {"environment": args.environment or [], "model": args.model or []}
    if not any(asked.values()):
        return []
    found = s.rows("metrics_names", read_sql("metrics_names"), {})
    known = {
        "environment": {e.name for e in config.environments},
        "model": {m.name for m in config.models},
    }
    for r in found:
        known[r["kind"]].add(r["name"])
    return [
        f"no {kind} named {name!r} in the warehouse or the config "
        f"(known: {', '.join(sorted(str(k) for k in known[kind] if k is not None)) or 'none'})"
        for kind, names in asked.items()
        for name in names
        if name not in known[kind]
    ]
