"""DCGM expositions through the `gpu` collector, the driver and publish, and the command."""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hybridlens.cli import main
from hybridlens.ingest_gpu import GpuInput, ingest_gpu
from ingest import registry
from ingest.contract import Unit
from ingest.gpu.collector import FORMATS, GpuCollector
from ingest.gpu.dcgm import DcgmExposition, parse_time, time_in_name
from ingest.gpu.readings import ENERGY, FIELDS, GR_ENGINE_ACTIVE, SM_ACTIVE, UTIL, ReadOptions
from warehouse.config import Config, IngestPolicy, parse
from warehouse.db import Warehouse

CASES = Path(__file__).parent / "cases" / "gpu"
SCRAPE = CASES / "k8s-mig-scrape.prom"
T10 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)

CONFIG = """
[gpu]
node_label = "kubernetes_node"
[[gpu.workloads]]
workload = "llama-70b"
namespace = "serving"
pod = "llama-70b-*"
[[environments]]
name = "onprem-fra"
kind = "onprem"
[[environments.gpu_pools]]
name = "h100"
hosts = ["fra-gpu-*"]
"""


def config() -> Config:
    return parse(tomllib.loads(CONFIG), "test.toml")


def rows_of(warehouse: Warehouse, sql: str) -> list[tuple[Any, ...]]:
    with warehouse.write() as con:
        return con.execute(sql).fetchall()


def collect(path: Path, cfg: Config | None = None) -> list[dict[str, Any]]:
    collected = GpuCollector().collect(Unit(str(path), path=path), cfg or config())
    assert collected.error is None
    found: list[dict[str, Any]] = collected.frames["gpu_samples"].to_pylist()
    return found


def test_the_collector_is_registered_and_sniffs_by_content(fixtures_dir: Path) -> None:
    gpu = registry.get("gpu")
    assert gpu.tables == ("gpu_samples",)
    head = (
        fixtures_dir / "gpu" / "dcgm-exporter-exposition-datadog-fixture-metrics.txt"
    ).read_bytes()
    assert gpu.sniff(head[:4096]) and registry.for_head(head[:4096]) is not None
    assert [f.name for f in FORMATS][:2] == ["dcgm", "nvidia-smi"]
    for other in (b'{"resourceSpans": []}', b"\x1f\x8b\x08", b"hello world\n", b""):
        assert not gpu.sniff(other)


def test_the_real_datadog_scrape(fixtures_dir: Path) -> None:
    path = fixtures_dir / "gpu" / "dcgm-exporter-exposition-datadog-fixture-metrics.txt"
    # CI copies the fixtures fresh: read it as a file that has stopped growing, whatever
    # its mtime (a young file holding back its unterminated last line has tests of its own)
    settled = dataclasses.replace(Config(), ingest=IngestPolicy(settle_minutes=0))
    collected = GpuCollector().collect(Unit(str(path), path=path), settled)
    [row] = collected.frames["gpu_samples"].to_pylist()
    assert row["gpu_uuid"] == "GPU-20c56d28-0da5-6d26-a36a-e7af1ce2586e"
    assert (row["host"], row["gpu_model"], row["gpu_index"]) == ("424773df46e0", "Tesla T4", 0)
    assert (row["utilization"], row["power_w"], row["temperature_c"]) == (0.0, 8.969, 25.0)
    assert (row["memory_used_mib"], row["memory_free_mib"]) == (0.0, 15109.0)
    assert row["energy_mj"] == 128996013.0  # the counter keeps its own name, not `_total`
    # no timestamps and no comment: the file's mtime, the same on every read
    assert row["ts"] == datetime.fromtimestamp(path.stat().st_mtime, UTC)
    # the hand-made series without labels are counted, not turned into rows
    assert collected.skipped["series without labels"] == 2
    assert not collected.rejected and collected.pending_bytes == 0


