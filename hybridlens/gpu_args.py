"""The flags of `ingest gpu --prometheus` and `collect gpu`, apart from their handlers, so
building the command line imports no HTTP client or NVML binding (every command pays for
what the parser imports)."""

from __future__ import annotations

import argparse
from datetime import timedelta

from hybridlens.output import positive_int
from ingest.gpu.durations import parse_duration


def duration(text: str) -> timedelta:
    """argparse type for `--since` / `--step` / `--interval`: `60s`, `15m`, `24h`, `1h30m`."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_prometheus_arguments(parser: argparse.ArgumentParser) -> None:
    """The Prometheus flags of `hybridlens ingest gpu` (it already has `--environment`)."""
    group = parser.add_argument_group("Prometheus HTTP API")
    group.add_argument(
        "--prometheus",
        metavar="URL",
        default=None,
        help="pull the DCGM series from this Prometheus server (http(s)://host:9090)",
    )
    group.add_argument(
        "--since",
        type=duration,
        default=timedelta(hours=24),
        help="how far back from now to pull (default 24h)",
    )
    group.add_argument(
        "--step",
        type=duration,
        default=timedelta(seconds=60),
        help="the resolution of the pull: one sample per GPU per step (default 60s)",
    )
    group.add_argument(
        "--match",
        default="",
        metavar="SELECTOR",
        help="a label selector added to every query, e.g. '{job=\"dcgm\"}'",
    )
    group.add_argument(
        "--prometheus-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long one query may take before it is retried (default 10)",
    )


def add_collect_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `hybridlens collect gpu`."""
    parser.add_argument(
        "--interval",
        type=duration,
        default=timedelta(seconds=10),
        help="time between samples (default 10s)",
    )
    parser.add_argument(
        "--count",
        type=positive_int,
        default=None,
        metavar="N",
        help="take N samples, then stop (default: until interrupted)",
    )
    parser.add_argument(
        "--environment",
        default=None,
        help="the environment of this host's GPUs when no config rule names it",
    )
    parser.add_argument(
        "--host-id",
        default=None,
        help="the cloud's id of this host, as its bill names it (default: the EC2 instance id "
        "in the board's asset tag, where there is one)",
    )
