"""The config's billing section: the folders `hybridlens ingest billing` reads by default.

Declared apart from `config_gpu` for the same reason it is apart from `config_schema`: each
source family adds its own section beside the others instead of growing one file.
"""

from __future__ import annotations

from dataclasses import dataclass

from warehouse.config_fields import Choice, Text, setting

FORMATS = ("auto", "focus", "aws-cur", "gcp", "azure")
DATASETS = ("auto", "actual", "amortized")


@dataclass(frozen=True)
class BillingSource:
    path: str = setting(
        Text(), "a billing export file or a folder of them (read recursively)", required=True
    )
    format: str = setting(
        Choice(FORMATS),
        "`auto`: told from each file's columns; `focus`: every file must be FOCUS; "
        "`aws-cur`: every file must be an AWS CUR (legacy or 2.0); `gcp`: every file must be "
        "a Google Cloud billing export; `azure`: every file must be Azure cost details",
        "auto",
    )
    dataset: str = setting(
        Choice(DATASETS),
        "which dataset Azure cost details files hold (their columns do not say); `auto`: told "
        "from the file or folder name (`ActualCost`, `AmortizedCost`)",
        "auto",
    )