def test_every_kept_field_is_one_dcgm_exporter_declares(fixtures_dir: Path) -> None:
    """The field names and types we read are those of dcgm-exporter's own counter lists."""
    declared = {}
    for name in ("dcgm-exporter-default-counters.csv", "dcgm-exporter-dcp-metrics-included.csv"):
        with (fixtures_dir / "gpu" / name).open() as fh:
            for cells in csv.reader(fh, skipinitialspace=True):
                if cells and not cells[0].startswith("#") and len(cells) >= 2:
                    declared[cells[0].strip()] = cells[1].strip()
                elif cells and cells[0].startswith("# DCGM_FI_"):  # commented out by default
                    declared.setdefault(cells[0][2:].strip(), cells[1].strip())
    assert {f: declared[f] for f in FIELDS} == {
        f: ("counter" if f == ENERGY else "gauge") for f in FIELDS
    }
    # an exposition of every declared field, typed as the list types it, keeps all of ours
    lines = []
    for i, (field, kind) in enumerate(sorted(declared.items())):
        if kind in ("gauge", "counter"):
            lines += [
                f"# TYPE {field} {kind}",
                f'{field}{{gpu="0",UUID="GPU-x",Hostname="h"}} {i % 2}',
            ]
    parsed = DcgmExposition().read(("\n".join(lines) + "\n").encode(), Unit("mem"), ReadOptions())
    [reading] = parsed.readings
    assert set(reading.fields) == set(FIELDS)


def test_kubernetes_mig_scrape_end_to_end(warehouse: Warehouse) -> None:
    done = ingest_gpu(warehouse, [GpuInput(str(SCRAPE))], config())
    assert done.report.rows("gpu_samples") == 4 and done.report.ok
    got = rows_of(
        warehouse,
        "SELECT ts, environment, pool, host, gpu_index, mig_instance, mig_profile, gpu_share, "
        "workload, pod, utilization, sm_active, gr_engine_active, power_w, energy_mj, "
        "temperature_c, source FROM gpu_samples ORDER BY gpu_index, mig_instance",
    )
    assert [r[:4] for r in got] == [(T10, "onprem-fra", "h100", "fra-gpu-01")] * 4
    busy, free, mig2, mig9 = got
    assert busy[8:] == (
        "llama-70b",
        "llama-70b-5d9f8",
        97.0,
        0.12,
        0.981234,
        612.5,
        918273645501.0,
        64.0,
        "dcgm",
    )
    # NaN power, +Inf energy and the INT64 blank temperature are NULL, never a number
    assert (free[8], free[10], free[13], free[14], free[15]) == (None, 0.0, None, None, None)
    assert (mig2[5], mig2[6], mig2[7], mig2[10]) == ("2", "3g.40gb", pytest.approx(3 / 7), 0.0)
    assert (mig9[5], mig9[7], mig9[8], mig9[10]) == ("9", pytest.approx(1 / 7), "embedder-0", 42.0)
    skipped = done.report.skipped
    assert skipped["NaN or infinite values"] == 2 and skipped["DCGM blank values (no reading)"] == 1


def test_reading_the_same_scrape_again_adds_nothing(warehouse: Warehouse, tmp_path: Path) -> None:
    first = ingest_gpu(warehouse, [GpuInput(str(SCRAPE))], config()).report
    again = ingest_gpu(warehouse, [GpuInput(str(SCRAPE))], config()).report
    assert first.rows("gpu_samples") == 4 and again.files_skipped == 1
    copy = tmp_path / "copy-of-scrape.prom"  # a new name, the same scrape: all duplicates
    copy.write_bytes(SCRAPE.read_bytes())
    third = ingest_gpu(warehouse, [GpuInput(str(copy))], config()).report
    assert (third.rows("gpu_samples"), third.duplicates("gpu_samples")) == (0, 4)
    assert rows_of(warehouse, "SELECT count(*) FROM gpu_samples") == [(4,)]


def test_bad_lines_are_quarantined_and_the_rest_loads(warehouse: Warehouse) -> None:
    done = ingest_gpu(warehouse, [GpuInput(str(CASES / "bad-lines.prom"))], Config())
    report = done.report
    assert report.rows("gpu_samples") == 4 and not report.ok
    errors = rows_of(warehouse, "SELECT location, error FROM quarantine ORDER BY location")
    where = {loc: err for loc, err in errors}
    assert "not a Prometheus text sample" in where["line 7"]  # cut mid-label
    assert "not-a-number" in where["line 8"]
    assert "invalid metric name" in where["line 11"]  # an HTML error page in the middle
    assert any("no UUID label" in e for _, e in errors)
    assert any("a clock in the future" in e for _, e in errors)
    stored = rows_of(
        warehouse, "SELECT ts, utilization, pod, namespace FROM gpu_samples ORDER BY gpu_uuid, ts"
    )
    # sample timestamps are used, out of order is fine, the duplicate counts once
    assert [(r[0].second + 60 * r[0].minute, r[1]) for r in stored[:3]] == [
        (0, 55.0),
        (30, 56.0),
        (60, 57.0),
    ]
    assert stored[0][2] == 'a"quoted" pod\\with\nnewline'  # escapes decoded, kept as text
    assert stored[0][3] == "x'); DROP TABLE gpu_samples; --"
    assert report.skipped["duplicate series in one scrape"] == 1


