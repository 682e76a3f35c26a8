"""GPU telemetry as a broken host or an attacker writes it: each case here once failed a
whole file, or swallowed good lines, where one line was wrong. The files are made here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hybridlens.cli import main
from hybridlens.ingest_gpu import GpuInput, ingest_gpu
from ingest.gpu import exposition
from warehouse.config import Config
from warehouse.db import Warehouse
from warehouse.report import LoadReport, Status

SMI = "timestamp, index, uuid, name, utilization.gpu [%], memory.used [MiB], power.draw [W]\n"


def line(second: int, gpu: int, name: str = "NVIDIA H100") -> str:
    return f"2026/11/30 11:00:{second:02d}.000, {gpu}, GPU-{gpu}-x, {name}, 5{gpu} %, 1 MiB, 1 W\n"


def load(wh: Warehouse, path: Path) -> LoadReport:
    return ingest_gpu(wh, [GpuInput(str(path))], Config()).report


def rows(wh: Warehouse, sql: str) -> list[tuple[Any, ...]]:
    with wh.read() as con:
        return con.execute(sql).fetchall()


def test_a_sample_dated_year_one_is_quarantined_and_the_rest_loads(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    # it reached the cost model, whose day before it cannot exist: the whole file failed
    log = tmp_path / "fra-gpu-09.csv"
    log.write_text(
        SMI + "0001/01/01 00:00:00.000, 0, GPU-0-x, H100, 5 %, 1 MiB, 1 W\n" + line(0, 1)
    )
    report = load(warehouse, log)
    assert [i.status for i in report.inputs] == [Status.PARTIAL]
    assert rows(warehouse, "SELECT gpu_uuid FROM gpu_samples") == [("GPU-1-x",)]
    [(location, error)] = rows(warehouse, "SELECT location, error FROM quarantine")
    assert location == "line 2"
    assert error == (
        "sample time 0001-01-01T00:00:00+00:00 is before 2000-01-01: a zero, a wrong unit or "
        "a clock never set"
    )


def test_a_scrape_time_comment_of_the_year_one_fails_no_file(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    scrape = tmp_path / "node.prom"
    scrape.write_text(
        "# scraped at 0001-01-01T00:00:00Z\n"
        'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",Hostname="fra-gpu-01"} 50\n'
    )
    report = load(warehouse, scrape)
    assert [i.status for i in report.inputs] == [Status.PARTIAL] and report.quarantined == 1
    assert "before 2000-01-01" in rows(warehouse, "SELECT error FROM quarantine")[0][0]


def test_a_stray_quote_in_a_log_costs_its_own_line_only(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    log = tmp_path / "fra-gpu-09.csv"
    log.write_text(SMI + line(0, 0) + '"Segmentation fault\n' + line(1, 0) + line(1, 1))
    report = load(warehouse, log)
    assert report.rows("gpu_samples") == 3 and report.quarantined == 1
    assert rows(warehouse, "SELECT location FROM quarantine") == [("line 3",)]


def test_a_cell_too_big_for_csv_costs_its_own_line_only(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    log = tmp_path / "fra-gpu-09.csv"
    huge = '"' + "N" * 200_000 + '"'  # past csv's 128 KiB field limit
    log.write_text(SMI + line(0, 0) + line(1, 0, name=huge) + line(2, 0))
    report = load(warehouse, log)
    assert [i.status for i in report.inputs] == [Status.PARTIAL]
    assert report.rows("gpu_samples") == 2
    [(location, error)] = rows(warehouse, "SELECT location, error FROM quarantine")
    assert (location, error) == ("line 3", "not a CSV line (a cell over 128 KiB)")


def test_an_unquoted_huge_cell_is_a_cell(warehouse: Warehouse, tmp_path: Path) -> None:
    log = tmp_path / "fra-gpu-09.csv"
    log.write_text(SMI + line(0, 0, name="N" * 200_000))
    report = load(warehouse, log)
    assert report.rows("gpu_samples") == 1 and report.quarantined == 0
    assert rows(warehouse, "SELECT length(gpu_model) FROM gpu_samples") == [(256,)]


def test_control_characters_in_a_name_never_reach_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evil = tmp_path / "node\x1b[1A\x1b[2K.prom"
    evil.write_text("not telemetry\n")
    status = main(["ingest", "gpu", "--warehouse", str(tmp_path / "w.duckdb"), str(evil)])
    err = capsys.readouterr().err
    assert status == 1 and "\x1b" not in err and "node\\x1b[1A\\x1b[2K.prom" in err


def test_an_exposition_of_labels_seen_once_is_parsed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 100,000 distinct label blocks took 9.8 s: each was parsed on its line and again apart
    text = "".join(
        f'DCGM_FI_DEV_GPU_UTIL{{gpu="{g}",UUID="GPU-{g}",Hostname="h{g}"}} {g % 100}\n'
        for g in range(500)
    )
    expected = [(f.name, f.samples) for f in text_string_to_metric_families(text)]

    def refused(block: str) -> None:
        raise AssertionError(f"{block} parsed apart")

    monkeypatch.setattr(exposition, "_labels_of", refused)
    monkeypatch.setattr(exposition, "_remembered", refused)
    assert [(f.name, f.samples) for f in exposition.metric_families(text)] == expected
    repeated = text + text  # each block twice: then each is parsed apart, once
    with pytest.raises(AssertionError, match="parsed apart"):
        list(exposition.metric_families(repeated))


def test_a_cell_that_is_no_plain_number_is_counted_not_read(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    # Python's float() reads `5_0` as 50: a damaged cell read as a busy GPU
    log = tmp_path / "fra-gpu-09.csv"
    log.write_text(SMI + line(0, 0).replace("50 %", "5_0 %") + line(0, 1).replace("51 %", "x %"))
    report = load(warehouse, log)
    assert report.skipped["nvidia-smi values that are not a number in a known unit"] == 2
    assert rows(warehouse, "SELECT gpu_uuid, utilization FROM gpu_samples ORDER BY 1") == [
        ("GPU-0-x", None),
        ("GPU-1-x", None),
    ]
