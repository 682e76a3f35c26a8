"""nvidia-smi `--query-gpu --format=csv` logs: units, absent cells, local times, repeats."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hybridlens.ingest_gpu import GpuInput, ingest_gpu
from ingest.contract import Collected, Unit
from ingest.gpu.collector import GpuCollector
from ingest.gpu.nvidia_smi import NvidiaSmiCsv
from ingest.gpu.readings import ReadOptions
from warehouse.config import Config
from warehouse.db import Warehouse

CASES = Path(__file__).parent / "cases" / "gpu"


def collect(path: Path, timezone: str = "UTC") -> tuple[list[dict[str, Any]], Collected]:
    collector = GpuCollector(options=ReadOptions(timezone=timezone))
    collected = collector.collect(Unit(str(path), path=path), Config())
    assert collected.error is None, collected.error
    return collected.frames["gpu_samples"].to_pylist(), collected


def test_the_real_h100_query_under_load(fixtures_dir: Path) -> None:
    path = fixtures_dir / "gpu" / "nvidia-smi-query-gpu-h100-load.csv"
    assert NvidiaSmiCsv().sniff(path.read_bytes()[:4096])  # a 212-field header, cut in the head
    [row], _ = collect(path)
    assert row["ts"] == datetime(2026, 7, 14, 8, 12, 53, 353000, tzinfo=UTC)
    assert (row["gpu_uuid"], row["gpu_model"], row["gpu_index"]) == (
        "GPU-00000000-0000-0000-0000-000000000000",
        "NVIDIA H100 80GB HBM3",
        0,
    )
    assert (row["utilization"], row["memory_used_mib"], row["memory_free_mib"]) == (
        100.0,
        19818.0,
        61263.0,
    )
    assert (row["power_w"], row["temperature_c"], row["source"]) == (631.95, 59.0, "nvidia-smi")
    # its `hostname` cell is [N/A]: the file name stands for the host
    assert row["host"] == "nvidia-smi-query-gpu-h100-load"


def test_the_real_query_without_timestamps_takes_the_files_time(fixtures_dir: Path) -> None:
    path = fixtures_dir / "gpu" / "nvidia-smi-query-gpu-testdata-query.txt"
    rows, _ = collect(path)
    assert [r["gpu_model"] for r in rows] == ["NVIDIA GeForce RTX 2080 SUPER", "Some Other GPU"]
    assert [r["memory_used_mib"] for r in rows] == [575.0, 1234.0]
    assert {r["ts"] for r in rows} == {datetime.fromtimestamp(path.stat().st_mtime, UTC)}


def test_absent_cells_units_repeated_headers_and_bad_rows() -> None:
    rows, collected = collect(CASES / "fra-gpu-02.csv")
    by = {(r["ts"].second, r["gpu_index"]): r for r in rows}
    assert sorted(by) == [(0, 0), (0, 1), (5, 1), (10, 0)]
    assert by[(0, 1)]["power_w"] is None and by[(0, 1)]["temperature_c"] is None  # [N/A]
    assert by[(5, 1)]["memory_used_mib"] == 1024.0  # "1 GiB"
    assert by[(10, 0)]["utilization"] == 90.0  # under the second, shorter header
    assert {r["host"] for r in rows} == {"fra-gpu-02"}  # no hostname column: the file's name
    errors = {r.location: r.error for r in collected.rejected}
    assert "6 cells where the header has 9" in errors["line 4"]
    assert "is not a time" in errors["line 8"]
    assert collected.skipped["nvidia-smi cells [N/A] or [Not Supported]"] == 2


def test_local_times_are_utc_unless_a_timezone_is_given() -> None:
    utc, _ = collect(CASES / "fra-gpu-02.csv")
    berlin, _ = collect(CASES / "fra-gpu-02.csv", "Europe/Berlin")
    assert utc[0]["ts"] == datetime(2026, 11, 30, 11, 0, tzinfo=UTC)
    assert berlin[0]["ts"] == datetime(2026, 11, 30, 10, 0, tzinfo=UTC)  # CET is UTC+1


def test_a_log_still_being_written_keeps_its_tail_for_the_next_run(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    log = tmp_path / "fra-gpu-03.csv"
    text = (CASES / "growing-nounits.csv").read_bytes()
    log.write_bytes(text)
    first = ingest_gpu(warehouse, [GpuInput(str(log))], Config()).report
    assert first.rows("gpu_samples") == 1 and first.pending_bytes == len(text.split(b"\n")[-1])
    log.write_bytes(text + b"\n2026/11/30 12:00:02.000, fra-gpu-03, 0, GPU-5, 42, 252\n")
    second = ingest_gpu(warehouse, [GpuInput(str(log))], Config()).report
    # read whole again (its header is at its top); what was loaded counts once
    assert (second.rows("gpu_samples"), second.duplicates("gpu_samples")) == (2, 1)
    os.utime(log, (1796032800, 1796032800))
    assert ingest_gpu(warehouse, [GpuInput(str(log))], Config()).report.files_skipped == 1


def test_sniffing_tells_logs_from_other_csv(fixtures_dir: Path) -> None:
    smi = NvidiaSmiCsv()
    assert not smi.sniff((fixtures_dir / "gpu" / "dcgm-exporter-default-counters.csv").read_bytes())
    assert not smi.sniff(b"a,b,c\n1,2,3\n")
    assert not smi.sniff(b"# HELP DCGM_FI_DEV_GPU_UTIL x\n")
    assert smi.sniff(b"\xef\xbb\xbftimestamp, uuid, utilization.gpu [%]\n")
