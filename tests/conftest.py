"""Shared fixtures: the public sample files, a fresh warehouse per test."""

from __future__ import annotations

from pathlib import Path

import pytest
from dashboard_support import Scenario, build_scenario

from warehouse.db import Warehouse

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


@pytest.fixture
def fixtures_dir() -> Path:
    """../shared/fixtures: real public samples, read in place and never copied."""
    if not FIXTURES.is_dir():
        pytest.skip(f"the shared fixtures folder {FIXTURES} is absent on this machine")
    return FIXTURES


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "test.duckdb")


@pytest.fixture(scope="session")
def built_scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    """The dashboard tests' scenario, generated and ingested once per run; modules take a
    copy of it with `dashboard_support.copy_scenario`."""
    return build_scenario(tmp_path_factory.mktemp("scenario"))