def test_time_from_name_then_mtime_and_a_bad_comment(tmp_path: Path) -> None:
    [row] = collect(CASES / "dcgm-20261130T100500Z.prom", Config())
    assert row["ts"] == datetime(2026, 11, 30, 10, 5, tzinfo=UTC)
    plain = tmp_path / "scrape.prom"
    plain.write_bytes(
        b"# scraped at yesterday-ish\n" + (CASES / "dcgm-20261130T100500Z.prom").read_bytes()
    )
    os.utime(plain, (1796032800, 1796032800))
    collected = GpuCollector().collect(Unit(str(plain), path=plain), Config())
    assert collected.frames["gpu_samples"].to_pylist()[0]["ts"] == T10
    assert "not an ISO 8601 time" in collected.rejected[0].error
    assert time_in_name("node-1796032800.prom") == T10
    assert time_in_name("gpu-2026-11-30_10:00:00.txt") == T10
    assert time_in_name("metrics.prom") is None and time_in_name("2026-13-45T99-00-00") is None
    assert parse_time("2026-11-30T11:00:00+01:00") == T10 and parse_time("nan") is None


def test_truncated_and_growing_scrape_files(tmp_path: Path) -> None:
    text = SCRAPE.read_bytes()
    cut = text[: text.index(b'DCGM_FI_DEV_FB_USED{gpu="1"') + 40]
    growing = tmp_path / "growing.prom"
    growing.write_bytes(cut)
    collected = GpuCollector().collect(Unit(str(growing), path=growing), config())
    assert collected.pending_bytes == 40 and collected.complete_offset == len(cut) - 40
    old = tmp_path / "old.prom"  # settled: its cut last line is read, and rejected
    old.write_bytes(cut)
    os.utime(old, (1796032800, 1796032800))
    settled = GpuCollector().collect(Unit(str(old), path=old), config())
    assert settled.pending_bytes == 0
    assert [r.location for r in settled.rejected] == ["line 9"]
    assert settled.frames["gpu_samples"].num_rows == 2


def test_an_input_in_no_gpu_format_fails_alone(warehouse: Warehouse, tmp_path: Path) -> None:
    junk = tmp_path / "notes.prom"
    junk.write_text("these are my notes, not metrics\n")
    done = ingest_gpu(warehouse, [GpuInput(str(junk)), GpuInput(str(SCRAPE))], config())
    assert done.report.rows("gpu_samples") == 4
    [failure] = done.report.failures
    assert "is in none of the GPU formats (dcgm, nvidia-smi" in failure


def test_the_unit_fields_of_a_huge_exposition_line_stay_bounded() -> None:
    label = "p" * 100_000
    body = f'DCGM_FI_DEV_GPU_UTIL{{gpu="0",UUID="GPU-z",Hostname="h",pod="{label}"}} 1e308\n'
    collected = GpuCollector().collect(
        Unit("mem://x", body=("# scraped at 1796032800\n" + body).encode()), Config()
    )
    assert collected.frames["gpu_samples"].num_rows == 0  # its only value is out of range
    assert collected.skipped["out-of-range values (DEV_GPU_UTIL)"] == 1
    assert collected.skipped["samples with no usable value"] == 1


def test_profiling_ratios_without_util(tmp_path: Path) -> None:
    body = (
        "# scraped at 2026-11-30T10:00:00Z\n"
        f'{GR_ENGINE_ACTIVE}{{gpu="0",UUID="GPU-r",Hostname="h"}} 0.5\n'
        f'{SM_ACTIVE}{{gpu="0",UUID="GPU-r",Hostname="h"}} NaN\n'
    )
    collected = GpuCollector().collect(Unit("mem://r", body=body.encode()), Config())
    [row] = collected.frames["gpu_samples"].to_pylist()
    assert row["gr_engine_active"] == 0.5 and row["sm_active"] is None
    assert row["utilization"] is None and not math.isnan(row["gr_engine_active"])
    assert UTIL not in body


