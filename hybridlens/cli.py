"""`hybridlens`: the command line. Every command takes --warehouse and --config.

Results go to stdout (only results: `metrics --format json` pipes into jq); progress,
logs and summaries go to stderr. Exit codes (`hybridlens.errors`): 0 ok, 1 something was
quarantined or failed (the summary says what and where to look), 2 bad usage, bad config
or no warehouse, 70 a bug in hybridlens, 130 interrupted, 141 stdout closed early (`| head`).

Only what `--help` needs is imported at the top: each command imports DuckDB, Polars, the
ingest or the generator when it runs, so `hybridlens --help` and a typo answer at once.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridlens import __version__, export_focus, gpu_args, ingest_billing, metrics_command
from hybridlens.errors import EXIT_INTERRUPTED, broken_pipe, report
from hybridlens.output import (
    port,
    positive_float,
    positive_int,
    quarantine_hint,
    shown,
)
from hybridlens.output import progress_bar as _bar

if TYPE_CHECKING:
    from warehouse.config import Config
    from warehouse.db import Warehouse
    from warehouse.report import LoadReport

log = logging.getLogger("hybridlens")


def main(argv: Sequence[str] | None = None, *, own_process: bool = False) -> int:
    """Run one command; `own_process`: the process is this command's alone (`entry`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if own_process and args.command in ("ingest", "collect"):
        # a load converts nothing to or from pandas, yet pyarrow's first conversion imports
        # it (0.5 s of a small ingest's 2.5 s): in a process of its own, pyarrow is told
        # there is none; from Python, or beside the dashboard, it must stay as it was
        from warehouse.stage import warm_arrow

        warm_arrow(without_pandas=True)
    verbose = bool(getattr(args, "verbose", False))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # A service manager stops a command with SIGTERM: end it as Ctrl-C does, so `demo` and
    # `dashboard` stop their Streamlit child and generator instead of orphaning them.
    # (`serve-otlp` installs its own handlers for its drain.)
    previous = _on_sigterm_interrupt()
    try:
        status = int(args.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return status
    except BrokenPipeError:
        return broken_pipe()
    except KeyboardInterrupt:
        print("hybridlens: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        return report(exc, verbose=verbose)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def entry() -> None:
    """The console script (and `python -m hybridlens.cli`): `main` in its own process."""
    sys.exit(main(own_process=True))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _on_sigterm_interrupt() -> Any:
    """Make SIGTERM raise KeyboardInterrupt; the handler it replaces, or None off the main
    thread (where signals cannot be handled)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _interrupt)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--warehouse",
        type=Path,
        default=None,
        help="DuckDB file (default: $HYBRIDLENS_WAREHOUSE or ./hybridlens.duckdb)",
    )
    common.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML config (default: $HYBRIDLENS_CONFIG, ./hybridlens.toml, the stored one)",
    )
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging to stderr")

    parser = argparse.ArgumentParser(
        prog="hybridlens",
        description="Observability and cost optimization for AI models across on-prem, "
        "clouds and edge.",
    )
    parser.add_argument("--version", action="version", version=f"hybridlens {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", parents=[common], help="generate, ingest and serve the demo")
    p.add_argument(
        "--data",
        type=Path,
        default=Path("hybridlens-demo"),
        help="where the scenario is generated (default ./hybridlens-demo)",
    )
    p.add_argument("--days", type=positive_int, default=90)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--scale", type=positive_float, default=1.0)
    p.add_argument("--no-serve", action="store_true", help="load everything, serve nothing")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port, default=8501)
    p.set_defaults(run=cmd_demo)

    p = sub.add_parser("sample", parents=[common], help="write the demo scenario's files")
    p.add_argument("outdir", type=Path)
    p.add_argument("--days", type=positive_int, default=90)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--scale", type=positive_float, default=1.0)
    p.add_argument(
        "--end",
        type=_parse_time,
        default=None,
        help="exclusive end of the data, UTC (default: today 00:00)",
    )
    p.set_defaults(run=cmd_sample)

    p = sub.add_parser("ingest", help="load files into the warehouse")
    ingest_sub = p.add_subparsers(dest="source", required=True, metavar="SOURCE")
    t = ingest_sub.add_parser(
        "traces",
        parents=[common],
        help="OTLP traces and evaluation logs: JSON, JSON lines, protobuf, gzip, zstd",
    )
    t.add_argument("paths", type=Path, nargs="+", metavar="PATH")
    t.set_defaults(run=cmd_ingest_traces)
    g = ingest_sub.add_parser(
        "gpu",
        parents=[common],
        help="GPU telemetry: DCGM exporter scrapes (files or http(s) URLs), nvidia-smi CSV, "
        "OTLP metrics, a Prometheus server",
    )
    g.add_argument("sources", nargs="*", metavar="SOURCE", help="default: [[sources.gpu]]")
    g.add_argument("--environment", default="", help="when neither the data nor a rule says")
    g.add_argument("--timezone", default="UTC", help="of nvidia-smi's local timestamps")
    gpu_args.add_prometheus_arguments(g)
    g.set_defaults(run=cmd_ingest_gpu)
    ingest_billing.add_parser(ingest_sub, common)

    p = sub.add_parser("collect", help="sample live sources into the warehouse")
    collect_sub = p.add_subparsers(dest="source", required=True, metavar="SOURCE")
    c = collect_sub.add_parser(
        "gpu", parents=[common], help="sample this host's NVIDIA GPUs through NVML"
    )
    gpu_args.add_collect_arguments(c)
    c.set_defaults(run=cmd_collect_gpu)

    export_focus.add_parser(sub, common)

    p = sub.add_parser("serve-otlp", parents=[common], help="OTLP/HTTP receiver")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port, default=4318)
    p.add_argument(
        "--token",
        default=os.environ.get("HYBRIDLENS_OTLP_TOKEN"),
        help="require 'Authorization: Bearer TOKEN' (or $HYBRIDLENS_OTLP_TOKEN)",
    )
    p.add_argument(
        "--spool", type=Path, default=None, help="spool directory (default: <warehouse>.spool)"
    )
    p.set_defaults(run=cmd_serve_otlp)

    metrics_command.add_parser(sub, common, _parse_time)

    p = sub.add_parser("dashboard", parents=[common], help="serve the Streamlit dashboard")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port, default=8501)
    p.set_defaults(run=cmd_dashboard)
    return parser


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date or time (e.g. 2026-11-01 or 2026-11-01T09:30Z)"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _warehouse(args: argparse.Namespace) -> Warehouse:
    from warehouse.db import Warehouse, default_path

    return Warehouse(args.warehouse or default_path())


def _config(args: argparse.Namespace, warehouse: Warehouse) -> tuple[Config, bool]:
    from warehouse.config import resolve

    return resolve(args.config, warehouse)


# -- commands ------------------------------------------------------------------------------
def cmd_sample(args: argparse.Namespace) -> int:
    from sample_data.generator import generate

    update, close = _bar("generating", unit="day")
    try:
        summary = generate(
            args.outdir,
            days=args.days,
            seed=args.seed,
            scale=args.scale,
            end=args.end,
            progress=update,
        )
    finally:
        close()
    print(
        f"wrote {summary['spans']:,} spans ({summary['requests']:,} requests, "
        f"{summary['evaluations']:,} evaluations) in {summary['files']} files to {args.outdir}",
        file=sys.stderr,
    )
    return 0


def cmd_ingest_traces(args: argparse.Namespace) -> int:
    from ingest.traces import ingest_paths
    from warehouse.load import store_config

    warehouse = _warehouse(args)
    config, from_file = _config(args, warehouse)
    if from_file:
        store_config(warehouse, config.origin, config.to_json())
    # argparse made each PATH a Path, which folds "http://" into "http:/": give URLs back
    names = [_url_or_path(p) for p in args.paths]
    update, close = _bar("ingesting traces")
    try:
        report = ingest_paths(warehouse, names, config, progress=update)
    finally:
        close()
    return report_ingest(report, warehouse)


def cmd_ingest_gpu(args: argparse.Namespace) -> int:
    from hybridlens.ingest_gpu import cmd_ingest_gpu as run

    return run(args, *_stored_config(args))


def cmd_collect_gpu(args: argparse.Namespace) -> int:
    from hybridlens.collect_gpu import cmd_collect_gpu as run

    return run(args, *_stored_config(args))


def _stored_config(args: argparse.Namespace) -> tuple[Warehouse, Config]:
    """The warehouse and config of a GPU load; a config file given is stored first, so the
    after-publish hooks (GPU-hours, the cost model) use its settings."""
    from warehouse.load import store_config

    warehouse = _warehouse(args)
    config, from_file = _config(args, warehouse)
    if from_file:
        store_config(warehouse, config.origin, config.to_json())
    return warehouse, config


def _url_or_path(path: Path) -> Path | str:
    text = str(path)
    for scheme in ("http", "https"):
        if text.startswith(f"{scheme}:/") and not path.exists():
            return f"{scheme}://{text[len(scheme) + 2 :].lstrip('/')}"
    return path


def report_ingest(report: LoadReport, warehouse: Warehouse) -> int:
    """The summary of a load on stderr; the exit status (1 when anything was quarantined,
    failed or truncated)."""
    from warehouse.report import Status

    files = sum(1 for i in report.inputs if i.status is not Status.FAILED)
    print(
        f"loaded {report.rows('spans'):,} spans and {report.rows('evaluations'):,} evaluations "
        f"from {files} files into {warehouse.path} ({report.duplicates():,} duplicates "
        f"ignored, {report.files_skipped} unchanged files skipped)",
        file=sys.stderr,
    )
    for what, n in sorted(report.skipped.items()):
        print(f"  skipped {n:,} {shown(what)}", file=sys.stderr)
    if report.pending_bytes:
        print(
            f"  {report.pending_bytes:,} bytes of incomplete records at file ends were left "
            "for the next run",
            file=sys.stderr,
        )
    for failure in report.failures[:20]:
        print(f"  failed: {shown(failure)}", file=sys.stderr)
    for cut in report.truncated[:20]:
        print(f"  truncated: {shown(cut.message or cut.uri)}", file=sys.stderr)
    if report.bad_records:
        print(quarantine_hint(report.bad_records, warehouse.path), file=sys.stderr)
    return 0 if report.ok else 1


def cmd_serve_otlp(args: argparse.Namespace) -> int:
    from hybridlens.serve_otlp import serve

    warehouse = _warehouse(args)
    config, from_file = _config(args, warehouse)
    if from_file:
        from warehouse.load import store_config

        store_config(warehouse, config.origin, config.to_json())
    spool = args.spool or warehouse.path.with_name(warehouse.path.name + ".spool")
    serve(warehouse, config, host=args.host, port=args.port, token=args.token, spool_dir=spool)
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from hybridlens.dashboard_server import serve_dashboard

    warehouse = _warehouse(args)
    return serve_dashboard(warehouse, args.config, args.host, args.port)


def cmd_demo(args: argparse.Namespace) -> int:
    from hybridlens.demo import run_demo

    return run_demo(args, _warehouse(args))


if __name__ == "__main__":
    entry()
