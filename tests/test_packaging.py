"""The wheel carries what a plain `pip install .` needs: SQL, the scenario, the pages."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("hybridlens-*.whl")
    return zipfile.ZipFile(built)


def test_wheel_has_every_sql_file(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for sql in (ROOT / "warehouse").rglob("*.sql"):
        assert sql.relative_to(ROOT).as_posix() in names


def test_wheel_has_the_scenario_and_its_small_copy(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert "sample_data/scenario.toml" in names
    assert "sample_data/generator.py" in names
    small = [n for n in names if n.startswith("sample_data/small/")]
    committed = [p for p in (ROOT / "sample_data" / "small").rglob("*") if p.is_file()]
    assert len(small) == len(committed) > 0


def test_wheel_has_the_dashboard(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for page in (ROOT / "dashboard").rglob("*.py"):
        assert page.relative_to(ROOT).as_posix() in names


def test_wheel_declares_the_console_script(wheel: zipfile.ZipFile) -> None:
    (entry_points,) = [n for n in wheel.namelist() if n.endswith("entry_points.txt")]
    assert "hybridlens = hybridlens.cli:entry" in wheel.read(entry_points).decode()


def test_wheel_has_every_module_of_ours(wheel: zipfile.ZipFile) -> None:
    """A new module (the demo's loader, the error mapping) ships without a packaging edit."""
    names = set(wheel.namelist())
    for package in ("hybridlens", "warehouse", "ingest", "forecasting", "dashboard", "sample_data"):
        for module in (ROOT / package).rglob("*.py"):
            assert module.relative_to(ROOT).as_posix() in names
    assert "hybridlens/demo.py" in names and "warehouse/progress.py" in names
