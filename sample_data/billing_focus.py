"""The Google Cloud environment's bill as FOCUS cost and usage CSV, one file per month:
FOCUS 1.2 (`ProviderName`, `PublisherName`), the newest month as FOCUS 1.4 (which dropped
those two for `ServiceProviderName` and `HostProviderName`), as a provider that upgraded
its export mid-range would deliver.

What Google Cloud would charge the fleet's `gcp-*` environment: the A100 80GB GPUs of its
pool, per node and per deployment holding them (labels `environment`, `model`, `team`,
as GKE node labels), their persistent disks, the model-weight bucket, internet egress by
the day's requests, an old snapshot and a static IP nobody labelled, a promotional credit
each month, and a one-year GPU commitment for 10 GPUs paid up front: the purchase row
(BilledCost the whole fee, EffectiveCost 0), the first node's GPUs as `Used` committed
usage (BilledCost 0, EffectiveCost at the committed rate) and the two GPUs' worth no node
used as an `Unused` row each day. Column meanings: the FOCUS 1.2 and 1.4 specifications
(focus.finops.org), the columns docs/billing.md lists per version.
"""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from sample_data.billing_items import (
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
from sample_data.ids import short_hash

PROVIDER = "Google Cloud"
ACCOUNT, ACCOUNT_NAME = "01A2B3-C4D5E6-F7A8B9", "hybridlens-ml"
PROJECT, PROJECT_NAME = "ml-serving-euw4", "ML serving (europe-west4)"
REGION, REGION_NAME, ZONE = "europe-west4", "Netherlands", "europe-west4-b"
# GPU type -> (SKU description, on-demand $/GPU-hour, committed $/GPU-hour)
GPUS = {"A100-80GB": ("Nvidia A100 80GB GPU running in Netherlands", Decimal("5.07"),
                      Decimal("3.20"))}  # fmt: skip
COMMITTED_GPUS = 10
TERM_HOURS = 8760
CUD_ID = f"projects/{PROJECT}/regions/{REGION}/commitments/a100-80gb-1y"
CREDIT = Decimal("-300.00")
BASE = (  # noqa: SIM905
    "AvailabilityZone BilledCost BillingAccountId BillingAccountName BillingAccountType "
    "BillingCurrency BillingPeriodEnd BillingPeriodStart ChargeCategory ChargeClass "
    "ChargeDescription ChargeFrequency ChargePeriodEnd ChargePeriodStart "
    "CommitmentDiscountCategory CommitmentDiscountId CommitmentDiscountName "
    "CommitmentDiscountQuantity CommitmentDiscountStatus CommitmentDiscountType "
    "CommitmentDiscountUnit ConsumedQuantity ConsumedUnit ContractedCost ContractedUnitPrice "
    "EffectiveCost InvoiceId InvoiceIssuerName ListCost ListUnitPrice PricingCategory "
    "PricingCurrency PricingQuantity PricingUnit RegionId RegionName ResourceId ResourceName "
    "ResourceType ServiceCategory ServiceName ServiceSubcategory SkuId SkuPriceId "
    "SubAccountId SubAccountName SubAccountType Tags"
).split()
COLUMNS = {
    "1.2": [*BASE, "ProviderName", "PublisherName"],
    "1.4": [*BASE, "ServiceProviderName", "HostProviderName"],
}


def _resource(kind: str, name: str) -> str:
    return f"//compute.googleapis.com/projects/{PROJECT}/zones/{ZONE}/{kind}/{name}"


def _tags(tags: dict[str, str]) -> str:
    return json.dumps(tags, sort_keys=True) if tags else ""


def line(
    day: Day,
    service: tuple[str, str, str],
    description: str,
    quantity: Decimal | None,
    unit: str,
    list_rate: Decimal,
    billed: Decimal,
    effective: Decimal,
    *,
    resource: tuple[str, str, str] = ("", "", ""),
    tags: dict[str, str] | None = None,
    category: str = "Usage",
    kind: str = "usage",
    more: dict[str, str] | None = None,
) -> Row:
    """One FOCUS line item; `service` is (ServiceName, ServiceCategory, ServiceSubcategory),
    `resource` (ResourceId, ResourceName, ResourceType)."""
    start, end = month_bounds(day.month)
    usage = category == "Usage"
    priced = quantity is not None
    listed = q(quantity * list_rate) if quantity is not None and usage else Decimal(0)
    cells = {
        "AvailabilityZone": ZONE if resource[0] else "", "BilledCost": money(billed),
        "BillingAccountId": ACCOUNT, "BillingAccountName": ACCOUNT_NAME,
        "BillingAccountType": "Billing Account", "BillingCurrency": "USD",
        "BillingPeriodEnd": iso(end), "BillingPeriodStart": iso(start),
        "ChargeCategory": category, "ChargeClass": "", "ChargeDescription": description,
        "ChargeFrequency": "Usage-Based" if usage else "One-Time",
        "ChargePeriodEnd": iso(day.end), "ChargePeriodStart": iso(day.start),
        "ConsumedQuantity": money(quantity) if usage and quantity is not None else "",
        "ConsumedUnit": unit if usage else "",
        "ContractedCost": money(listed if usage else billed),
        "ContractedUnitPrice": money(list_rate) if quantity is not None else "",
        "EffectiveCost": money(effective), "InvoiceId": "", "InvoiceIssuerName": PROVIDER,
        "ListCost": money(listed if usage else max(billed, Decimal(0))),
        "ListUnitPrice": money(list_rate) if quantity is not None else "",
        "PricingCategory": "Standard" if usage else "",
        "PricingCurrency": "USD",
        "PricingQuantity": money(quantity) if quantity is not None else "",
        "PricingUnit": unit, "RegionId": REGION, "RegionName": REGION_NAME,
        "ResourceId": resource[0], "ResourceName": resource[1], "ResourceType": resource[2],
        "ServiceName": service[0], "ServiceCategory": service[1],
        "ServiceSubcategory": service[2],
        "SkuId": short_hash("sku", description, n=12).upper() if priced else "",
        "SkuPriceId": short_hash("price", description, n=16).upper() if priced else "",
        "SubAccountId": PROJECT, "SubAccountName": PROJECT_NAME, "SubAccountType": "Project",
        "Tags": _tags(tags or {}), "ProviderName": PROVIDER, "PublisherName": PROVIDER,
        "ServiceProviderName": PROVIDER, "HostProviderName": PROVIDER,
    }  # fmt: skip
    cells.update(more or {})
    return Row(cells, billed, effective, day.month, service[0], day.date, kind, bool(tags))


COMPUTE = ("Compute Engine", "Compute", "Virtual Machines")
# FOCUS gives a service one category (ServiceName-C-005-C): Compute Engine bills its
# persistent disks as Compute, and the spend-by-category view follows the service
DISKS = ("Compute Engine", "Compute", "Virtual Machines")
STORAGE = ("Cloud Storage", "Storage", "Object Storage")
NETWORK = ("Networking", "Networking", "Network Connectivity")
LOGGING = ("Cloud Logging", "Management and Governance", "Observability")


# An unused commitment consumed nothing and has no list price: only its amortized cost.
UNUSED = {"ListCost": money(Decimal(0)), "ContractedCost": money(Decimal(0)),
          "ConsumedQuantity": "", "ConsumedUnit": "", "PricingCategory": "Committed"}  # fmt: skip


def _commitment(status: str, quantity: Decimal) -> dict[str, str]:
    return {
        "CommitmentDiscountCategory": "Usage", "CommitmentDiscountId": CUD_ID,
        "CommitmentDiscountName": "a100-80gb-1y", "CommitmentDiscountStatus": status,
        "CommitmentDiscountType": "Committed Use Discount",
        "CommitmentDiscountQuantity": money(quantity), "CommitmentDiscountUnit": "Hours",
    }  # fmt: skip


def _gpus(facts: CloudFacts, env: str, day: Day, covered_from: int) -> list[Row]:
    text, od_rate, cud_rate = GPUS[facts.pool_gpu(env)]
    out: list[Row] = []
    used = 0
    for h, host in enumerate(facts.hosts[env]):
        node = (_resource("instances", host), host, "Virtual Machine")
        for holder in facts.holders[host]:
            hours = Decimal(holder.gpus * 24)
            tags = holder.tags(env)
            if h == 0 and day.index >= covered_from:
                used += holder.gpus * 24
                more = {**_commitment("Used", hours), "PricingCategory": "Committed"}
                out.append(line(day, COMPUTE, text, hours, "Hours", od_rate, Decimal(0),
                                q(hours * cud_rate), resource=node, tags=tags, kind="covered",
                                more=more))  # fmt: skip
            else:
                cost = q(hours * od_rate)
                out.append(line(day, COMPUTE, text, hours, "Hours", od_rate, cost, cost,
                                resource=node, tags=tags))  # fmt: skip
    if used:
        unused = Decimal(COMMITTED_GPUS * 24 - used)
        out.append(line(day, COMPUTE, "Unused commitment: Nvidia A100 80GB GPU, 1 year",
                        unused, "Hours", cud_rate, Decimal(0), q(unused * cud_rate),
                        kind="unused",
                        more={**_commitment("Unused", unused), **UNUSED}))  # fmt: skip
    return out


def _storage(gb: Decimal, rate: Decimal, day: Day) -> tuple[Decimal, Decimal]:
    amount = q(gb * 24 / month_hours(day.month))
    return amount, q(amount * rate)


def rows(facts: CloudFacts, day: Day, *, covered_from: int, restated: bool | None) -> list[Row]:
    """The day's line items; `restated` as for the CUR (``billing_cur.charges``)."""
    env = facts.cloud("gcp")
    infra = {"environment": env, "team": PLATFORM_TEAM}
    out = _gpus(facts, env, day, covered_from)
    for host in facts.hosts[env]:
        gb, cost = _storage(Decimal(1500), Decimal("0.187"), day)
        disk = (_resource("disks", f"{host}-data"), f"{host}-data", "Persistent Disk")
        out.append(line(day, DISKS, "SSD backed PD Capacity in Netherlands", gb, "GB-Months",
                        Decimal("0.187"), cost, cost, resource=disk, tags=infra))  # fmt: skip
    gb, cost = _storage(Decimal(3600), Decimal("0.020"), day)
    bucket = ("//storage.googleapis.com/projects/_/buckets/hybridlens-model-weights-euw4",
              "hybridlens-model-weights-euw4", "Bucket")  # fmt: skip
    out.append(line(day, STORAGE, "Standard Storage Netherlands", gb, "GB-Months",
                    Decimal("0.020"), cost, cost, resource=bucket, tags=infra))  # fmt: skip
    egress_gb = Decimal(80) + Decimal(day.requests.get(env, 0)) * Decimal("0.002")
    cost = q(egress_gb * Decimal("0.12"))
    rule = (f"//compute.googleapis.com/projects/{PROJECT}/global/forwardingRules/llm-gateway",
            "llm-gateway", "Forwarding Rule")  # fmt: skip
    egress = line(day, NETWORK, "Network Internet Data Transfer Out from Netherlands to Europe",
                  egress_gb, "GiB", Decimal("0.12"), cost, cost, resource=rule,
                  tags=infra)  # fmt: skip
    out.append(egress)
    first = day.start == max(month_bounds(day.month)[0], facts.start)
    if restated is False and first:
        out.append(egress)  # billed twice by mistake; the restatement drops it
    gb, cost = _storage(Decimal(1350 if restated and first else 900), Decimal("0.029"), day)
    snapshot = (_resource("snapshots", "llama-weights-2025-06"), "llama-weights-2025-06",
                "Snapshot")  # fmt: skip
    out.append(line(day, DISKS, "Storage PD Snapshot in Netherlands", gb, "GB-Months",
                    Decimal("0.029"), cost, cost, resource=snapshot))  # fmt: skip
    ip = (f"//compute.googleapis.com/projects/{PROJECT}/regions/{REGION}/addresses/old-ingress",
          "old-ingress", "Address")  # fmt: skip
    cost = q(Decimal(24) * Decimal("0.01"))
    out.append(line(day, NETWORK, "Static Ip Charge", Decimal(24), "Hours", Decimal("0.01"),
                    cost, cost, resource=ip))  # fmt: skip
    if day.index == covered_from:
        _, _, cud_rate = GPUS[facts.pool_gpu(env)]
        hours = Decimal(COMMITTED_GPUS * TERM_HOURS)
        fee = q(hours * cud_rate)
        purchase = {
            k: v for k, v in _commitment("", hours).items() if k != "CommitmentDiscountStatus"
        }
        out.append(line(day, COMPUTE, "Commitment v1: A100 80GB GPU in Netherlands for 1 year, "
                        "paid up front", hours, "Hours", cud_rate, fee, Decimal(0),
                        category="Purchase", kind="purchase", more=purchase))  # fmt: skip
    if first:
        out.append(line(day, COMPUTE, "Promotional credit: Google for Startups Cloud Program",
                        None, "", Decimal(0), CREDIT, CREDIT, category="Credit", kind="credit",
                        more={"ListCost": money(Decimal(0))}))  # fmt: skip
    if restated and day.end == min(month_bounds(day.month)[1], facts.end):
        cost = q(Decimal(52) * Decimal("0.50"))
        out.append(line(day, LOGGING, "Log Storage cost", Decimal(52), "GiB", Decimal("0.50"),
                        cost, cost, tags=infra))  # fmt: skip
    return out


def write(path: Path, version: str, items: list[Row], delivered: datetime) -> Path:
    """One month's FOCUS CSV in `version`'s columns, stamped with its delivery time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=COLUMNS[version], lineterminator="\n", extrasaction="ignore"
    )
    writer.writeheader()
    writer.writerows(r.cells for r in items)
    path.write_bytes(buffer.getvalue().encode())
    stamp = delivered.timestamp()
    os.utime(path, (stamp, stamp))
    return path
