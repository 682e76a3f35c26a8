"""Synthetic AWS Cost and Usage Reports for the `aws-cur` tests: CUR 2.0 deliveries (gzip
CSV or Parquet parts, a manifest) and legacy CUR files, written into a test's tmp_path.

No CUR 2.0 sample is public, so the line items are made here, one month of one payer with
every line item type whose cost is mapped differently; the column names are CUR 2.0's
(docs.aws.amazon.com/cur/latest/userguide/table-dictionary-cur2.html), and each item
states the EffectiveCost AWS's amortized rules give it, so the tests compare the ledger
with numbers written down here, not recomputed by the code under test.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from warehouse.db import Warehouse

PAYER, USAGE_ACCOUNT = "210987654321", "123456789012"
START, END = "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z"
SP = "arn:aws:savingsplans::210987654321:savingsplan/sp-0example"
EC2 = "Amazon Elastic Compute Cloud"
RI = "arn:aws:ec2:us-east-1:210987654321:reserved-instances/ri-0example"

# (line item type, unblended cost, effective cost by AWS's amortized rules, extra columns)
ITEMS: list[tuple[str, str, str, dict[str, str]]] = [
    ("Usage", "10.00", "10.00", {}),
    ("SavingsPlanCoveredUsage", "8.00", "5.00",
     {"savings_plan_savings_plan_a_r_n": SP, "savings_plan_savings_plan_effective_cost": "5.00"}),
    ("SavingsPlanNegation", "-8.00", "0", {"savings_plan_savings_plan_a_r_n": SP}),
    ("SavingsPlanRecurringFee", "6.00", "1.00",
     {"savings_plan_savings_plan_a_r_n": SP, "savings_plan_total_commitment_to_date": "6.00",
      "savings_plan_used_commitment": "5.00"}),
    ("SavingsPlanUpfrontFee", "50.00", "0", {"savings_plan_savings_plan_a_r_n": SP}),
    ("DiscountedUsage", "0", "3.00",
     {"reservation_reservation_a_r_n": RI, "reservation_effective_cost": "3.00"}),
    ("RIFee", "2.00", "0.75",
     {"reservation_reservation_a_r_n": RI,
      "reservation_unused_amortized_upfront_fee_for_billing_period": "0.50",
      "reservation_unused_recurring_fee": "0.25"}),
    ("Fee", "100.00", "0", {"reservation_reservation_a_r_n": RI}),
    ("Tax", "1.50", "1.50", {}),
    ("Credit", "-2.00", "-2.00", {}),
    ("Refund", "-1.00", "-1.00", {"line_item_usage_start_date": "2026-09-03T00:00:00Z",
                                  "line_item_usage_end_date": "2026-09-04T00:00:00Z"}),
    ("EdpDiscount", "-0.50", "-0.50", {}),
]  # fmt: skip
CATEGORY = {
    "Usage": "Usage", "SavingsPlanCoveredUsage": "Usage", "SavingsPlanNegation": "Usage",
    "DiscountedUsage": "Usage", "SavingsPlanRecurringFee": "Purchase",
    "SavingsPlanUpfrontFee": "Purchase", "RIFee": "Purchase", "Fee": "Purchase", "Tax": "Tax",
    "Credit": "Credit", "Refund": "Credit", "EdpDiscount": "Credit",
}  # fmt: skip
# FOCUS's ChargeFrequency may not be null: a credit or refund happens once (AWS's own FOCUS
# export gives its credits `One-Time`), a tax or discount follows the usage it is levied on.
FREQUENCY = {
    "Usage": "Usage-Based", "SavingsPlanCoveredUsage": "Usage-Based",
    "SavingsPlanNegation": "Usage-Based", "DiscountedUsage": "Usage-Based",
    "SavingsPlanRecurringFee": "Recurring", "RIFee": "Recurring",
    "SavingsPlanUpfrontFee": "One-Time", "Fee": "One-Time", "Credit": "One-Time",
    "Refund": "One-Time", "Tax": "Usage-Based", "EdpDiscount": "Usage-Based",
}  # fmt: skip
# CUR 2.0 columns, in the order of the table dictionary's sections (a subset: an export's
# query may select any subset of them).
CUR2 = (  # noqa: SIM905 (a list literal would be 50 lines)
    "identity_line_item_id identity_time_interval bill_bill_type bill_billing_entity "
    "bill_billing_period_end_date bill_billing_period_start_date bill_invoice_id "
    "bill_invoicing_entity bill_payer_account_id bill_payer_account_name cost_category "
    "discount line_item_availability_zone line_item_blended_cost line_item_currency_code "
    "line_item_legal_entity line_item_line_item_description line_item_line_item_type "
    "line_item_net_unblended_cost line_item_operation line_item_product_code "
    "line_item_resource_id line_item_unblended_cost line_item_unblended_rate "
    "line_item_usage_account_id line_item_usage_account_name line_item_usage_amount "
    "line_item_usage_end_date line_item_usage_start_date line_item_usage_type "
    "pricing_public_on_demand_cost pricing_public_on_demand_rate pricing_rate_code "
    "pricing_term pricing_unit product product_instance_type product_location "
    "product_region_code product_servicecode product_sku reservation_effective_cost "
    "reservation_reservation_a_r_n reservation_unused_amortized_upfront_fee_for_billing_period "
    "reservation_unused_recurring_fee resource_tags savings_plan_savings_plan_a_r_n "
    "savings_plan_savings_plan_effective_cost savings_plan_total_commitment_to_date "
    "savings_plan_used_commitment"
).split()


def cur2_rows(scale: Decimal = Decimal(1)) -> list[dict[str, str]]:
    """One row per ITEMS entry (costs times `scale`, so a restatement differs), every CUR 2.0
    column present, empty where a line item has no value."""
    out = []
    for n, (kind, cost, _, extra) in enumerate(ITEMS, 1):
        row = dict.fromkeys(CUR2, "")
        row.update(
            identity_line_item_id=f"li-{n:04d}", bill_bill_type="Anniversary",
            bill_billing_entity="AWS", bill_billing_period_start_date=START,
            bill_billing_period_end_date=END, bill_invoicing_entity="Amazon Web Services, Inc.",
            bill_payer_account_id=PAYER, bill_payer_account_name="Example Payer",
            line_item_currency_code="USD", line_item_line_item_type=kind,
            line_item_line_item_description=f"{kind} <b>line</b> {n}",
            line_item_product_code="AmazonEC2", line_item_unblended_cost=str(Decimal(cost) * scale),
            line_item_usage_account_id=USAGE_ACCOUNT, line_item_usage_account_name="ml-team",
            line_item_usage_amount="24", line_item_usage_start_date="2026-10-06T00:00:00Z",
            line_item_usage_end_date="2026-10-07T00:00:00Z", pricing_unit="Hrs",
            pricing_public_on_demand_cost=cost if kind.endswith("Usage") else "",
            product_region_code="us-east-1", product_sku="SKU0EXAMPLE",
            product=json.dumps({"product_name": EC2, "region": "us-east-1"}),
            resource_tags=json.dumps({"user_team": "ml", "user_model": "llama-70b"}),
            line_item_resource_id=f"i-0example{n}",
        )  # fmt: skip
        row.update(extra)
        out.append(row)
    return out


def effective(kind: str) -> Decimal:
    return next(Decimal(e) for k, _, e, _ in ITEMS if k == kind)


def write_csv_gz(path: Path, rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(gzip.compress(buffer.getvalue().encode()))
    return path


def write_parquet(path: Path, rows: list[dict[str, str]]) -> Path:
    """Typed as AWS writes it: costs DOUBLE, times TIMESTAMP, `product` and
    `resource_tags` MAP(VARCHAR, VARCHAR)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = write_csv_gz(path.with_suffix(".staged.csv.gz"), rows)
    money = [c for c in rows[0] if re.search(r"cost|rate|amount|commitment|fee", c)]
    times = [c for c in rows[0] if c.endswith("_date")]
    select = ", ".join(
        f"CAST(j{c}::JSON AS MAP(VARCHAR, VARCHAR)) AS {c}" if c in ("product", "resource_tags")
        else f"TRY_CAST(j{c} AS DOUBLE) AS {c}" if c in money
        else f"CAST(j{c} AS TIMESTAMP) AS {c}" if c in times
        else f"j{c} AS {c}"
        for c in rows[0]
    )  # fmt: skip
    renamed = ", ".join(f'"{c}" AS j{c}' for c in rows[0])
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT {select} FROM (SELECT {renamed} FROM read_csv('{staged}', "
        "all_varchar = true))) TO '" + str(path) + "' (FORMAT parquet)"
    )
    con.close()
    staged.unlink()
    return path


def delivery(
    root: Path,
    parts: list[list[dict[str, str]]],
    *,
    period: str = "2026-10",
    run: str = "",
    parquet: bool = False,
    listed: list[str] | None = None,
    age: float = 0.0,
) -> Path:
    """An export `exp` under `root` as Data Exports lays it out, `data/` and `metadata/`
    per billing period (in `run` subfolders for "create new" deliveries); the manifest
    lists the parts (or `listed`) as S3 keys, and is `age` seconds old."""
    folder = root / "exp" / "data" / f"BILLING_PERIOD={period}" / run
    names = []
    for i, rows in enumerate(parts, 1):
        name = f"exp-{i:05d}." + ("snappy.parquet" if parquet else "csv.gz")
        (write_parquet if parquet else write_csv_gz)(folder / name, rows)
        names.append(name)
    keys = [
        f"s3://bucket/cur/exp/data/BILLING_PERIOD={period}/" + (f"{run}/" if run else "") + n
        for n in (listed if listed is not None else names)
    ]
    manifest = root / "exp" / "metadata" / f"BILLING_PERIOD={period}" / run / "exp-Manifest.json"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"exportName": "exp", "billingPeriod": period, "dataFiles": keys}
    manifest.write_text(json.dumps(doc), encoding="utf-8")
    if age:
        stamp = manifest.stat().st_mtime - age
        os.utime(manifest, (stamp, stamp))
    return manifest


