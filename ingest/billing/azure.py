"""Azure Cost Management cost details (actual and amortized, EA and MCA) onto FOCUS columns.

The mapping follows Microsoft's own conversion (finops-toolkit `docs-mslearn/focus/
convert.md` and `mapping.md`, FORMATS.md section 5), so a month read from cost details lands
under the same `ProviderName` (`Microsoft`) and `BillingAccountId` as Azure's FOCUS export
writes for it: the ARM id of the billing account (EA) or billing profile (MCA). That is what
lets the two describe one unit's charges and replace each other (`warehouse/tables.py`).

The actual and amortized datasets have the same columns, so a file cannot say which one it
is: `--dataset` says, else the export's folder or file name (`ActualCost`, `AmortizedCost`,
as Cost Management names exports), else the file is refused with one sentence. Both
datasets carry the cost in one column, so each row carries it as `BilledCost` and as
`EffectiveCost` (a dataset loaded alone supplies both); when both datasets of a month are
loaded, the `billing` table's write spec keeps `BilledCost` from actual and the other
measures from amortized.

Column names differ in case between EA (`CostInBillingCurrency`) and MCA
(`costInBillingCurrency`) exports, and older EA files say `Cost`: columns are looked up
case-insensitively. Everything is mapped in DuckDB SQL (`Derived`); every column of the
file stays in `x_SourceRow` (`ResourceGroup`, `MeterSubCategory`, `AdditionalInfo`, ...).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

import pyarrow as pa

from ingest.billing.focus import RAW
from ingest.billing.formats import Read, Sink
from ingest.billing.problems import flagged, rejected
from ingest.files import printable
from warehouse.focus_spec import COLUMNS
from warehouse.tabular import Column, Derived, Kind, read

NAME = "azure"
AUTO = "auto"
DATASETS = ("actual", "amortized")
HINTS = {"actualcost": "actual", "amortizedcost": "amortized"}  # export names, any case
ARM = "/providers/Microsoft.Billing/billingAccounts/"
ROW = "_row"
BAD_TAGS = "_tags_bad"

# Columns only Azure's cost details spell this way (lower case): two make a file Azure's.
SIGNATURE = frozenset(
    {
        "metercategory",
        "metersubcategory",
        "meterid",
        "metername",
        "billingperiodstartdate",
        "billingperiodenddate",
        "costinbillingcurrency",
        "paygcostinbillingcurrency",
        "paygprice",
        "subscriptionname",
    }
)
# name -> kind and the file's columns it may come from, first present wins (any case)
S, D, Y = Kind.TEXT, Kind.DECIMAL, Kind.DAY
SOURCES: dict[str, tuple[Kind, tuple[str, ...]]] = {
    "cost": (D, ("CostInBillingCurrency", "Cost", "PreTaxCost")),
    "payg_cost": (D, ("PaygCostInBillingCurrency",)),
    "quantity": (D, ("Quantity",)),
    "payg_price": (D, ("PayGPrice",)),
    "unit_price": (D, ("UnitPrice",)),
    "day": (Y, ("Date", "UsageDate")),
    "period_start": (Y, ("BillingPeriodStartDate",)),
    "period_end": (Y, ("BillingPeriodEndDate",)),
    "account": (S, ("BillingAccountId",)),
    "account_name": (S, ("BillingAccountName",)),
    "profile": (S, ("BillingProfileId",)),
    "profile_name": (S, ("BillingProfileName",)),
    "currency": (S, ("BillingCurrencyCode", "BillingCurrency")),
    "pricing_currency": (S, ("PricingCurrency",)),
    "charge_type": (S, ("ChargeType",)),
    "frequency": (S, ("Frequency",)),
    "pricing_model": (S, ("PricingModel",)),
    "benefit_id": (S, ("BenefitId",)),
    "benefit_name": (S, ("BenefitName",)),
    "reservation_id": (S, ("ReservationId",)),
    "reservation_name": (S, ("ReservationName",)),
    "product": (S, ("ProductName", "Product")),
    "meter_category": (S, ("MeterCategory",)),
    "meter_id": (S, ("MeterId",)),
    "meter_name": (S, ("MeterName",)),
    "service_family": (S, ("ServiceFamily",)),
    "subscription": (S, ("SubscriptionId",)),
    "subscription_name": (S, ("SubscriptionName",)),
    "resource_id": (S, ("ResourceId",)),
    "resource_name": (S, ("ResourceName",)),
    "resource_type": (S, ("ResourceType",)),
    "location": (S, ("ResourceLocation",)),
    "zone": (S, ("AvailabilityZone",)),
    "unit": (S, ("UnitOfMeasure",)),
    "publisher": (S, ("PublisherName",)),
    "partner": (S, ("PartnerName",)),
    "invoice": (S, ("InvoiceId",)),
    "tags": (S, ("Tags",)),
}
# Mandatory for a file to be read: a list of alternatives each (any case).
MANDATORY = (
    ("CostInBillingCurrency", "Cost", "PreTaxCost"),
    ("BillingPeriodStartDate",),
    ("BillingPeriodEndDate",),
    ("Date", "UsageDate"),
    ("BillingCurrencyCode", "BillingCurrency"),
    ("MeterCategory",),
)
EA_ACCOUNT = (("BillingAccountId",),)
MCA_ACCOUNT = (("BillingAccountId",), ("BillingProfileId",))
# EA's enrollment accounts: an export without them that has billing profiles is MCA's
EA_ONLY = ("accountownerid", "accountname")
FOCUS_CATEGORIES = (
    "AI and Machine Learning", "Analytics", "Business Applications", "Compute", "Databases",
    "Developer Tools", "Multicloud", "Identity", "Integration", "Internet of Things",
    "Management and Governance", "Media", "Migration", "Mobile", "Networking", "Security",
    "Storage", "Web", "Other",
)  # fmt: skip

_SQL_TYPES = {
    Kind.TEXT: "VARCHAR",
    Kind.JSON: "VARCHAR",
    Kind.DECIMAL: "DECIMAL(38, 12)",
    Kind.TIME: "TIMESTAMPTZ",
}
# Azure's units are blocks (`10K`, `1/Month`, `1 GB/Month`); FOCUS's UnitFormat spells a
# block `<count> <units>` and a rate `<units>/<time>` (`10000 Units`, `Units/Month`,
# `GB/Month`, as Microsoft's own FOCUS rows have them). The quantity stays in blocks, as
# delivered; a unit already in the format (`1 Hour`, `100 Hours`, `1 GB`) is kept.
_UNIT = (
    "CASE WHEN regexp_full_match(unit, '[0-9]+K') THEN replace(unit, 'K', '000') || ' Units' "
    "WHEN regexp_full_match(unit, '[0-9]+M') THEN replace(unit, 'M', '000000') || ' Units' "
    "WHEN regexp_full_match(unit, '1 ?/(Hour|Day|Month|Year)') "
    "THEN 'Units/' || regexp_extract(unit, '/(.+)', 1) "
    "WHEN regexp_full_match(unit, '1 [A-Za-z]+/(Hour|Day|Month|Year)') THEN substr(unit, 3) "
    "ELSE unit END"
)
_UNUSED = "charge_type IN ('UnusedReservation', 'UnusedSavingsPlan')"
_COMMITMENT = (
    "CASE WHEN lower(benefit_id) LIKE '%/microsoft.capacity/%' THEN '{r}' "
    "WHEN lower(benefit_id) LIKE '%/microsoft.billingbenefits/%' THEN '{s}' "
    "WHEN pricing_model = 'Reservation' OR charge_type = 'UnusedReservation' THEN '{r}' "
    "WHEN pricing_model = 'SavingsPlan' OR charge_type = 'UnusedSavingsPlan' THEN '{s}' END"
)


def _product(a: str, b: str) -> str:
    """a × b as DECIMAL(38, 12), NULL past 10^13 (DuckDB's DECIMAL(38, 24) product would
    overflow and fail the file; a hostile quantity must fail no more than its row)."""
    return f"CASE WHEN abs({a}::DOUBLE * {b}::DOUBLE) < 1e13 THEN ({a} * {b}) END"


def _mapping(mca: bool) -> dict[str, str]:
    """FOCUS column -> its SQL over the typed columns (docs/billing.md, Azure cost details)."""
    tags = (
        "CASE WHEN starts_with(ltrim(tags), '{') THEN tags "
        "WHEN tags IS NOT NULL THEN '{' || tags || '}' END"
    )
    # json_type only on valid JSON: DuckDB would fail the whole file on one broken value
    valid = f"(CASE WHEN json_valid({tags}) THEN json_type({tags}) = 'OBJECT' ELSE false END)"
    categories = ", ".join(f"'{c}'" for c in FOCUS_CATEGORIES)
    if mca:  # the billing profile is MCA's invoice scope, and its FOCUS billing account
        account = (
            f"CASE WHEN profile LIKE '/providers/%' THEN profile "
            f"ELSE '{ARM}' || account || '/billingProfiles/' || profile END"
        )
        name = "profile_name"
    else:
        account = f"CASE WHEN account LIKE '/providers/%' THEN account ELSE '{ARM}' || account END"
        name = "account_name"
    usage = "charge_type = 'Usage'"
    return {
        "AvailabilityZone": "zone",
        "BilledCost": "cost",
        "BillingAccountId": account,
        "BillingAccountName": name,
        "BillingCurrency": "currency",
        "BillingPeriodEnd": "period_end + INTERVAL 1 DAY",  # Azure's end is inclusive
        "BillingPeriodStart": "period_start",
        "ChargeCategory": (
            "CASE WHEN charge_type IN ('Usage', 'Purchase', 'Credit', 'Tax') THEN charge_type "
            f"WHEN {_UNUSED} THEN 'Usage' WHEN charge_type = 'Refund' THEN 'Purchase' "
            "WHEN charge_type IS NOT NULL THEN 'Adjustment' END"
        ),
        "ChargeClass": "CASE WHEN charge_type = 'Refund' THEN 'Correction' END",
        "ChargeDescription": "product",
        "ChargeFrequency": (
            "CASE frequency WHEN 'OneTime' THEN 'One-Time' WHEN 'Recurring' THEN 'Recurring' "
            "WHEN 'UsageBased' THEN 'Usage-Based' END"
        ),
        "ChargePeriodEnd": "day + INTERVAL 1 DAY",
        "ChargePeriodStart": "day",
        "CommitmentDiscountCategory": _COMMITMENT.format(r="Usage", s="Spend"),
        "CommitmentDiscountId": "coalesce(benefit_id, reservation_id)",
        "CommitmentDiscountName": "coalesce(benefit_name, reservation_name)",
        "CommitmentDiscountStatus": (
            f"CASE WHEN {_UNUSED} THEN 'Unused' WHEN {usage} AND pricing_model IN "
            "('Reservation', 'SavingsPlan') THEN 'Used' END"
        ),
        "CommitmentDiscountType": _COMMITMENT.format(r="Reservation", s="Savings Plan"),
        "ConsumedQuantity": f"CASE WHEN {usage} THEN quantity END",
        "ConsumedUnit": f"CASE WHEN {usage} THEN {_UNIT} END",
        "ContractedCost": f"coalesce({_product('unit_price', 'quantity')}, cost)",
        "ContractedUnitPrice": "unit_price",
        "EffectiveCost": "cost",
        "InvoiceId": "invoice",
        "InvoiceIssuerName": "coalesce(partner, 'Microsoft')",
        "ListCost": f"coalesce(payg_cost, {_product('payg_price', 'quantity')}, cost)",
        "ListUnitPrice": "payg_price",
        "PricingCategory": (
            "CASE WHEN charge_type = 'Tax' THEN NULL WHEN pricing_model = 'OnDemand' THEN "
            "'Standard' WHEN pricing_model = 'Spot' THEN 'Dynamic' WHEN pricing_model IN "
            "('Reservation', 'SavingsPlan') THEN 'Committed' END"
        ),
        "PricingCurrency": "pricing_currency",
        "PricingQuantity": "quantity",
        "PricingUnit": _UNIT,
        "ProviderName": "'Microsoft'",
        "PublisherName": "coalesce(publisher, 'Microsoft')",
        "RegionId": "lower(replace(location, ' ', ''))",
        "RegionName": "location",
        "ResourceId": "resource_id",
        "ResourceName": (
            "coalesce(resource_name, nullif(regexp_extract(resource_id, '[^/]+$'), ''))"
        ),
        "ResourceType": "resource_type",
        "ServiceCategory": (
            f"CASE WHEN service_family IN ({categories}) THEN service_family "
            "WHEN service_family = 'AI + Machine Learning' THEN 'AI and Machine Learning' "
            "WHEN service_family IS NOT NULL THEN 'Other' END"
        ),
        "ServiceName": "meter_category",
        "SkuId": "meter_id",
        "SkuMeter": "meter_name",
        "SubAccountId": (
            "CASE WHEN subscription LIKE '/subscriptions/%' THEN subscription "
            "ELSE '/subscriptions/' || subscription END"
        ),
        "SubAccountName": "subscription_name",
        "SubAccountType": "CASE WHEN subscription IS NOT NULL THEN 'Subscription' END",
        "Tags": f"CASE WHEN {valid} THEN {tags} END",
        "ServiceProviderName": "'Microsoft'",
        "HostProviderName": "'Microsoft'",
        BAD_TAGS: (
            f"CASE WHEN {tags} IS NOT NULL AND NOT {valid} THEN {{'column': 'Tags', 'value': "
            "tags, 'why': 'is not a JSON object, with its braces or without (as Azure writes "
            "it)'} END"
        ),
    }


def derived(mca: bool) -> list[Derived]:
    """Every ledger FOCUS column, cast to the type the FOCUS reader gives it (a delivery
    may mix both formats), then the tags that are no JSON object even wrapped."""
    mapping = _mapping(mca)
    out = [
        Derived(name, f"CAST(({mapping.get(name, 'NULL')}) AS {_SQL_TYPES[kind]})")
        for name, (kind, _) in COLUMNS.items()
    ]
    return [*out, Derived(BAD_TAGS, mapping[BAD_TAGS])]


def _lookup(columns: Sequence[str]) -> dict[str, str]:
    return {c.lower(): c for c in reversed(columns)}  # the first spelling wins


def is_mca(columns: Sequence[str]) -> bool:
    present = _lookup(columns)
    return "billingprofileid" in present and not any(c in present for c in EA_ONLY)


def dataset_of(uri: str) -> str | None:
    """The dataset an export's file or folder name says, nearest the file first; None when
    no part says, or a part says both."""
    for part in reversed(PurePath(uri).parts):
        found = {d for hint, d in HINTS.items() if hint in re.sub(r"[^a-z]", "", part.lower())}
        if found:
            return found.pop() if len(found) == 1 else None
    return None


@dataclass(frozen=True)
class Azure:
    """Azure Cost Management cost details (EA or MCA; actual or amortized) as CSV, gzip CSV
    or Parquet."""

    name: str = NAME
    dataset: str = AUTO  # `--dataset`; AUTO: from the input's name
    uri: str = ""  # the input's name, for the dataset hint

    def given(self, dataset: str, uri: str) -> Azure:
        return Azure(self.name, dataset, uri)

    def claims(self, columns: Sequence[str]) -> bool:
        return len(SIGNATURE.intersection(_lookup(columns))) >= 2

    def missing(self, columns: Sequence[str]) -> list[str]:
        present = _lookup(columns)
        wanted = (*MANDATORY, *(MCA_ACCOUNT if is_mca(columns) else EA_ACCOUNT))
        return [" or ".join(alt) for alt in wanted if not any(a.lower() in present for a in alt)]

    def read(
        self, path: Path, columns: Sequence[str], *, complete: bool, sink: Sink | None = None
    ) -> Read:
        present = _lookup(columns)
        wanted = [
            Column(n, kind, tuple(present[s.lower()] for s in names if s.lower() in present))
            for n, (kind, names) in SOURCES.items()
        ]
        mca = is_mca(columns)
        dataset = self.dataset if self.dataset != AUTO else dataset_of(self.uri or str(path))
        version = f"{NAME}-{'mca' if mca else 'ea'}-{dataset or 'unknown'}"
        if not complete:  # check what is there, so a refusal names the bad values too
            wanted = [c for c in wanted if c.sources]
        typed = read(path, wanted, raw=RAW, derive=derived(mca) if complete else ())
        bad = rejected(typed)
        if typed.truncated:
            return Read(typed.rows, version, dataset or "", bad, error=typed.truncated)
        if not complete:
            return Read(typed.rows, version, dataset or "", bad)
        if dataset is None:
            return Read(
                pa.table({}), version, "", bad, read_rows=typed.read_rows, error=(
                    f"{printable(self.uri or str(path))} is an Azure cost details export, but "
                    "neither --dataset nor its file or folder name (ActualCost, AmortizedCost) "
                    "says which dataset it holds: give --dataset actual or --dataset amortized"
                ),
            )  # fmt: skip
        rows, tag_rejects = flagged(typed.rows, BAD_TAGS, RAW)
        return Read(rows, version, dataset, bad + tag_rejects, read_rows=typed.read_rows)
