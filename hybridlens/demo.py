"""`hybridlens demo`: the first run, with a page to look at within seconds.

Generating 90 days takes about a minute and loading them another, so the demo does not
make anyone wait for both: it starts the dashboard first, generates the scenario in a
child process, and loads each day as soon as the generator has finished writing it
(oldest first, in batches that double from one day, so the first page has data within
seconds and later batches amortize the cost of a publish). The pages fill up while a
banner, fed by the progress record beside the warehouse (`warehouse.progress`), says how
many days are loaded and how many are left. The clouds' billing exports come last, one
`ingest billing` delivery at a time in the order the providers delivered them (a month's
bill is whole only once its last day is written, and a restatement must replace what it
restates); until they are in, the record stays "loading" and says so in its message.

Nothing is counted twice and nothing is claimed before it is loaded: a day's files are
loaded once, only after the generator has moved past that day, and the banner counts days
from what was published. A rerun on the same folder resumes: an interrupted generation
is rerun with the same end date (so the files come out byte-identical and the loaded ones
are skipped as unchanged), and a finished demo is served at once, with nothing
regenerated or reloaded.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import queue
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hybridlens import demo_billing
from hybridlens.dashboard_server import (
    check_port,
    serve_dashboard,
    start_dashboard,
    stop_dashboard,
)
from hybridlens.errors import UsageError
from hybridlens.output import progress_bar, quarantine_hint
from warehouse.config import Config
from warehouse.db import Warehouse
from warehouse.progress import LoadProgress, read_progress, write_progress

MAX_BATCH_DAYS = 8
POLL_S = 0.5


@dataclass(frozen=True)
class Scenario:
    """The generator's arguments; with the same ones it writes the same bytes."""

    data: Path
    days: int
    seed: int
    scale: float
    end: datetime

    def params(self) -> dict[str, Any]:
        return {
            "data": str(self.data.absolute()),
            "days": self.days,
            "seed": self.seed,
            "scale": self.scale,
            "end": self.end.isoformat(),
        }

    def dates(self) -> list[str]:
        """The UTC date naming each day's files, oldest first (as the generator names them)."""
        start = self.end - timedelta(days=self.days)
        return [(start + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(self.days)]


@dataclass
class Outcome:
    """What a demo load did, for the summary line and the exit status."""

    days: int = 0
    files: int = 0
    quarantined: int = 0
    failures: int = 0
    already_loaded: bool = False

    @property
    def ok(self) -> bool:
        return not self.quarantined and not self.failures


def today() -> datetime:
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def choose_scenario(
    data: Path, days: int, seed: int, scale: float, previous: LoadProgress | None
) -> tuple[Scenario, bool]:
    """The scenario to load and whether its files are all written already.

    A finished scenario.json wins (its own arguments, whatever the flags say); else the end
    date of an interrupted run with the same arguments, so a resumed generation rewrites
    the same files; else today 00:00 UTC.
    """
    summary = data / "scenario.json"
    if summary.exists():
        raw = json.loads(summary.read_text(encoding="utf-8"))
        end = datetime.fromisoformat(str(raw["end"]).replace("Z", "+00:00"))
        return Scenario(data, int(raw["days"]), int(raw["seed"]), float(raw["scale"]), end), True
    wanted = Scenario(data, days, seed, scale, today())
    if previous is not None:
        same = {k: v for k, v in previous.params.items() if k != "end"}
        if same == {k: v for k, v in wanted.params().items() if k != "end"}:
            end = datetime.fromisoformat(str(previous.params["end"]))
            return Scenario(data, days, seed, scale, end), False
    return wanted, False


def day_files(
    scenario: Scenario, kinds: tuple[str, ...] = ("traces", "logs")
) -> dict[str, list[Path]]:
    """date -> the files of `kinds` written for it so far (a GPU file's name starts with
    its date: `<date>.<host>.jsonl.zst`, `<date>T<HHMM>Z.prom`)."""
    found: dict[str, list[Path]] = {}
    for kind in kinds:
        for path in sorted((scenario.data / kind).glob("**/*")):
            if path.is_file() and not path.name.startswith(".") and path.name[:4].isdigit():
                found.setdefault(path.name[:10], []).append(path)
    return found


def gpu_logs(scenario: Scenario) -> list[Path]:
    """The GPU logs appended to day by day (nvidia-smi CSVs), loaded once they are whole."""
    return sorted((scenario.data / "gpu").glob("*/nvidia-smi/*.csv"))


def _load_gpu(warehouse: Warehouse, config: Config, files: list[Path]) -> Any:
    from hybridlens.ingest_gpu import GpuInput, ingest_gpu

    return ingest_gpu(warehouse, [GpuInput(str(f)) for f in files], config).report


def _generate(params: dict[str, Any], messages: Any) -> None:
    """The child process: write the scenario, saying after each day how many are done."""
    from sample_data.generator import generate

    try:
        generate(
            Path(params["data"]),
            days=params["days"],
            seed=params["seed"],
            scale=params["scale"],
            end=datetime.fromisoformat(params["end"]),
            progress=lambda done, _total: messages.put(("day", done)),
        )
    except BaseException as exc:
        messages.put(("error", f"{type(exc).__name__}: {exc}"))
        raise
    messages.put(("done", params["days"]))


class _Generator:
    """The generator child and what it has said: how many days are written."""

    def __init__(self, scenario: Scenario, written: bool) -> None:
        self.days = scenario.days if written else 0
        self.error = ""
        self._messages: Any = None
        self._process: Any = None
        if not written:
            ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads
            self._messages = ctx.Queue()
            self._process = ctx.Process(
                target=_generate, args=(scenario.params(), self._messages), daemon=True
            )
            self._process.start()

    @property
    def finished(self) -> bool:
        return self._process is None

    def wait(self, timeout_s: float) -> None:
        """Take what the child said within `timeout_s`; notice when it is gone."""
        if self._process is None:
            return
        try:
            kind, value = self._messages.get(timeout=timeout_s)
        except queue.Empty:
            if not self._process.is_alive():
                self.error = self.error or (
                    f"the generator stopped with exit code {self._process.exitcode}"
                )
                self._process = None
            return
        if kind == "day":
            self.days = max(self.days, int(value))
        elif kind == "error":
            self.error = str(value)
        elif kind == "done":
            self.days = int(value)
            self._process.join()
            self._process = None

    def stop(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
        self._process = None


def load(
    warehouse: Warehouse,
    config: Config,
    scenario: Scenario,
    written: bool,
    *,
    previous: LoadProgress | None = None,
    on_day: Callable[[int, int], None] | None = None,
) -> Outcome:
    """Generate (unless `written`) and load the scenario day by day, keeping the record.

    `previous`, the record of an interrupted load of the same scenario into this warehouse,
    says which days are in already: they are not loaded again (a rerun of the generator
    rewrites them with the same bytes, and only the days after them are loaded).
    """
    from ingest.traces import ingest_paths

    outcome = Outcome()
    record = LoadProgress(state="loading", days_total=scenario.days, params=scenario.params())
    if previous is not None and previous.params == scenario.params():
        outcome.days, outcome.files = previous.days_loaded, previous.files_loaded
        record = record.advanced(
            days_loaded=outcome.days,
            files_loaded=outcome.files,
            loaded_through=previous.loaded_through,
        )
    write_progress(warehouse.path, record)
    generator = _Generator(scenario, written)
    dates = scenario.dates()
    try:
        while outcome.days < scenario.days:
            ready = generator.days - outcome.days
            if ready <= 0:
                if generator.finished:
                    break
                generator.wait(POLL_S)
                continue
            batch = dates[outcome.days : outcome.days + min(ready, _batch_days(outcome.days))]
            found = day_files(scenario)
            files = [path for date in batch for path in found.get(date, [])]
            report = ingest_paths(warehouse, files, config) if files else None
            on_gpus = day_files(scenario, ("gpu",))
            gpu_files = [path for date in batch for path in on_gpus.get(date, [])]
            if outcome.days + len(batch) >= scenario.days:  # every day is written by now,
                gpu_files += gpu_logs(scenario)  # so the day-by-day nvidia-smi logs are whole
            gpu_report = _load_gpu(warehouse, config, gpu_files) if gpu_files else None
            outcome.days += len(batch)
            outcome.files += len(files) + len(gpu_files)
            for done in (report, gpu_report):
                if done is not None:
                    outcome.quarantined += int(done.quarantined)
                    outcome.failures += len(done.failures)
            record = record.advanced(
                days_loaded=outcome.days, files_loaded=outcome.files, loaded_through=batch[-1]
            )
            write_progress(warehouse.path, record)
            if on_day:
                on_day(outcome.days, scenario.days)
        while not generator.finished:  # its last act, scenario.json, marks the folder complete
            generator.wait(POLL_S)
        bills = demo_billing.deliveries(scenario.data) if outcome.days >= scenario.days else []
        if bills:  # a month's bill is whole once every day is written: load them last
            record = record.advanced(message="loading the billing exports")
            write_progress(warehouse.path, record)
            loaded, quarantined, failed = demo_billing.load(warehouse, config, bills)
            outcome.files += loaded
            outcome.quarantined += quarantined
            outcome.failures += failed
            record = record.advanced(files_loaded=outcome.files, message="")
            write_progress(warehouse.path, record)
    except BaseException as exc:
        generator.stop()
        interrupted = isinstance(exc, KeyboardInterrupt)
        write_progress(
            warehouse.path,
            record.advanced(
                state="stopped" if interrupted else "failed",
                message="interrupted" if interrupted else f"{type(exc).__name__}: {exc}",
            ),
        )
        raise
    if outcome.days < scenario.days:
        message = generator.error or "the generator stopped early"
        write_progress(warehouse.path, record.advanced(state="failed", message=message))
        raise RuntimeError(
            f"the demo scenario stopped after {outcome.days} of {scenario.days} days: {message}"
        )
    write_progress(warehouse.path, record.advanced(state="done"))
    return outcome


def _batch_days(loaded: int) -> int:
    """1, 1, 2, 4, 8, 8, ... days: the first page fast, then fewer publishes."""
    return max(1, min(MAX_BATCH_DAYS, loaded))


def already_loaded(warehouse: Warehouse, scenario: Scenario) -> bool:
    """True when a finished load of exactly this scenario is recorded for this warehouse."""
    previous = read_progress(warehouse.path)
    return (
        warehouse.exists()
        and previous is not None
        and previous.state == "done"
        and previous.params == scenario.params()
    )


def running_elsewhere(warehouse: Warehouse) -> LoadProgress | None:
    """The record of a demo load that another live process is running on this warehouse."""
    previous = read_progress(warehouse.path)
    if previous is not None and previous.state == "loading":
        return previous
    return None


def lines(outcome: Outcome, warehouse: Warehouse) -> Iterator[str]:
    """The summary for stderr."""
    if outcome.already_loaded:
        yield f"the demo scenario is already loaded in {warehouse.path}"
        return
    yield f"loaded {outcome.days} days ({outcome.files} files) of the demo into {warehouse.path}"
    if outcome.failures:
        yield f"  {outcome.failures} files failed to load"
    if outcome.quarantined:
        yield quarantine_hint(outcome.quarantined, warehouse.path)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_demo(args: argparse.Namespace, warehouse: Warehouse) -> int:
    """`hybridlens demo`: serve at once, generate and load behind the pages, then wait."""
    from warehouse.config import load_file
    from warehouse.load import store_config

    data: Path = args.data
    if data.exists() and not data.is_dir():
        raise UsageError(f"--data {data} is a file; the demo needs a folder for its scenario")
    if not args.no_serve:
        check_port(args.host, args.port)  # before anything is written or generated
    if args.config:
        config = load_file(args.config)
    else:
        # Beside the installed package, as the dashboard's app.py is found: a file path
        # works for a wheel and a checkout alike.
        config = load_file(Path(__file__).resolve().parent.parent / "sample_data" / "scenario.toml")
    previous = read_progress(warehouse.path) if warehouse.exists() else None
    scenario, written = choose_scenario(data, args.days, args.seed, args.scale, previous)
    other = running_elsewhere(warehouse)
    if other is not None or already_loaded(warehouse, scenario):
        say(
            f"a demo load is already running on {warehouse.path} (process {other.pid})"
            if other is not None
            else f"the demo scenario in {data} is already loaded into {warehouse.path}"
        )
        return 0 if args.no_serve else serve_dashboard(warehouse, args.config, args.host, args.port)
    store_config(warehouse, config.origin, config.to_json())
    server = None
    if not args.no_serve:
        server = start_dashboard(warehouse, args.config, args.host, args.port)
    say(
        f"{'loading' if written else 'generating and loading'} {scenario.days} days of the "
        f"demo scenario ({data}) into {warehouse.path}"
        + ("; the pages fill up as the days arrive" if server else "")
    )
    update, close = progress_bar("demo", unit="day")
    try:
        outcome = load(warehouse, config, scenario, written, previous=previous, on_day=update)
    except BaseException:
        if server is not None:
            stop_dashboard(server)
        raise
    finally:
        close()
    for line in lines(outcome, warehouse):
        say(line)
    status = 0 if outcome.ok else 1
    if server is None:
        return status
    try:
        server.wait()
    except KeyboardInterrupt:
        stop_dashboard(server)
    return status
