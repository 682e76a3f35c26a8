"""The AWS environment's bill as an AWS Data Exports CUR 2.0 export (gzip CSV parts and a
manifest per billing period and run).

What AWS would charge the fleet's `aws-*` environment: its GPU pool's p5.48xlarge instances
(8 H100 each) at the on-demand rate, each instance's hours split by the GPUs each
deployment holds on it (as split cost allocation would), tagged `user_environment`,
`user_model` and `user_team` (CUR 2.0's `resource_tags` keys: `user_` and the key); their
EBS volumes, the model-weight bucket, data transfer out by the day's requests, a NAT
gateway and an old snapshot nobody tagged; a promotional credit each month; and an EC2
Instance Savings Plan bought all upfront that covers the first instance from the purchase
day (covered usage, its negation and the daily recurring fee, whose EffectiveCost is the
unused commitment). Every row states the EffectiveCost AWS's amortized rules give it.

Columns and layout follow docs.aws.amazon.com/cur/latest/userguide/table-dictionary-cur2.html
and dataexports-export-delivery.html ("create new" runs under an execution id), the
layout `ingest/billing/cur_manifest.py` reads.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from sample_data.billing_items import (
    ANOMALY_FACTOR,
    PLATFORM_TEAM,
    CloudFacts,
    Day,
    Row,
    iso,
    money,
    month_bounds,
    month_hours,
    q,
)
from sample_data.ids import instance_id, short_hash

EXPORT = "hybridlens-cur2"
BUCKET = "s3://hybridlens-billing/cur2"
PAYER, PAYER_NAME = "481516234200", "hybridlens-payer"
ACCOUNT, ACCOUNT_NAME = "302118755612", "ml-serving-prod"
REGION, LOCATION = "us-east-1", "US East (N. Virginia)"
# GPU type -> (instance type, GPUs per instance, on-demand $/hour, Savings Plan $/hour)
INSTANCES = {"H100-80GB": ("p5.48xlarge", 8, Decimal("55.04"), Decimal("34.40"))}
SP_COMMITMENT = Decimal("36.00")  # $/hour for a year, paid up front
SP_TERM_HOURS = Decimal(8760)
SP_ARN = f"arn:aws:savingsplans::{PAYER}:savingsplan/1f3e9a4c-5b7d-4e21-9c08-6a2d7e4b3f10"
CREDIT = Decimal("-250.00")
PART_ROWS = 200
EC2, S3, DT, CW = (
    "Amazon Elastic Compute Cloud",
    "Amazon Simple Storage Service",
    "AWS Data Transfer",
    "AmazonCloudWatch",
)
CODES = {EC2: "AmazonEC2", S3: "AmazonS3", DT: "AWSDataTransfer", CW: "AmazonCloudWatch"}
COLUMNS = (  # noqa: SIM905 (a list literal would be 50 lines)
    "identity_line_item_id identity_time_interval bill_bill_type bill_billing_entity "
    "bill_billing_period_end_date bill_billing_period_start_date bill_invoice_id "
    "bill_invoicing_entity bill_payer_account_id bill_payer_account_name cost_category "
    "discount line_item_availability_zone line_item_currency_code line_item_legal_entity "
    "line_item_line_item_description line_item_line_item_type line_item_operation "
    "line_item_product_code line_item_resource_id line_item_unblended_cost "
    "line_item_unblended_rate line_item_usage_account_id line_item_usage_account_name "
    "line_item_usage_amount line_item_usage_end_date line_item_usage_start_date "
    "line_item_usage_type pricing_public_on_demand_cost pricing_public_on_demand_rate "
    "pricing_rate_code pricing_term pricing_unit product product_instance_type "
    "product_location product_region_code product_servicecode product_sku resource_tags "
    "savings_plan_savings_plan_a_r_n savings_plan_savings_plan_effective_cost "
    "savings_plan_savings_plan_rate savings_plan_total_commitment_to_date "
    "savings_plan_used_commitment"
).split()


@dataclass(frozen=True)
class Charge:
    """What one line item is, before it becomes CUR cells."""

    item_type: str
    service: str
    usage_type: str
    operation: str
    description: str
    resource: str
    amount: Decimal
    unit: str
    rate: Decimal
    cost: Decimal
    effective: Decimal
    tags: dict[str, str]
    extra: dict[str, str]
    kind: str = "usage"


def _tags(tags: dict[str, str]) -> str:
    return json.dumps({f"user_{k}": v for k, v in sorted(tags.items())}, sort_keys=True)


def _cells(c: Charge, day: Day, n: int) -> dict[str, str]:
    period_start, period_end = month_bounds(day.month)
    product = {"product_name": c.service, "region": REGION}
    instance = c.extra.get("instance_type", "")
    if instance:
        product["instance_type"] = instance
    usage = c.item_type in ("Usage", "SavingsPlanCoveredUsage", "DiscountedUsage")
    row = dict.fromkeys(COLUMNS, "")
    row.update(
        identity_line_item_id=short_hash("cur", day.date, c.item_type, c.resource, c.usage_type,
                                         c.description, n, n=52),
        identity_time_interval=f"{iso(day.start)}/{iso(day.end)}",
        bill_bill_type="Anniversary", bill_billing_entity="AWS",
        bill_billing_period_start_date=iso(period_start),
        bill_billing_period_end_date=iso(period_end),
        bill_invoicing_entity="Amazon Web Services, Inc.", bill_payer_account_id=PAYER,
        bill_payer_account_name=PAYER_NAME, cost_category="{}", discount="{}",
        line_item_availability_zone=c.extra.get("zone", ""), line_item_currency_code="USD",
        line_item_legal_entity="Amazon Web Services, Inc.",
        line_item_line_item_description=c.description, line_item_line_item_type=c.item_type,
        line_item_operation=c.operation, line_item_product_code=CODES[c.service],
        line_item_resource_id=c.resource, line_item_unblended_cost=money(c.cost),
        line_item_unblended_rate=money(c.rate), line_item_usage_account_id=ACCOUNT,
        line_item_usage_account_name=ACCOUNT_NAME, line_item_usage_amount=money(c.amount),
        line_item_usage_start_date=iso(day.start), line_item_usage_end_date=iso(day.end),
        line_item_usage_type=c.usage_type,
        # AWS writes 0, not an empty cell, where a line item has no on-demand price
        pricing_public_on_demand_cost=money(c.amount * c.rate) if usage else "0.0",
        pricing_public_on_demand_rate=money(c.rate) if usage else "",
        pricing_rate_code=short_hash("rate", c.usage_type, n=10).upper() if usage else "",
        pricing_term="OnDemand" if c.item_type == "Usage" else "",
        pricing_unit=c.unit, product=json.dumps(product, sort_keys=True),
        product_instance_type=instance, product_location=LOCATION, product_region_code=REGION,
        product_servicecode=CODES[c.service],
        product_sku=short_hash("sku", c.usage_type, n=16).upper(),
        resource_tags=_tags(c.tags),
    )  # fmt: skip
    row.update({k: v for k, v in c.extra.items() if k in row})
    return row


def _gpu_charges(facts: CloudFacts, env: str, day: Day, covered_from: int) -> list[Charge]:
    instance, per_host, od_rate, sp_rate = INSTANCES[facts.pool_gpu(env)]
    out: list[Charge] = []
    used = Decimal(0)
    for h, host in enumerate(facts.hosts[env]):
        zone = f"{REGION}{'ab'[h % 2]}"
        extra = {"instance_type": instance, "zone": zone}
        for holder in facts.holders[host]:
            amount = Decimal(holder.gpus * 24) / per_host
            od = q(amount * od_rate)
            text = f"${od_rate} per On Demand Linux {instance} Instance Hour"
            usage = Charge("Usage", EC2, f"BoxUsage:{instance}", "RunInstances", text,
                           instance_id(host), amount, "Hrs", od_rate, od, od, holder.tags(env),
                           extra)  # fmt: skip
            if h == 0 and day.index >= covered_from:
                effective = q(amount * sp_rate)
                used += effective
                sp = {**extra, "savings_plan_savings_plan_a_r_n": SP_ARN,
                      "savings_plan_savings_plan_effective_cost": money(effective),
                      "savings_plan_savings_plan_rate": money(sp_rate)}  # fmt: skip
                text = f"Linux {instance} covered by Savings Plan {SP_ARN.rsplit('/', 1)[1]}"
                out.append(replace(usage, item_type="SavingsPlanCoveredUsage", description=text,
                                   effective=effective, extra=sp, kind="covered"))  # fmt: skip
                text = f"Savings Plan negation of {instance} on-demand cost"
                arn = {**extra, "savings_plan_savings_plan_a_r_n": SP_ARN}
                negation = replace(usage, item_type="SavingsPlanNegation", description=text,
                                   cost=-od, effective=Decimal(0), extra=arn)  # fmt: skip
                out.append(replace(negation, kind="covered"))
            else:
                out.append(usage)
    if used:
        commitment = SP_COMMITMENT * 24
        out.append(Charge(
            "SavingsPlanRecurringFee", EC2, "ComputeSP:1yrAllUpfront", "", "1 year All Upfront "
            f"EC2 Instance Savings Plan, ${SP_COMMITMENT}/hour", SP_ARN, Decimal(24), "Hrs",
            Decimal(0), Decimal(0), commitment - used, {},
            {"savings_plan_savings_plan_a_r_n": SP_ARN,
             "savings_plan_total_commitment_to_date": money(commitment),
             "savings_plan_used_commitment": money(used)}, kind="purchase",
        ))  # fmt: skip
    return out


def _storage(gb: Decimal, rate: Decimal, day: Day) -> tuple[Decimal, Decimal]:
    amount = q(gb * 24 / month_hours(day.month))
    return amount, q(amount * rate)


def charges(
    facts: CloudFacts, day: Day, *, covered_from: int, anomaly_day: int, restated: bool | None
) -> list[Charge]:
    """The day's line items; `restated` False/True for the first/second delivery of the
    restated month (a duplicated transfer line the second removes, a snapshot re-metered,
    a late CloudWatch line), None for other months."""
    env = facts.cloud("aws")
    infra = {"environment": env, "team": PLATFORM_TEAM}
    out = _gpu_charges(facts, env, day, covered_from)
    for h, host in enumerate(facts.hosts[env]):
        amount, cost = _storage(Decimal(2000), Decimal("0.08"), day)
        out.append(Charge("Usage", EC2, "EBS:VolumeUsage.gp3", "CreateVolume-Gp3",
                          "$0.08 per GB-month of General Purpose (gp3) provisioned storage",
                          "vol-0" + short_hash("volume", host, n=16), amount, "GB-Mo",
                          Decimal("0.08"), cost, cost, infra,
                          {"zone": f"{REGION}{'ab'[h % 2]}"}))  # fmt: skip
    amount, cost = _storage(Decimal(4200), Decimal("0.023"), day)
    out.append(Charge("Usage", S3, "TimedStorage-ByteHrs", "StandardStorage",
                      "$0.023 per GB - first 50 TB / month of storage used",
                      "hybridlens-model-weights-use1", amount, "GB-Mo", Decimal("0.023"), cost,
                      cost, infra, {}))  # fmt: skip
    gb = Decimal(120) + Decimal(day.requests.get(env, 0)) * Decimal("0.002")
    if day.index == anomaly_day:
        gb *= ANOMALY_FACTOR
    balancer = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/llm-gateway/"
    cost = q(gb * Decimal("0.09"))
    transfer = Charge("Usage", DT, "DataTransfer-Out-Bytes", "RunInstances",
                      "$0.09 per GB - first 10 TB / month data transfer out",
                      balancer + short_hash("alb", env), gb, "GB", Decimal("0.09"), cost, cost,
                      infra, {})  # fmt: skip
    out.append(transfer)
    first = day.start == max(month_bounds(day.month)[0], facts.start)
    if restated is False and first:
        out.append(transfer)  # billed twice by mistake; the restatement drops it
    nat = f"arn:aws:ec2:{REGION}:{ACCOUNT}:natgateway/nat-0" + short_hash("nat", env, n=17)
    cost = q(Decimal(24) * Decimal("0.045"))
    out.append(Charge("Usage", EC2, "NatGateway-Hours", "NatGateway",
                      "$0.045 per NAT Gateway Hour", nat, Decimal(24), "Hrs", Decimal("0.045"),
                      cost, cost, {}, {}))  # fmt: skip
    gb_snap = Decimal(1275 if restated and first else 850)
    amount, cost = _storage(gb_snap, Decimal("0.05"), day)
    out.append(Charge("Usage", EC2, "EBS:SnapshotUsage", "CreateSnapshot",
                      "$0.05 per GB-Month of snapshot data stored",
                      f"arn:aws:ec2:{REGION}::snapshot/snap-0" + short_hash("snap", env, n=17),
                      amount, "GB-Mo", Decimal("0.05"), cost, cost, {}, {}))  # fmt: skip
    if day.index == covered_from:
        upfront = SP_COMMITMENT * SP_TERM_HOURS
        out.append(Charge("SavingsPlanUpfrontFee", EC2, "ComputeSP:1yrAllUpfront", "",
                          "1 year All Upfront EC2 Instance Savings Plan, paid up front", SP_ARN,
                          SP_TERM_HOURS, "Hrs", SP_COMMITMENT, upfront, Decimal(0), {},
                          {"savings_plan_savings_plan_a_r_n": SP_ARN},
                          kind="purchase"))  # fmt: skip
    if first:
        out.append(Charge("Credit", EC2, "", "", "AWS Promotional Credit", "", Decimal(0), "",
                          Decimal(0), CREDIT, CREDIT, {}, {}, kind="credit"))  # fmt: skip
    if restated and day.end == min(month_bounds(day.month)[1], facts.end):
        cost = q(Decimal("41.3") * Decimal("0.30"))
        out.append(Charge("Usage", CW, "CW:MetricMonitorUsage", "MetricStorage",
                          "$0.30 per metric-month - first 10,000 metrics", "", Decimal("41.3"),
                          "Metrics", Decimal("0.30"), cost, cost, infra, {}))  # fmt: skip
    return out


def rows(charges_of_day: list[Charge], day: Day) -> list[Row]:
    return [
        Row(
            _cells(c, day, n),
            c.cost,
            c.effective,
            day.month,
            c.service,
            day.date,
            c.kind,
            bool(c.tags),
        )
        for n, c in enumerate(charges_of_day)
    ]


def write_run(
    root: Path, month: str, run: str, items: list[Row], delivered: datetime
) -> list[Path]:
    """One export run of `month`: its gzip CSV parts, then the manifest listing them (AWS
    writes it last), all stamped with the delivery time, so a later run's manifest is
    newer and a second generation leaves the same times."""
    export = root / EXPORT
    folder = export / "data" / f"BILLING_PERIOD={month}" / run
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for i in range(0, max(len(items), 1), PART_ROWS):
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(r.cells for r in items[i : i + PART_ROWS])
        path = folder / f"{EXPORT}-{i // PART_ROWS + 1:05d}.csv.gz"
        path.write_bytes(gzip.compress(buffer.getvalue().encode(), mtime=0))
        written.append(path)
    start, end = month_bounds(month)
    manifest = export / "metadata" / f"BILLING_PERIOD={month}" / run / f"{EXPORT}-Manifest.json"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "executionId": run,
        "exportArn": f"arn:aws:bcm-data-exports:{REGION}:{PAYER}:export/{EXPORT}",
        "exportName": EXPORT,
        "billingPeriod": {"start": iso(start), "end": iso(end)},
        "compression": "GZIP",
        "format": "TEXT_OR_CSV",
        "columns": [{"name": c, "type": "string"} for c in COLUMNS],
        "dataFiles": [
            f"{BUCKET}/{EXPORT}/data/BILLING_PERIOD={month}/{run}/{p.name}" for p in written
        ],
    }
    manifest.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    stamp = delivered.timestamp()
    for path in [*written, manifest]:
        os.utime(path, (stamp, stamp))
    return [*written, manifest]
