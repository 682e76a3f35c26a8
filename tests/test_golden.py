"""Golden files over the committed small copy: what `metrics` prints and what each page draws.

A refactor keeps every figure identical; this test is the proof. The committed small copy
(`sample_data/small`) is loaded through the real ingest with the demo's config, then:

- `hybridlens metrics --by environment,model,version --format json` is compared with
  `tests/golden/metrics_env_model_version.json`;
- each dashboard page is rendered with `AppTest` (default filters, as a first visit) and
  the figures it draws — KPI cards, table cells, the data of every plotly trace — are
  compared with `tests/golden/page_<name>.json`.

A change that moves a figure on purpose regenerates the files in its own commit, saying
why: `HYBRIDLENS_UPDATE_GOLDEN=1 pytest tests/test_golden.py`.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from dashboard_support import APP, PAGES
from streamlit.testing.v1 import AppTest

from hybridlens.cli import main
from ingest.traces import ingest_paths
from warehouse.config import load_file
from warehouse.db import Warehouse
from warehouse.load import store_config

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "sample_data" / "small"
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("HYBRIDLENS_UPDATE_GOLDEN") == "1"
DIGITS = 10  # significant digits kept for floats: figures, not summation-order noise


@pytest.fixture(scope="module")
def small_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("golden") / "small.duckdb"
    config = load_file(ROOT / "sample_data" / "scenario.toml")
    warehouse = Warehouse(path)
    store_config(warehouse, config.origin, config.to_json())
    summary = ingest_paths(warehouse, [SMALL / "traces", SMALL / "logs"], config)
    assert summary.ok, summary.failures
    return path


def _round(value: Any) -> Any:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return float(f"{value:.{DIGITS}g}")
    if isinstance(value, list):
        return [_round(v) for v in value]
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return value


def _check(name: str, got: Any) -> None:
    got = _round(got)
    path = GOLDEN / f"{name}.json"
    if UPDATE or not path.exists():
        path.write_text(json.dumps(got, indent=1, sort_keys=True, default=str) + "\n")
        if not UPDATE:
            pytest.fail(f"{path} did not exist: written now, commit it and run again")
        return
    want = json.loads(path.read_text())
    assert json.loads(json.dumps(got, sort_keys=True, default=str)) == want, (
        f"{name} differs from {path}; if the change is on purpose, regenerate with "
        "HYBRIDLENS_UPDATE_GOLDEN=1 in a commit of its own that says why"
    )


def test_metrics_by_environment_model_version(
    small_warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        [
            "metrics",
            "--warehouse",
            str(small_warehouse),
            "--by",
            "environment,model,version",
            "--format",
            "json",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    _check("metrics_env_model_version", json.loads(out))


_TRACE_KEYS = ("name", "x", "y", "z", "text", "customdata", "values", "labels", "base")


def _drawn(at: AppTest) -> dict[str, Any]:
    """What a page showed: cards, table cells and the data of every chart trace."""
    metrics = [[m.label, str(m.value), str(m.delta or "")] for m in at.metric]
    tables = [
        {
            "columns": [str(c) for c in df.value.columns],
            "rows": json.loads(df.value.to_json(orient="values", date_format="iso")),
        }
        for df in at.dataframe
    ]
    charts = []
    for element in at.get("plotly_chart"):
        spec = json.loads(element.proto.spec)
        charts.append(
            [
                {k: t[k] for k in _TRACE_KEYS if k in t} | {"type": t.get("type", "scatter")}
                for t in spec.get("data", [])
            ]
        )
    return {"metrics": metrics, "tables": tables, "charts": charts}


@pytest.mark.parametrize("page", list(PAGES), ids=[str(p) for p in PAGES])
def test_page_draws_the_same_figures(
    small_warehouse: Path, page: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYBRIDLENS_WAREHOUSE", str(small_warehouse))
    monkeypatch.delenv("HYBRIDLENS_CONFIG", raising=False)
    monkeypatch.chdir(small_warehouse.parent)
    at = AppTest.from_file(str(APP), default_timeout=60)
    if page is not None:
        at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    name = "overview" if page is None else Path(page).stem
    _check(f"page_{name}", _drawn(at))
