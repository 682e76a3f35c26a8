"""`hybridlens`: the command line. Every command takes --warehouse and --config.

Results go to stdout (only results: `metrics --format json` pipes into jq); progress,
logs and summaries go to stderr. Exit codes: 0 ok, 1 something was quarantined or
failed (the summary says what and where to look), 2 bad usage or config.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from hybridlens import __version__
from warehouse.config import Config, resolve
from warehouse.db import Warehouse, default_path
from warehouse.errors import ConfigError, WarehouseError, WarehouseMissingError
from warehouse.report import LoadReport, Status

log = logging.getLogger("hybridlens")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.run(args) or 0)
    except (ConfigError, ValueError) as exc:
        print(f"hybridlens: error: {exc}", file=sys.stderr)
        return 2
    except WarehouseMissingError as exc:
        print(f"hybridlens: {exc}", file=sys.stderr)
        return 1
    except WarehouseError as exc:
        print(f"hybridlens: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hybridlens: interrupted", file=sys.stderr)
        return 130


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
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--no-serve", action="store_true", help="stop after the ingest")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8501)
    p.set_defaults(run=cmd_demo)

    p = sub.add_parser("sample", parents=[common], help="write the demo scenario's files")
    p.add_argument("outdir", type=Path)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--scale", type=float, default=1.0)
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

    p = sub.add_parser("serve-otlp", parents=[common], help="OTLP/HTTP receiver")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4318)
    p.add_argument(
        "--token",
        default=os.environ.get("HYBRIDLENS_OTLP_TOKEN"),
        help="require 'Authorization: Bearer TOKEN' (or $HYBRIDLENS_OTLP_TOKEN)",
    )
    p.add_argument(
        "--spool", type=Path, default=None, help="spool directory (default: <warehouse>.spool)"
    )
    p.set_defaults(run=cmd_serve_otlp)

    p = sub.add_parser("metrics", parents=[common], help="latency, availability, uptime, accuracy")
    p.add_argument(
        "--from",
        dest="start",
        type=_parse_time,
        default=None,
        help="inclusive start, ISO 8601, UTC unless it says otherwise",
    )
    p.add_argument("--to", dest="end", type=_parse_time, default=None, help="exclusive end")
    p.add_argument(
        "--by",
        default="environment,model",
        help="group columns from environment,model,version (default environment,model)",
    )
    p.add_argument("--environment", action="append", default=None, help="only this (repeatable)")
    p.add_argument("--model", action="append", default=None, help="only this (repeatable)")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.set_defaults(run=cmd_metrics)

    p = sub.add_parser("dashboard", parents=[common], help="serve the Streamlit dashboard")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8501)
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
    return Warehouse(args.warehouse or default_path())


def _config(args: argparse.Namespace, warehouse: Warehouse) -> tuple[Config, bool]:
    return resolve(args.config, warehouse)


def _bar(desc: str, unit: str = "B") -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A tqdm bar on stderr (only on a terminal) driven by (done, total) callbacks."""
    bar: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(
                total=total,
                desc=desc,
                unit=unit,
                unit_scale=True,
                file=sys.stderr,
                disable=None,
                mininterval=0.5,
            )
        b = bar["bar"]
        b.total = total
        b.update(done - b.n)

    def close() -> None:
        if "bar" in bar:
            bar["bar"].close()

    return update, close


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


def _url_or_path(path: Path) -> Path | str:
    text = str(path)
    for scheme in ("http", "https"):
        if text.startswith(f"{scheme}:/") and not path.exists():
            return f"{scheme}://{text[len(scheme) + 2 :].lstrip('/')}"
    return path


