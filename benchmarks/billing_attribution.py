"""Attribution at read time: `warehouse.attribution.attributed` and `untagged` over a ledger
of N billing rows (AWS rows with prefixed tags, Azure rows with resource groups, Google
Cloud rows with project labels, a fifth untagged; 20,000 distinct resources, 20 resource
rules, region rules, 200 GPU hosts in the hourly rollup). It prints the best of three
timings and asserts nothing: read time is the design as long as this stays near a second.

    .venv/bin/python benchmarks/billing_attribution.py --rows 200000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from warehouse.attribution import attributed, untagged
from warehouse.config import parse
from warehouse.db import Warehouse

FILL = """
INSERT INTO billing (BilledCost, BillingAccountId, BillingCurrency, BillingPeriodStart,
    BillingPeriodEnd, ChargeCategory, ChargePeriodStart, ChargePeriodEnd, ContractedCost,
    EffectiveCost, ListCost, ProviderName, ServiceCategory, ServiceName, RegionId, ResourceId,
    ResourceName, Tags, x_SourceRow, x_SourceFormat, x_ReplaceUnit, x_Modelled)
SELECT c, 'acct', 'USD', TIMESTAMPTZ '2026-10-01 00:00:00+00', TIMESTAMPTZ '2026-11-01 00:00:00+00',
    'Usage', TIMESTAMPTZ '2026-10-01 00:00:00+00' + to_hours(i % 744),
    TIMESTAMPTZ '2026-10-01 01:00:00+00' + to_hours(i % 744), c, c, c, p, 'Compute', 'VMs',
    ['us-east-1', 'eu-west-1', 'westeurope', 'europe-west4'][1 + i % 4],
    CASE p WHEN 'AWS' THEN 'arn:aws:ec2:us-east-1:1:instance/i-' || (i % 20000)
           WHEN 'Microsoft' THEN '/subscriptions/s/resourceGroups/rg-' || (i % 50) || '/vm-' || (i % 20000)
           ELSE '//compute.googleapis.com/projects/p/instances/gpu-' || (i % 20000) END,
    'gpu-' || (i % 20000),
    CASE WHEN i % 5 = 0 THEN NULL
         WHEN p = 'AWS' THEN ('{"resourceTags/user:Team": "t' || (i % 30) || '", "user:Environment": "prod", "aws:createdBy": "x"}')::JSON
         ELSE ('{"model": "m' || (i % 7) || '"}')::JSON END,
    CASE p WHEN 'Microsoft' THEN ('{"ResourceGroup": "rg-' || (i % 50) || '", "CostCenter": "cc' || (i % 9) || '"}')::JSON
           WHEN 'Google Cloud' THEN ('{"project.labels": "[{\\"key\\": \\"env\\", \\"value\\": \\"lab\\"}]"}')::JSON END,
    CASE p WHEN 'Microsoft' THEN 'azure-ea-actual' WHEN 'Google Cloud' THEN 'gcp-billing-export' ELSE 'focus-1.2' END,
    'billed/' || p, false
FROM (SELECT i, ((i * 7919) % 100000 / 1000)::DECIMAL(38, 12) AS c,
             ['AWS', 'Microsoft', 'Google Cloud'][1 + i % 3] AS p FROM range($rows) t(i))
"""  # noqa: E501
ROLLUP = """
INSERT INTO rollup_gpu_hours (hour, environment, pool, host, gpu_uuid, mig_instance, gpu_share,
    workload, samples, gpu_hours, state)
SELECT TIMESTAMPTZ '2026-10-01 00:00:00+00' + to_hours(h), 'gpu-env-' || (g % 3), NULL,
       'gpu-' || g, 'GPU-' || g, '', 1, 'model-' || (g % 5), 60, 1, 'busy'
FROM range(200) a(g), range(744) b(h)
"""
CONFIG = {
    "attribution": {
        "resources": [{"pattern": f"*/rg-{n}/*", "cost_center": f"rg{n}"} for n in range(19)]
        + [{"pattern": "re:instance/i-1[0-9]{3}$", "environment": "batch"}],
        "regions": [{"provider": "gcp", "region": "europe-west4", "environment": "gcp-eu"}],
    },
    "environments": [{"name": "aws-east", "provider": "aws", "region": "us-east-1"}],
}


def best(fn: object, runs: int = 3) -> tuple[float, int]:
    times, height = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        height = fn().height  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times), height


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args(argv)
    config = parse(CONFIG, "benchmark")
    with tempfile.TemporaryDirectory() as folder:
        wh = Warehouse(Path(folder) / "w.duckdb")
        with wh.write() as con:
            con.execute(FILL, {"rows": args.rows})
            con.execute(ROLLUP)
        seconds, rows = best(lambda: attributed(wh, config))
        print(f"attributed: {rows} rows in {seconds:.2f} s ({rows / seconds:,.0f} rows/s)")
        seconds, rows = best(lambda: untagged(wh, config, limit=50))
        print(f"untagged:   top {rows} resources in {seconds:.2f} s")
        frame = attributed(wh, config)
        print(frame.group_by("how").len().sort("how"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