def legacy_name(column: str) -> str:
    """A legacy CUR CSV header as legacy CUR Parquet spells it: `lineItem/UnblendedCost` ->
    `line_item_unblended_cost`, `resourceTags/user:team` -> `resource_tags_user_team`."""
    category, _, name = column.partition("/")
    snake = re.sub(r"(?<!^)([A-Z])", r"_\1", category).lower()
    rest = re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower().replace(":", "_")
    return f"{snake}_{rest}"


def edited(line: str, cells: dict[int, str]) -> str:
    """A CSV line with some of its cells replaced."""
    values = next(csv.reader([line]))
    for index, value in cells.items():
        values[index] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()


def legacy_sums(path: Path) -> dict[str, tuple[Decimal, Decimal, int]]:
    """(unblended, public on-demand, rows) per line item type, with csv + Decimal."""
    totals: dict[str, list[Any]] = defaultdict(lambda: [Decimal(0), Decimal(0), 0])
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for record in csv.DictReader(fh):
            entry = totals[record["lineItem/LineItemType"]]
            entry[0] += Decimal(record["lineItem/UnblendedCost"] or 0)
            entry[1] += Decimal(record["pricing/publicOnDemandCost"] or 0)
            entry[2] += 1
    return {k: (v[0], v[1], v[2]) for k, v in totals.items()}


def ledger_by_category(wh: Warehouse) -> dict[str, tuple[Decimal, Decimal, int]]:
    sql = "SELECT ChargeCategory, sum(BilledCost), sum(ListCost), count(*) FROM billing GROUP BY 1"
    with wh.read() as con:
        found = con.execute(sql).fetchall()
    return {k: (b, lc or Decimal(0), n) for k, b, lc, n in found}
