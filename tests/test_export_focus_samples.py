"""The FinOps Foundation's validator on `hybridlens export focus` of each public billing
sample, loaded in a warehouse of its own: what it still fails is named here, each with the
reason, so a mapping that regresses, or a fix, shows up as a changed set.

Where the validator is not installed the tests skip (`.ci/run` installs it), as they do
without the shared fixtures folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_export_focus import failed_mandatory, validate

from hybridlens.cli import main

# Values the providers' own FOCUS rows carry, kept as delivered: ContractedCost null on
# Oracle's rows, AWS's EC2 under both Compute and Storage, Oracle's `Usage-based`.
FOCUS_SAMPLE = {
    "2024-09": ["ContractedCost-C-000-M", "ContractedCost-C-003-M",
                "ContractedCost-C-004-M", "ServiceName-C-000-M"],
    "2024-10": ["ChargeFrequency-C-003-M", "ContractedCost-C-000-M", "ContractedCost-C-003-M",
                "ContractedCost-C-004-M"],
}  # fmt: skip
CASES = [
    ("aws-cur-legacy-sample-excerpt.csv", "2023-11", []),
    # its name says no dataset; its costs are in Canadian dollars (the config's rate)
    ("azure-ea-export-sample-focus-converters.csv", "2023-09", []),
    ("azure-EA_ActualCost_Small.csv", "2023-09", []),
    ("azure-EA_AmortizedCost_Small.csv", "2023-09", []),
    ("gcp-billing-export-koku-2024-03-01_5.csv", "2024-02", []),
    ("gcp-billing-export-koku-2024-03-01_5.csv", "2024-03", []),
    *(("focus-1.0-sample-excerpt.csv", m, failed) for m, failed in FOCUS_SAMPLE.items()),
]


@pytest.mark.parametrize(("sample", "month", "failing"), CASES)
def test_the_validator_fails_a_sample_s_export_only_where_its_source_does(
    fixtures_dir: Path, tmp_path: Path, sample: str, month: str, failing: list[str]
) -> None:
    config = tmp_path / "hybridlens.toml"
    config.write_text(
        '[billing]\nrates = [{ currency = "CAD", rate = 0.74, since = 2023-01-01 }]\n'
    )
    common = ["--warehouse", str(tmp_path / "w.duckdb"), "--config", str(config)]
    source = fixtures_dir / "billing" / sample
    dataset = ["--dataset", "actual"] if sample.startswith("azure-ea-export") else []
    assert main(["ingest", "billing", *common, *dataset, str(source)]) == 0
    out = tmp_path / f"{month}.parquet"
    assert main(["export", "focus", *common, "--month", month, "--out", str(out)]) == 0
    report = validate(out)
    assert failed_mandatory(report) == sorted(failing), "\n".join(
        line for line in report.splitlines() if "❌" in line
    )