def report_ingest(report: LoadReport, warehouse: Warehouse) -> int:
    """The summary of a load on stderr; the exit status (1 when anything was quarantined,
    failed or truncated)."""
    files = sum(1 for i in report.inputs if i.status is not Status.FAILED)
    print(
        f"loaded {report.rows('spans'):,} spans and {report.rows('evaluations'):,} evaluations "
        f"from {files} files into {warehouse.path} ({report.duplicates():,} duplicates "
        f"ignored, {report.files_skipped} unchanged files skipped)",
        file=sys.stderr,
    )
    for what, n in sorted(report.skipped.items()):
        print(f"  skipped {n:,} {what}", file=sys.stderr)
    if report.pending_bytes:
        print(
            f"  {report.pending_bytes:,} bytes of incomplete records at file ends were left "
            "for the next run",
            file=sys.stderr,
        )
    for failure in report.failures[:20]:
        print(f"  failed: {failure}", file=sys.stderr)
    for cut in report.truncated[:20]:
        print(f"  truncated: {cut.message or cut.uri}", file=sys.stderr)
    if report.quarantined:
        print(
            f"{report.quarantined:,} bad records were quarantined; see them with: duckdb "
            f'{warehouse.path} "SELECT uri, location, error FROM quarantine ORDER BY '
            'load_id DESC LIMIT 50"',
            file=sys.stderr,
        )
    return 0 if report.ok else 1


def cmd_metrics(args: argparse.Namespace) -> int:
    from warehouse.metrics import check_group, metrics

    by = check_group(args.by.split(","))
    warehouse = _warehouse(args)
    config, _ = _config(args, warehouse)
    frame = metrics(
        warehouse,
        config,
        start=args.start,
        end=args.end,
        by=by,
        environments=args.environment,
        models=args.model,
    )
    if args.format == "json":
        sys.stdout.write(frame.write_json() + "\n")
    elif args.format == "csv":
        sys.stdout.write(frame.write_csv())
    else:
        print_table(frame)
    return 0


def print_table(frame: Any) -> None:
    if frame.is_empty():
        print("no requests in the selected range", file=sys.stderr)
        return
    headers = frame.columns
    rows = [[_cell(v) for v in row] for row in frame.iter_rows()]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for r in rows:
        print(
            "  ".join(
                c.rjust(w) if i >= 1 and c[:1].isdigit() else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def cmd_serve_otlp(args: argparse.Namespace) -> int:
    from ingest.receiver import serve

    warehouse = _warehouse(args)
    config, from_file = _config(args, warehouse)
    if from_file:
        from warehouse.load import store_config

        store_config(warehouse, config.origin, config.to_json())
    spool = args.spool or warehouse.path.with_name(warehouse.path.name + ".spool")
    serve(warehouse, config, host=args.host, port=args.port, token=args.token, spool_dir=spool)
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    warehouse = _warehouse(args)
    return serve_dashboard(warehouse, args.config, args.host, args.port)


def serve_dashboard(warehouse: Warehouse, config: Path | None, host: str, port: int) -> int:
    app = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
    env = dict(os.environ, HYBRIDLENS_WAREHOUSE=str(warehouse.path.absolute()))
    if config:
        env["HYBRIDLENS_CONFIG"] = str(Path(config).absolute())
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--theme.base",
        "light",
    ]
    print(f"serving the dashboard on http://{host}:{port} (Ctrl-C stops it)", file=sys.stderr)
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ingest.traces import ingest_paths
    from sample_data.generator import generate
    from warehouse.config import load_file
    from warehouse.load import store_config

    warehouse = _warehouse(args)
    data: Path = args.data
    if not (data / "scenario.json").exists():
        update, close = _bar("generating the demo scenario", unit="day")
        try:
            summary = generate(
                data, days=args.days, seed=args.seed, scale=args.scale, progress=update
            )
        finally:
            close()
        print(f"generated {summary['spans']:,} spans in {data}", file=sys.stderr)
    else:
        print(f"using the scenario already in {data}", file=sys.stderr)
    if args.config:
        config = load_file(args.config)
    else:
        # Beside the installed package, as the dashboard's app.py is found: a file path
        # works for a wheel and a checkout alike.
        config = load_file(Path(__file__).resolve().parent.parent / "sample_data" / "scenario.toml")
    store_config(warehouse, config.origin, config.to_json())
    update, close = _bar("ingesting")
    try:
        report = ingest_paths(warehouse, [data / "traces", data / "logs"], config, progress=update)
    finally:
        close()
    status = report_ingest(report, warehouse)
    if args.no_serve:
        return status
    return serve_dashboard(warehouse, args.config, args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
