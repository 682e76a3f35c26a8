"""AWS Cost and Usage Reports, legacy CUR and CUR 2.0 (Data Exports), mapped onto FOCUS.

One format, `aws-cur`, because the two are one table under three spellings: legacy CSV
says `lineItem/UnblendedCost`, legacy Parquet and CUR 2.0 say `line_item_unblended_cost`.
Each source column is therefore one typed `Column` whose sources are its spellings (the
file has one of them), and the FOCUS columns are computed from those in DuckDB SQL
(`Derived`), never row by row. CUR 2.0 is told from legacy snake_case by what only it has:
the `product`, `resource_tags`, `cost_category` and `discount` maps and the two account
name columns (docs.aws.amazon.com/cur/latest/userguide/dataexports-migrate.html).

EffectiveCost follows AWS's amortized cost (the CUR "amortized cost" query that AWS's Cloud
Intelligence Dashboards use, and the FinOps Foundation focus_converters `aws-cur` rules):
covered usage costs what its commitment made it cost, an upfront fee costs nothing (its
amortized share is in that usage), a recurring fee only its unused part. Summed over a
month, commitment purchases are thereby not counted twice. docs/billing.md has the table.

The replace unit's provider is always `AWS` (the billing entity, `AWS` or `AWS
Marketplace`, is the publisher), so every line item of a payer account's month lands in one
unit whatever sells it; the dataset is `cur` for both versions, so a month moved from a
legacy report to a CUR 2.0 export replaces itself instead of being counted twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.billing.focus import RAW
from ingest.billing.formats import Read, Sink, service_category
from ingest.billing.problems import rejected
from warehouse.focus_spec import COLUMNS
from warehouse.tabular import Column, Derived, Kind, read

NAME = "aws-cur"
DATASET = "cur"
LEGACY, CUR2 = "aws-cur-legacy", "aws-cur-2.0"

D, T, J, S = Kind.DECIMAL, Kind.TIME, Kind.JSON, Kind.TEXT
# What we read: our name for it, its kind, its spellings (legacy CSV, snake_case).
SOURCES: tuple[tuple[str, Kind, tuple[str, ...]], ...] = (
    ("payer", S, ("bill/PayerAccountId", "bill_payer_account_id")),
    ("payer_name", S, ("bill_payer_account_name",)),
    ("usage_account", S, ("lineItem/UsageAccountId", "line_item_usage_account_id")),
    ("usage_account_name", S, ("line_item_usage_account_name",)),
    ("billing_entity", S, ("bill/BillingEntity", "bill_billing_entity")),
    ("invoicing_entity", S, ("bill/InvoicingEntity", "bill_invoicing_entity")),
    ("invoice_id", S, ("bill/InvoiceId", "bill_invoice_id")),
    ("period_start", T, ("bill/BillingPeriodStartDate", "bill_billing_period_start_date")),
    ("period_end", T, ("bill/BillingPeriodEndDate", "bill_billing_period_end_date")),
    ("item_type", S, ("lineItem/LineItemType", "line_item_line_item_type")),
    ("usage_start", T, ("lineItem/UsageStartDate", "line_item_usage_start_date")),
    ("usage_end", T, ("lineItem/UsageEndDate", "line_item_usage_end_date")),
    ("product_code", S, ("lineItem/ProductCode", "line_item_product_code")),
    ("product_name", S, ("product/ProductName", "product_product_name")),
    ("product_map", J, ("product",)),
    ("zone", S, ("lineItem/AvailabilityZone", "line_item_availability_zone")),
    ("usage_amount", D, ("lineItem/UsageAmount", "line_item_usage_amount")),
    ("currency", S, ("lineItem/CurrencyCode", "line_item_currency_code")),
    ("unblended_rate", D, ("lineItem/UnblendedRate", "line_item_unblended_rate")),
    ("unblended_cost", D, ("lineItem/UnblendedCost", "line_item_unblended_cost")),
    ("net_rate", D, ("lineItem/NetUnblendedRate", "line_item_net_unblended_rate")),
    ("net_cost", D, ("lineItem/NetUnblendedCost", "line_item_net_unblended_cost")),
    ("description", S, ("lineItem/LineItemDescription", "line_item_line_item_description")),
    ("resource_id", S, ("lineItem/ResourceId", "line_item_resource_id")),
    ("region_code", S, ("product/regionCode", "product_region_code")),
    ("region", S, ("product/region", "product_region")),
    ("location", S, ("product/location", "product_location")),
    ("sku", S, ("product/sku", "product_sku")),
    ("rate_code", S, ("pricing/RateCode", "pricing_rate_code")),
    ("rate_id", S, ("pricing/RateId", "pricing_rate_id")),
    ("public_cost", D, ("pricing/publicOnDemandCost", "pricing_public_on_demand_cost")),
    ("public_rate", D, ("pricing/publicOnDemandRate", "pricing_public_on_demand_rate")),
    ("term", S, ("pricing/term", "pricing_term")),
    ("unit", S, ("pricing/unit", "pricing_unit")),
    ("ri_arn", S, ("reservation/ReservationARN", "reservation_reservation_a_r_n")),
    ("ri_effective", D, ("reservation/EffectiveCost", "reservation_effective_cost")),
    (
        "ri_unused_upfront",
        D,
        (
            "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod",
            "reservation_unused_amortized_upfront_fee_for_billing_period",
        ),
    ),
    ("ri_unused_fee", D, ("reservation/UnusedRecurringFee", "reservation_unused_recurring_fee")),
    ("sp_arn", S, ("savingsPlan/SavingsPlanARN", "savings_plan_savings_plan_a_r_n")),
    (
        "sp_effective",
        D,
        ("savingsPlan/SavingsPlanEffectiveCost", "savings_plan_savings_plan_effective_cost"),
    ),
    (
        "sp_commitment",
        D,
        ("savingsPlan/TotalCommitmentToDate", "savings_plan_total_commitment_to_date"),
    ),
    ("sp_used", D, ("savingsPlan/UsedCommitment", "savings_plan_used_commitment")),
    ("tags_map", J, ("resource_tags",)),
)
SPELLINGS = {name: spellings for name, _, spellings in SOURCES}
# Without these no line item can be placed in a delivery or costed.
MANDATORY = (
    "payer",
    "period_start",
    "period_end",
    "item_type",
    "usage_start",
    "usage_end",
    "unblended_cost",
    "currency",
)
# Two of these make a file a CUR, complete or not (no other export spells them so).
SIGNATURE = frozenset(
    s
    for name in ("payer", "period_start", "item_type", "usage_start", "unblended_cost")
    for s in (*SPELLINGS[name], "identity/LineItemId", "identity_line_item_id")
)
# Only CUR 2.0 has these (its maps and its two name columns).
CUR2_MARKS = frozenset(
    {
        "product",
        "resource_tags",
        "cost_category",
        "discount",
        "bill_payer_account_name",
        "line_item_usage_account_name",
    }
)
TAG_PREFIXES = ("resourceTags/", "resource_tags_")  # legacy CSV, legacy Parquet

USAGE = "'Usage', 'DiscountedUsage', 'SavingsPlanCoveredUsage', 'SavingsPlanNegation'"
DISCOUNTS = (
    "'BundledDiscount', 'EdpDiscount', 'PrivateRateDiscount', 'Discount', 'DistributorDiscount'"
)
FEES = "'RIFee', 'Fee', 'SavingsPlanRecurringFee', 'SavingsPlanUpfrontFee'"
CATEGORY = f"""CASE
    WHEN item_type IN ({USAGE}) THEN 'Usage'
    WHEN item_type IN ({FEES}) THEN 'Purchase'
    WHEN item_type = 'Tax' THEN 'Tax'
    WHEN item_type IN ('Credit', 'Refund', {DISCOUNTS}) THEN 'Credit'
    END"""
# AWS abbreviates the time in a unit (`Hrs`, `GB-Mo`, `LCU-Hrs`); FOCUS's UnitFormat spells
# it out (`Hours`, `GB-Months`), as AWS's own FOCUS export does. Other units are as delivered.
TIME_UNITS = {"Hours": ("Hrs", "Hr", "Hour"), "Months": ("Mo", "Month"), "Days": ("Day",),
              "Minutes": ("Min", "Minute"), "Seconds": ("Sec", "Second")}  # fmt: skip


def _focus_unit() -> str:
    """Suffix tests rather than regular expressions, because a CUR has millions of rows:
    on 3M rows this took 0.13 s, five regular expressions 1.45 s."""
    whens = ["WHEN unit IN ('Hrs', 'Hr') THEN 'Hours'", "WHEN unit = 'Mo' THEN 'Months'"]
    for plural, spellings in TIME_UNITS.items():
        whens += [
            f"WHEN suffix(unit, '-{s}') AND length(unit) > {len(s) + 1} "
            f"THEN left(unit, -{len(s)}) || '{plural}'"
            for s in spellings
        ]
    return f"CASE WHEN unit = '' THEN NULL {' '.join(whens)} ELSE unit END"


UNIT = _focus_unit()
# AWS's amortized cost (module docstring); a fee of a reservation is its upfront payment.
EFFECTIVE = """CASE item_type
    WHEN 'DiscountedUsage' THEN ri_effective
    WHEN 'SavingsPlanCoveredUsage' THEN sp_effective
    WHEN 'SavingsPlanNegation' THEN 0
    WHEN 'SavingsPlanUpfrontFee' THEN 0
    WHEN 'SavingsPlanRecurringFee' THEN sp_commitment - sp_used
    WHEN 'RIFee' THEN CASE WHEN ri_unused_upfront IS NULL AND ri_unused_fee IS NULL THEN NULL
        ELSE coalesce(ri_unused_upfront, 0) + coalesce(ri_unused_fee, 0) END
    WHEN 'Fee' THEN CASE WHEN nullif(ri_arn, '') IS NOT NULL THEN 0 ELSE unblended_cost END
    ELSE unblended_cost END"""
# A few common product codes; the rest are `Other` (FOCUS's own catch-all value).
SERVICE_CATEGORIES = {
    "AI and Machine Learning": ("AmazonSageMaker", "AmazonBedrock", "AmazonRekognition",
                                "AmazonComprehend", "AmazonTextract", "AmazonPolly"),
    "Compute": ("AmazonEC2", "AWSLambda", "AmazonECS", "AmazonEKS", "AmazonLightsail",
                "AWSBatch", "AWSFargate"),
    "Storage": ("AmazonS3", "AmazonEFS", "AmazonFSx", "AmazonGlacier", "AWSBackup"),
    "Databases": ("AmazonRDS", "AmazonDynamoDB", "AmazonElastiCache", "AmazonRedshift",
                  "AmazonDocDB", "AmazonNeptune"),
    "Networking": ("AWSDataTransfer", "AmazonVPC", "AmazonCloudFront", "AmazonRoute53",
                   "AWSELB", "AWSDirectConnect"),
    "Analytics": ("AWSGlue", "AmazonAthena", "AmazonKinesis", "AmazonEMR", "AmazonQuickSight"),
    "Integration": ("AWSQueueService", "AmazonSNS", "AmazonSQS", "AWSEvents",
                    "AmazonApiGateway", "AWSIoT", "AmazonMQ"),
    "Management and Governance": ("AmazonCloudWatch", "AWSCloudTrail", "AWSConfig",
                                  "AWSCostExplorer", "AWSCloudShell", "AWSSystemsManager"),
    "Security": ("AWSKMS", "AWSSecretsManager", "awswaf", "AmazonGuardDuty", "AWSShield"),
}  # fmt: skip


TAGS_LEGACY = f"""nullif(to_json(map_from_entries(list_transform(list_filter(
    map_entries(CAST({RAW}::JSON AS MAP(VARCHAR, VARCHAR))),
    lambda e: e.value IS NOT NULL AND e.value <> ''
        AND (starts_with(e.key, '{TAG_PREFIXES[0]}') OR starts_with(e.key, '{TAG_PREFIXES[1]}'))),
    lambda e: {{'key': regexp_replace(e.key, '^({TAG_PREFIXES[0]}|{TAG_PREFIXES[1]})', ''),
               'value': e.value}})))::VARCHAR, '{{}}')"""
TAGS_CUR2 = "CASE WHEN tags_map IS NULL OR tags_map = '{}' THEN NULL ELSE tags_map END"

# FOCUS column -> its SQL over the typed source columns; the rest of `focus.COLUMNS` is NULL.
MAPPING: dict[str, str] = {
    "ProviderName": "'AWS'",
    "ServiceProviderName": "'AWS'",
    "HostProviderName": "'AWS'",
    "PublisherName": "coalesce(nullif(billing_entity, ''), 'AWS')",
    "InvoiceIssuerName": "coalesce(nullif(invoicing_entity, ''), 'AWS')",
    "InvoiceId": "nullif(invoice_id, '')",
    "BillingAccountId": "nullif(payer, '')",
    "BillingAccountName": "nullif(payer_name, '')",
    "SubAccountId": "nullif(usage_account, '')",
    "SubAccountName": "nullif(usage_account_name, '')",
    "BillingCurrency": "currency",
    "BillingPeriodStart": "period_start",
    "BillingPeriodEnd": "period_end",
    "ChargePeriodStart": "usage_start",
    "ChargePeriodEnd": "usage_end",
    "ChargeCategory": CATEGORY,
    "ChargeClass": "CASE WHEN usage_start < period_start THEN 'Correction' END",
    "ChargeDescription": "description",
    "ChargeFrequency": f"""CASE
        WHEN item_type IN ('SavingsPlanUpfrontFee', 'Fee', 'Credit', 'Refund') THEN 'One-Time'
        WHEN item_type IN ('RIFee', 'SavingsPlanRecurringFee') THEN 'Recurring'
        WHEN item_type IN ({USAGE}, {DISCOUNTS}, 'Tax') THEN 'Usage-Based' END""",
    "BilledCost": "unblended_cost",
    "EffectiveCost": EFFECTIVE,
    "ListCost": "public_cost",
    "ListUnitPrice": "public_rate",
    "ContractedCost": "coalesce(net_cost, unblended_cost)",
    "ContractedUnitPrice": "coalesce(net_rate, unblended_rate)",
    "PricingQuantity": f"""CASE WHEN nullif(unit, '') IS NOT NULL
        OR item_type IN ({USAGE}, {FEES}) THEN usage_amount END""",
    "PricingUnit": UNIT,
    "ConsumedQuantity": f"CASE WHEN item_type IN ({USAGE}) THEN usage_amount END",
    "ConsumedUnit": f"CASE WHEN item_type IN ({USAGE}) THEN {UNIT} END",
    "PricingCategory": """CASE
        WHEN item_type IN ('DiscountedUsage', 'SavingsPlanCoveredUsage') THEN 'Committed'
        WHEN term = 'Spot' THEN 'Dynamic'
        WHEN term = 'OnDemand' THEN 'Standard' END""",
    "RegionId": "coalesce(nullif(region_code, ''), nullif(region, ''))",
    "RegionName": "nullif(location, '')",
    "AvailabilityZone": "nullif(zone, '')",
    "ResourceId": "nullif(resource_id, '')",
    "ServiceName": (
        "coalesce(nullif(product_name, ''), "
        "nullif(json_extract_string(product_map, '$.product_name'), ''), product_code)"
    ),
    "ServiceCategory": service_category("product_code", SERVICE_CATEGORIES),
    "SkuId": "nullif(sku, '')",
    "SkuPriceId": "coalesce(nullif(rate_code, ''), nullif(rate_id, ''))",
    "CommitmentDiscountId": "coalesce(nullif(sp_arn, ''), nullif(ri_arn, ''))",
    "CommitmentDiscountType": """CASE WHEN nullif(sp_arn, '') IS NOT NULL THEN 'Savings Plan'
        WHEN nullif(ri_arn, '') IS NOT NULL THEN 'Reserved Instance' END""",
    "CommitmentDiscountCategory": """CASE WHEN nullif(sp_arn, '') IS NOT NULL THEN 'Spend'
        WHEN nullif(ri_arn, '') IS NOT NULL THEN 'Usage' END""",
    "CommitmentDiscountStatus": """CASE
        WHEN item_type IN ('DiscountedUsage', 'SavingsPlanCoveredUsage') THEN 'Used' END""",
}
SQL_TYPE = {D: "DECIMAL(38, 12)", T: "TIMESTAMPTZ", J: "VARCHAR", S: "VARCHAR"}


def version_of(columns: Sequence[str]) -> str:
    """`aws-cur-2.0` when a column only CUR 2.0 has is there, else `aws-cur-legacy`."""
    return CUR2 if CUR2_MARKS.intersection(columns) else LEGACY


def derived(columns: Sequence[str]) -> list[Derived]:
    """Every FOCUS column the ledger keeps, from the typed source columns; the tag SQL is
    one of two fixed texts, chosen by whether the file has legacy tag columns."""
    has_tag_columns = any(c.startswith(TAG_PREFIXES) for c in columns)
    tags = TAGS_CUR2 if "resource_tags" in columns else TAGS_LEGACY if has_tag_columns else None
    out = []
    for name, (kind, _) in COLUMNS.items():
        sql = tags if name == "Tags" else MAPPING.get(name)
        out.append(Derived(name, f"CAST(({sql or 'NULL'}) AS {SQL_TYPE[kind]})"))
    return out


@dataclass(frozen=True)
class AwsCur:
    """AWS legacy CUR (CSV, gzip CSV, Parquet) and CUR 2.0 (Parquet, gzip CSV)."""

    name: str = NAME

    def claims(self, columns: Sequence[str]) -> bool:
        return len(SIGNATURE.intersection(columns)) >= 2

    def missing(self, columns: Sequence[str]) -> list[str]:
        present = set(columns)
        legacy_csv = any("/" in c for c in columns)
        return [
            SPELLINGS[name][0 if legacy_csv else -1]
            for name in MANDATORY
            if not present.intersection(SPELLINGS[name])
        ]

    def read(
        self, path: Path, columns: Sequence[str], *, complete: bool, sink: Sink | None = None
    ) -> Read:
        present = set(columns)
        wanted = [Column(name, kind, spellings) for name, kind, spellings in SOURCES]
        version = version_of(columns)
        if not complete:  # check what is there, so a refusal names the bad values too
            checked = [c for c in wanted if present.intersection(c.sources)]
            typed = read(path, checked, raw=RAW)
        else:
            to = (lambda rows: sink(rows, version, DATASET)) if sink else None
            typed = read(path, wanted, raw=RAW, derive=derived(columns), sink=to)
        if typed.truncated:
            return Read(typed.rows, version, DATASET, rejected(typed), error=typed.truncated)
        return Read(typed.rows, version, DATASET, rejected(typed), read_rows=typed.read_rows)
