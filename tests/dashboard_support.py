"""Shared helpers for the dashboard tests: a small scenario warehouse and rendered text.

The warehouse is the demo generator's scenario (10 days ending 2026-11-01, scale 0.1)
loaded through the real ingest, with a config that differs from the demo's on purpose:
edge-munich is left out (so it must show "no SLO set"), a minute needs only 2 requests
to be judged (so the light test traffic still has down minutes behind the gcp outage),
and a trace link template is set. A few spans with hostile names are added, to prove
that telemetry text never reaches markdown or plotly's HTML-ish labels unescaped.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from otlp_factory import BASE_NS, SpanSpec, jsonl, traces_request

from hybridlens.ingest_gpu import GpuInput, ingest_gpu
from ingest.traces import ingest_paths
from sample_data.generator import generate
from warehouse.config import Config, parse
from warehouse.db import Warehouse
from warehouse.load import store_config

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
END = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = 10
GPU_DAYS = 4  # the stale job (sample_data.gpu_inventory.STALE_JOB) idles the last six
UNCONFIGURED = "edge-munich"
TRACE_LINK = "https://traces.example/trace/{trace_id}?from=hybridlens"
HOSTILE_ENV = "[pwned](javascript:alert(1)) <b>env</b>"
HOSTILE_SERVICE = "**svc** <script>alert(1)</script>"
HOSTILE_MODEL = "<img src=x onerror=alert(1)>"
PAGES = {
    None: "Fleet overview",
    "views/environments.py": "Environments",
    "views/gpus.py": "GPUs",
    "views/spend.py": "Spend",
}
HOSTILE_HOST = "<script>alert(1)</script>gpu-host"


@dataclass(frozen=True)
class Scenario:
    warehouse: Warehouse
    config: Config
    data_dir: Path


def scenario_config() -> Config:
    """The demo config with the differences described in the module docstring."""
    raw: dict[str, Any] = tomllib.loads((ROOT / "sample_data" / "scenario.toml").read_text())
    raw["environments"] = [e for e in raw["environments"] if e["name"] != UNCONFIGURED]
    for env in raw["environments"]:
        env["slo"]["uptime_min_requests"] = 2
    raw["dashboard"]["trace_link"] = TRACE_LINK
    return parse(raw, "tests/dashboard_support.py")


def hostile_spans(path: Path) -> None:
    """A few failing request spans whose names try markdown and HTML injection."""
    resource = {"service.name": HOSTILE_SERVICE, "deployment.environment.name": HOSTILE_ENV}
    spans = [
        SpanSpec(
            name="POST /<i>x</i>",
            kind=2,
            start_ns=BASE_NS + i * 5_000_000_000,
            duration_ms=120.0 + i,
            status_code=2 if i % 2 else 0,
            attributes={"gen_ai.request.model": HOSTILE_MODEL},
        )
        for i in range(8)
    ]
    path.write_bytes(jsonl(traces_request(resource, spans)))


def build_scenario(root: Path) -> Scenario:
    """Generate, configure and ingest the test scenario under `root` (about 2 s)."""
    data = root / "scenario"
    generate(data, days=DAYS, seed=7, scale=0.1, end=END)
    hostile = root / "hostile"
    hostile.mkdir()
    hostile_spans(hostile / "hostile.jsonl")
    config = scenario_config()
    warehouse = Warehouse(root / "dash.duckdb")
    store_config(warehouse, config.origin, config.to_json())
    summary = ingest_paths(warehouse, [data / "traces", data / "logs", hostile], config)
    assert summary.ok, summary.failures
    # GPU telemetry through the real `ingest gpu` path: the last GPU_DAYS days of history
    # (the minute scrapes of the last day and the older days are left out: the pages read
    # the same hours whatever their resolution, and ingesting all ten days cost 20 s), and
    # one scrape whose host and environment try HTML injection.
    first = (END - timedelta(days=GPU_DAYS)).date().isoformat()
    gpu_files = [
        p
        for p in sorted((data / "gpu").rglob("*"))
        if p.is_file()
        and "dcgm" not in p.parts
        and not (p.name[:4].isdigit() and p.name[:10] < first)  # undated: the nvidia-smi log
    ]
    hostile_scrape(hostile / "hostile.prom")
    inputs = [GpuInput(str(p)) for p in gpu_files]
    inputs.append(GpuInput(str(hostile / "hostile.prom"), environment=HOSTILE_ENV))
    loaded = ingest_gpu(warehouse, inputs, config)
    assert loaded.report.ok, loaded.report.failures
    return Scenario(warehouse, config, data)


def copy_scenario(built: Scenario, root: Path) -> Scenario:
    """A module's own copy of the session's scenario warehouse (built once: generating and
    ingesting it costs 20 s, a copy a tenth of a second), so a test that loads more into
    it changes no other module's figures. The generated files are shared, read only."""
    target = root / built.warehouse.path.name
    shutil.copyfile(built.warehouse.path, target)
    return Scenario(Warehouse(target), built.config, built.data_dir)


