"""Every module of the packages stays under 400 lines: one obvious place for each thing.

Tests and benchmarks are exempt (a test module is a list of cases); package code is not.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hybridlens", "warehouse", "ingest", "forecasting", "dashboard", "sample_data")
LIMIT = 400


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_the_packages_have_modules() -> None:
    assert len(_modules()) > 20


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_is_under_the_limit(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines < LIMIT, f"{path.relative_to(ROOT)} has {lines} lines (limit {LIMIT})"
