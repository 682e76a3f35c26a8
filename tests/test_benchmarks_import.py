"""Every benchmark script still imports: they reach into the package's internals (the
billing floor builds the ingest's own SQL), so a rename there must not leave a script that
fails the next time someone measures. Nothing is run or timed here."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))


def test_there_are_benchmarks() -> None:
    assert len(SCRIPTS) > 5


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_the_benchmark_imports(script: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))  # as `python benchmarks/X.py` from the root runs
    module = importlib.import_module(f"benchmarks.{script.stem}")
    if '__name__ == "__main__"' in script.read_text(encoding="utf-8"):  # else a generator
        assert callable(getattr(module, "main", None)), f"{script.name} has no main()"