def hostile_scrape(path: Path) -> None:
    """A DCGM scrape an hour before the end whose labels try markdown and HTML injection."""
    labels = (
        f'gpu="0",UUID="GPU-0bad0bad-0000-4000-8000-000000000001",modelName="<img src=x>",'
        f'Hostname="{HOSTILE_HOST}"'
    )
    stamp = (END - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    path.write_text(
        f"# scraped at {stamp}\n"
        f"DCGM_FI_DEV_GPU_UTIL{{{labels}}} 42\nDCGM_FI_DEV_POWER_USAGE{{{labels}}} 210.5\n",
        encoding="utf-8",
    )


# -- reading what a page rendered ---------------------------------------------------------------
MARKDOWN_KINDS = (
    "title",
    "header",
    "subheader",
    "markdown",
    "caption",
    "info",
    "warning",
    "error",
    "success",
)


def markdown_texts(at: Any) -> list[str]:
    """Every string a page rendered through Streamlit's markdown path."""
    texts: list[str] = []
    for kind in MARKDOWN_KINDS:
        texts += [str(e.value) for e in getattr(at, kind)]
        texts += [str(e.value) for e in getattr(at.sidebar, kind)]
    for metric in at.metric:
        texts += [metric.label, str(metric.value), str(metric.delta or "")]
    return texts


def dataframe_cells(at: Any) -> list[str]:
    return [str(v) for df in at.dataframe for v in df.value.astype(str).to_numpy().ravel()]


def plotly_specs(at: Any) -> list[str]:
    """The JSON spec of every plotly chart on the page."""
    return [e.proto.spec for e in at.get("plotly_chart")]


def metric(at: Any, label: str) -> Any:
    found = [m for m in at.metric if m.label == label]
    assert found, f"no st.metric labelled {label!r}; got {[m.label for m in at.metric]}"
    return found[0]


NUMBER = re.compile(r"[-+]?[\d,]*\.?\d+")


def number(text: str) -> float:
    """The first number in a label: "4,794" -> 4794.0, "99.38%" -> 99.38."""
    found = NUMBER.search(str(text))
    assert found, f"no number in {text!r}"
    return float(found.group().replace(",", ""))


def percent(text: str) -> float:
    """A percent label as a fraction: "99.38%" -> 0.9938."""
    assert str(text).endswith("%"), text
    return number(text) / 100


RAW_MISSING = re.compile(r"(?<![\w.])(nan|NaN|None|inf|-inf|Infinity|null)(?![\w.])")


def open_page(warehouse: Path, page: str, monkeypatch: Any) -> Any:
    """An AppTest of `page` over `warehouse` (its stored config), run once and free of
    exceptions: how a module's tests see the page a user opens."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("HYBRIDLENS_WAREHOUSE", str(warehouse))
    monkeypatch.delenv("HYBRIDLENS_CONFIG", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at