def test_the_command_loads_files_and_refuses_other_schemes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "w.duckdb"
    status = main(["ingest", "gpu", "--warehouse", str(db), str(SCRAPE), "--environment", "lab"])
    assert status == 0
    assert "loaded 4 GPU samples from 1 inputs" in capsys.readouterr().err
    status = main(["ingest", "gpu", "--warehouse", str(db), "file:///etc/passwd"])
    err = capsys.readouterr().err
    assert status == 1 and "file:///etc/passwd is not read: only http:// and https://" in err
    assert rows_of(Warehouse(db), "SELECT DISTINCT environment FROM gpu_samples") == [("lab",)]


def test_the_command_needs_a_source_or_a_configured_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "w.duckdb")
    assert main(["ingest", "gpu", "--warehouse", db]) == 2
    assert "nothing to read: give a SOURCE" in capsys.readouterr().err
    assert (
        main(["ingest", "gpu", "--warehouse", db, "--timezone", "Mars/Olympus", str(SCRAPE)]) == 2
    )
    assert "is not a time zone name" in capsys.readouterr().err
    cfg = tmp_path / "hybridlens.toml"
    cfg.write_text(
        f'[[sources.gpu]]\npath = "{CASES / "dcgm-20261130T100500Z.prom"}"\n'
        'environment = "edge-1"\n'
    )
    assert main(["ingest", "gpu", "--warehouse", db, "--config", str(cfg)]) == 0
    assert rows_of(Warehouse(Path(db)), "SELECT environment, host FROM gpu_samples") == [
        ("edge-1", "edge-box-7")
    ]


def test_a_counter_reset_is_stored_as_read(warehouse: Warehouse, tmp_path: Path) -> None:
    """The energy counter drops after a reboot; the rows keep what DCGM said (the rollup
    counts from zero after a drop, as Prometheus's increase() does)."""
    series = 'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu="0",UUID="GPU-c",Hostname="h"}'
    for minute, value in ((0, 5_000_000), (1, 6_000_000), (2, 400)):
        page = tmp_path / f"h-2026-11-30T10-0{minute}-00Z.prom"
        page.write_text(f"# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n{series} {value}\n")
    done = ingest_gpu(warehouse, [GpuInput(str(tmp_path))], Config())
    assert done.report.ok and done.report.rows("gpu_samples") == 3
    got = rows_of(warehouse, "SELECT energy_mj FROM gpu_samples ORDER BY ts")
    assert got == [(5_000_000.0,), (6_000_000.0,), (400.0,)]


def test_inputs_of_the_wrong_schema_fail_with_a_sentence(
    warehouse: Warehouse, fixtures_dir: Path, tmp_path: Path
) -> None:
    counters = fixtures_dir / "gpu" / "dcgm-exporter-default-counters.csv"  # a config, not data
    no_uuid = tmp_path / "host-a.csv"
    no_uuid.write_text("timestamp, index, utilization.gpu [%]\n2026/11/30 10:00:00.000, 0, 5 %\n")
    done = ingest_gpu(warehouse, [GpuInput(str(counters)), GpuInput(str(no_uuid))], Config())
    [failure] = done.report.failures
    assert "dcgm-exporter-default-counters.csv is in none of the GPU formats" in failure
    errors = rows_of(warehouse, "SELECT uri, location, error FROM quarantine")
    [(location, error)] = [(loc, err) for uri, loc, err in errors if uri == str(no_uuid)]
    assert location == "line 2" and "no UUID label" in error


def test_a_fresh_compressed_otlp_metrics_file_loads_to_its_last_record(tmp_path: Path) -> None:
    """A zstd stream never ends with a newline: its tail is not a line still being written."""
    import json

    import zstandard

    from ingest.contract import Unit
    from ingest.gpu.collector import GpuCollector
    from warehouse.config import Config

    lines = []
    for minute in range(3):
        t = 1_764_547_200_000_000_000 + minute * 60_000_000_000
        attrs = [{"key": "hw.id", "value": {"stringValue": "GPU-1"}}]
        point = {"timeUnixNano": str(t), "asDouble": 0.5, "attributes": attrs}
        metric = {"name": "hw.gpu.utilization", "unit": "1", "gauge": {"dataPoints": [point]}}
        host = [{"key": "host.name", "value": {"stringValue": "h1"}}]
        request = {
            "resourceMetrics": [
                {"resource": {"attributes": host}, "scopeMetrics": [{"metrics": [metric]}]}
            ]
        }
        lines.append(json.dumps(request) + "\n")
    path = tmp_path / "fresh.jsonl.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress("".join(lines).encode()))
    collected = GpuCollector().collect(Unit(str(path), path), Config())
    assert collected.pending_bytes == 0 and not collected.rejected
    assert collected.frames["gpu_samples"].num_rows == 3
