"""`readings_loader`: pulled or sampled readings through the one driver into gpu_samples.

The samples builder is another engineer's module; here a small builder of our own makes
the rows, so the test checks what the loader owns: the driver, the merge on the key, the
quarantine of rejected readings, and a failed pull recorded in ingest_log.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from hybridlens.ingest_gpu_prometheus import readings_loader
from ingest.contract import Rejected
from ingest.gpu.readings import UTIL, Parsed, Reading, ReadOptions
from warehouse.config import Config
from warehouse.db import Warehouse

T0 = datetime(2026, 10, 26, 8, 0, tzinfo=UTC)
_COLUMNS = (
    "ts",
    "environment",
    "pool",
    "host",
    "gpu_uuid",
    "gpu_index",
    "mig_instance",
    "mig_profile",
    "gpu_share",
    "gpu_model",
    "workload",
    "namespace",
    "pod",
    "container",
    "utilization",
    "sm_active",
    "gr_engine_active",
    "memory_used_mib",
    "memory_free_mib",
    "power_w",
    "energy_mj",
    "temperature_c",
    "source",
)
_TYPES = {"ts": pa.timestamp("us", tz="UTC"), "gpu_index": pa.int32()}
_FLOATS = {"gpu_share", "utilization", "sm_active", "gr_engine_active", "memory_used_mib",
           "memory_free_mib", "power_w", "energy_mj", "temperature_c"}  # fmt: skip
SCHEMA = pa.schema(
    [(c, _TYPES.get(c, pa.float64() if c in _FLOATS else pa.string())) for c in _COLUMNS]
)


def build_rows(
    readings: Iterable[Reading], config: Config, options: ReadOptions, source: str
) -> tuple[pa.Table, list[Rejected], Counter[str]]:
    rows: dict[str, list[object]] = {c: [] for c in _COLUMNS}
    rejected: list[Rejected] = []
    for r in readings:
        if "UUID" not in r.labels:
            rejected.append(Rejected(r.location, "no UUID label"))
            continue
        row = dict.fromkeys(_COLUMNS)
        row.update(ts=r.ts, environment=options.environment or "unknown",
                   host=r.labels["Hostname"], gpu_uuid=r.labels["UUID"], mig_instance="",
                   gpu_share=1.0, utilization=r.fields.get(UTIL), source=source)  # fmt: skip
        for c in _COLUMNS:
            rows[c].append(row[c])
    return pa.Table.from_pydict(rows, schema=SCHEMA), rejected, Counter(built=1)


def _parsed(*uuids: str) -> Parsed:
    parsed = Parsed()
    for i, uuid in enumerate(uuids):
        labels = {"Hostname": "node-1", "UUID": uuid} if uuid else {"Hostname": "node-1"}
        parsed.readings.append(
            Reading(T0 + timedelta(minutes=i), labels, {UTIL: 10.0 * i}, f"r{i}")
        )
    parsed.skipped["non-GPU series"] = 2
    return parsed


def _count(warehouse: Warehouse, sql: str) -> list[tuple[object, ...]]:
    with warehouse.read() as con:
        return [tuple(row) for row in con.execute(sql).fetchall()]


def test_readings_are_published_once_and_rejects_quarantined(warehouse: Warehouse) -> None:
    load = readings_loader(warehouse, Config(), build_rows)
    options = ReadOptions(environment="lab")
    status = load("prometheus-api", "http://127.0.0.1:9090", _parsed("GPU-1", "GPU-2", ""),
                  options, None)  # fmt: skip
    assert status == 1  # one reading was quarantined
    assert _count(
        warehouse, "SELECT gpu_uuid, environment, utilization, source FROM gpu_samples ORDER BY ts"
    ) == [
        ("GPU-1", "lab", 0.0, "prometheus-api"),
        ("GPU-2", "lab", 10.0, "prometheus-api"),
    ]
    assert _count(warehouse, "SELECT location, error FROM quarantine") == [("r2", "no UUID label")]
    # the same pull again adds nothing (merge on host, GPU, MIG instance, time)
    assert load("prometheus-api", "http://127.0.0.1:9090", _parsed("GPU-1", "GPU-2"),
                options, None) == 0  # fmt: skip
    assert _count(warehouse, "SELECT count(*) FROM gpu_samples") == [(2,)]
    logged = _count(warehouse, "SELECT source, uri, rows, status FROM ingest_log ORDER BY load_id")
    assert [row[:3] for row in logged] == [
        ("prometheus-api", "http://127.0.0.1:9090", 2),
        ("prometheus-api", "http://127.0.0.1:9090", 0),
    ]


def test_a_failed_pull_keeps_what_it_read_and_is_recorded(warehouse: Warehouse) -> None:
    load = readings_loader(warehouse, Config(), build_rows)
    error = "Prometheus at http://127.0.0.1:9 did not answer within 10 s after 3 tries: refused"
    assert load("prometheus-api", "http://127.0.0.1:9", _parsed("GPU-1"), ReadOptions(),
                error) == 1  # fmt: skip
    assert _count(warehouse, "SELECT count(*) FROM gpu_samples") == [(1,)]
    statuses = _count(warehouse, "SELECT status FROM ingest_log ORDER BY load_id")
    assert len(statuses) == 2 and "failed" in str(statuses[-1][0]).lower()
    assert _count(warehouse, "SELECT error FROM quarantine") == [(error,)]
