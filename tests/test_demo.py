"""`hybridlens demo`: loaded day by day behind a served dashboard, with the same figures
as one ingest of the same files, resumable, and never in the way of a reader."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from streamlit.testing.v1 import AppTest
from test_cli import hybridlens

from hybridlens import demo
from ingest.traces import ingest_paths
from warehouse.config import load_file
from warehouse.db import Warehouse
from warehouse.load import store_config
from warehouse.progress import LoadProgress, progress_path, read_progress, write_progress

ROOT = Path(__file__).resolve().parents[1]
SCENARIO_TOML = ROOT / "sample_data" / "scenario.toml"
SMALL = ROOT / "sample_data" / "small"
APP = ROOT / "dashboard" / "app.py"
COUNTS = ("requests", "errors", "accuracy_n", "input_tokens", "output_tokens")


def metrics_json(warehouse: Path, cwd: Path) -> list[dict[str, Any]]:
    done = hybridlens(
        "metrics", "--warehouse", warehouse, "--by", "environment,model,version", "--format",
        "json", cwd=cwd,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def assert_same_figures(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    """Counts exactly (nothing twice, nothing missing); means up to the order of a sum."""
    assert [list(r.items())[:3] for r in got] == [list(r.items())[:3] for r in want]
    for g, w in zip(got, want, strict=True):
        for key, value in w.items():
            if isinstance(value, float):
                assert g[key] == pytest.approx(value, rel=1e-9), (w["model"], key)
            else:
                assert g[key] == value, (w["model"], key)
    assert sum(r["requests"] for r in got) > 0


def one_shot(data: Path, root: Path) -> Path:
    """The same files in one `ingest traces` and one `ingest gpu` run: the figures the demo
    must match (GPU keys included)."""
    target = root / "one-shot.duckdb"
    done = hybridlens(
        "ingest", "traces", data / "traces", data / "logs", "--warehouse", target, "--config",
        SCENARIO_TOML, cwd=root,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    if (data / "gpu").exists():
        done = hybridlens(
            "ingest", "gpu", data / "gpu", "--warehouse", target, "--config", SCENARIO_TOML,
            cwd=root,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    return target


def data_files(data: Path) -> list[Path]:
    files = [p for kind in ("traces", "logs") for p in (data / kind).glob("*/*")]
    return sorted(files + [p for p in (data / "gpu").rglob("*") if p.is_file()])


def ingest_log(warehouse: Path) -> list[tuple[str, int]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(
            "SELECT uri, count(*) FROM ingest_log GROUP BY uri ORDER BY uri"
        ).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A demo generated and loaded by the command: (folder, data, warehouse)."""
    root = tmp_path_factory.mktemp("demo")
    done = hybridlens(
        "demo", "--no-serve", "--days", "2", "--scale", "0.05", "--data", "d", "--warehouse",
        "w.duckdb", cwd=root,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "generating and loading 2 days" in done.stderr
    assert "loaded 2 days" in done.stderr and "Traceback" not in done.stderr
    return root, root / "d", root / "w.duckdb"


def test_day_by_day_gives_the_figures_of_one_ingest(generated: tuple[Path, Path, Path]) -> None:
    root, data, warehouse = generated
    assert_same_figures(metrics_json(warehouse, root), metrics_json(one_shot(data, root), root))
    files = data_files(data)
    days = [(uri, n) for uri, n in ingest_log(warehouse) if "/billing/" not in uri]
    assert [uri for uri, n in days] == [str(p.absolute()) for p in files]
    assert all(n == 1 for _, n in days), "every day's file was loaded once"
    billed = [f for d in billing_summary(data)["deliveries"] for f in d["files"]]
    record = read_progress(warehouse)
    assert record is not None and record.state == "done" and not record.message
    assert (record.days_loaded, record.days_total) == (2, 2)
    assert record.files_loaded == len(files) + len(billed)
    assert record.loaded_through == max(p.name[:10] for p in files if p.name[:4].isdigit())


def billing_summary(data: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((data / "scenario.json").read_text())["billing"]
    return summary


def test_the_billing_deliveries_are_loaded_last_and_in_order(
    generated: tuple[Path, Path, Path],
) -> None:
    """The ledger ends with the restated month's totals: every delivery was loaded, the
    restatement after the export it restates."""
    _, data, warehouse = generated
    want = {
        (cloud["provider"], month): (Decimal(t["billed_cost"]), Decimal(t["effective_cost"]))
        for cloud in billing_summary(data)["clouds"].values()
        for month, t in cloud["months"].items()
    }
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        got = con.execute(
            "SELECT ProviderName, strftime(BillingPeriodStart AT TIME ZONE 'UTC', '%Y-%m'), "
            "sum(BilledCost), sum(EffectiveCost) FROM billing WHERE NOT x_Modelled GROUP BY ALL"
        ).fetchall()
    finally:
        con.close()
    assert {(p, m): (b, e) for p, m, b, e in got} == want


def test_a_second_demo_starts_at_once_and_loads_nothing(
    generated: tuple[Path, Path, Path],
) -> None:
    root, data, warehouse = generated
    before = {p: p.stat().st_mtime_ns for p in data.rglob("*")}
    log_before = ingest_log(warehouse)
    started = time.monotonic()
    done = hybridlens(
        "demo", "--no-serve", "--days", "2", "--scale", "0.05", "--data", "d", "--warehouse",
        "w.duckdb", cwd=root,
    )  # fmt: skip
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert (
        done.stderr.strip() == f"the demo scenario in d is already loaded into {Path('w.duckdb')}"
    )
    assert {p: p.stat().st_mtime_ns for p in data.rglob("*")} == before, "nothing regenerated"
    assert ingest_log(warehouse) == log_before, "nothing reloaded"
    print(f"a second `hybridlens demo --no-serve` took {took:.2f} s")


def test_an_interrupted_load_resumes_after_its_last_day(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(SMALL, data)
    scenario, written = demo.choose_scenario(data, 90, 7, 1.0, None)
    assert written and scenario.days == 7 and scenario.scale == 0.03  # scenario.json wins
    warehouse = Warehouse(tmp_path / "w.duckdb")
    config = load_file(SCENARIO_TOML)
    store_config(warehouse, config.origin, config.to_json())
    first = scenario.dates()[:3]
    files = demo.day_files(scenario)
    ingest_paths(warehouse, [p for d in first for p in files[d]], config)
    loaded = sum(len(files[d]) for d in first)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    write_progress(
        warehouse.path,
        LoadProgress(
            state="loading", days_total=7, days_loaded=3, files_loaded=loaded,
            loaded_through=first[-1], pid=int(dead.stdout), params=scenario.params(),
        ),
    )  # fmt: skip
    previous = read_progress(warehouse.path)
    assert previous is not None and previous.state == "stopped", "its process is gone"

    done = hybridlens("demo", "--no-serve", "--data", data, "--warehouse", warehouse.path,
                      cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "loaded 7 days" in done.stderr
    assert_same_figures(
        metrics_json(warehouse.path, tmp_path), metrics_json(one_shot(data, tmp_path), tmp_path)
    )
    assert all(n == 1 for _, n in ingest_log(warehouse.path)), "no day loaded twice"
    record = read_progress(warehouse.path)
    assert record is not None and (record.state, record.days_loaded) == ("done", 7)
    assert record.files_loaded == len(data_files(data))


def test_metrics_answer_while_the_demo_loads(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYBRIDLENS_")}
    exe = str(Path(sys.executable).with_name("hybridlens"))
    command = [exe, "demo", "--no-serve", "--days", "2", "--scale", "0.1", "--data", "d",
               "--warehouse", "w.duckdb"]  # fmt: skip
    load = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    answers: list[tuple[int, str, int]] = []
    try:
        while load.poll() is None:
            if not (tmp_path / "w.duckdb").exists():
                time.sleep(0.1)
                continue
            done = hybridlens("metrics", "--warehouse", "w.duckdb", "--format", "json",
                              cwd=tmp_path)  # fmt: skip
            requests = sum(r["requests"] for r in json.loads(done.stdout or "[]"))
            answers.append((done.returncode, done.stderr, requests))
    finally:
        _, err = load.communicate(timeout=300)
    assert load.returncode == 0, err
    assert len(answers) >= 2, "the load ended before metrics could ask twice"
    for status, stderr, _ in answers:
        assert status == 0 and "lock" not in stderr and "busy" not in stderr, stderr
    seen = [requests for _, _, requests in answers]
    assert seen == sorted(seen), "figures only grow while days are added"
    final = sum(r["requests"] for r in metrics_json(tmp_path / "w.duckdb", tmp_path))
    assert seen[0] < final, "metrics answered with part of the data before the load ended"


def test_a_stale_loading_record_reads_as_stopped(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    assert read_progress(db) is None
    write_progress(db, LoadProgress(state="loading", days_total=5, days_loaded=2))
    assert read_progress(db) == LoadProgress(
        state="loading",
        days_total=5,
        days_loaded=2,
        pid=os.getpid(),
        updated_at=read_progress(db).updated_at,  # type: ignore[union-attr]
    )
    raw = json.loads(progress_path(db).read_text())
    progress_path(db).write_text(json.dumps({**raw, "pid": 2**22 + 12345}))
    stale = read_progress(db)
    assert stale is not None and stale.state == "stopped"
    progress_path(db).write_text('{"state": "loading", "days_to')  # torn by hand
    assert read_progress(db) is None
    assert [p.name for p in tmp_path.iterdir()] == [progress_path(db).name], "no temp files left"


# -- the banner ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("banner")
    warehouse = Warehouse(root / "w.duckdb")
    config = load_file(SCENARIO_TOML)
    store_config(warehouse, config.origin, config.to_json())
    ingest_paths(warehouse, [SMALL / "traces", SMALL / "logs"], config)
    return warehouse.path


def banner_texts(warehouse: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[str]]:
    monkeypatch.setenv("HYBRIDLENS_WAREHOUSE", str(warehouse))
    monkeypatch.delenv("HYBRIDLENS_CONFIG", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return [i.value for i in at.info], [w.value for w in at.warning]


def test_the_banner_says_what_is_loaded_and_what_is_left(
    small_warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_progress(
        small_warehouse,
        LoadProgress(state="loading", days_total=7, days_loaded=3, files_loaded=19,
                     loaded_through="2026-10-27"),
    )  # fmt: skip
    infos, warnings = banner_texts(small_warehouse, monkeypatch)
    assert any(
        "Loading the demo scenario: 3 of 7 days loaded (through 2026-10-27), 19 files" in i
        for i in infos
    ), infos
    assert not any("demo load" in w for w in warnings)


def test_a_stopped_load_is_a_warning_and_a_finished_one_is_nothing(
    small_warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_progress(
        small_warehouse,
        LoadProgress(state="stopped", days_total=7, days_loaded=3, message="interrupted"),
    )
    infos, warnings = banner_texts(small_warehouse, monkeypatch)
    assert any("The demo load stopped (interrupted) with 3 of 7 days" in w for w in warnings)
    assert not any("Loading the demo" in i for i in infos)
    write_progress(small_warehouse, LoadProgress(state="done", days_total=7, days_loaded=7))
    infos, warnings = banner_texts(small_warehouse, monkeypatch)
    assert not any("demo" in t for t in infos + warnings), infos + warnings


def test_scenario_dates_name_the_generators_files() -> None:
    scenario = demo.Scenario(SMALL, 7, 7, 0.03, datetime(2026, 11, 1, tzinfo=UTC))
    assert scenario.dates() == sorted(demo.day_files(scenario))


def test_sigterm_stops_the_dashboard_and_its_streamlit_child(tmp_path: Path) -> None:
    """A service manager stops `hybridlens dashboard` (or `demo`) with SIGTERM: the
    Streamlit child must go with it, not keep the port as an orphan."""
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("hybridlens")
    proc = subprocess.Popen(
        [str(exe), "dashboard", "--warehouse", str(tmp_path / "w.duckdb"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    health = f"http://127.0.0.1:{port}/_stcore/health"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(health, timeout=1).read()
            break
        except OSError:
            assert time.monotonic() < deadline, "the dashboard never answered"
            time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0  # stopped as by Ctrl-C, not killed by the signal
    with pytest.raises(OSError):
        urllib.request.urlopen(health, timeout=1).read()
