"""Google Cloud's billing export (the BigQuery table's rows, saved as CSV, JSON lines or
Parquet): which columns it has, and how they map onto FOCUS.

The table nests: `service`, `sku`, `project`, `location`, `usage`, `invoice` are structs,
`labels` and `credits` repeated records. BigQuery's CSV export flattens the structs to
dotted columns (`service.description`) and writes the repeated fields as JSON text; a JSON
lines or Parquet export keeps them nested, and `warehouse.tabular` hands them over as JSON
text. Each field is therefore read from its dotted column when the file has one, else as
the member of its struct (`Column.path`), so every shape maps alike and a bad value is
named the same (`usage.amount 'lots' is not a number`).

The mapping follows Google's own FOCUS BigQuery view (docs/billing.md has the table and
sources): BilledCost and EffectiveCost are `cost` plus its credits (the credits are
negative and stay whole in `x_SourceRow`), ContractedCost is `cost`, `cost_type` gives
the charge category. The replace unit is (billing account, invoice month): a file exported
from the table holds whole invoice months, often several, so BillingPeriodStart is the
invoice month (YYYYMM, its first day at midnight UTC) and each month is its own unit.

Three values can only be checked after the mapping: an invoice month that is not YYYYMM, a
credit amount that is not a number, and a cost whose credits push it past DECIMAL(38, 12).
Each such row is quarantined here, named like `tabular`'s own checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.billing.formats import Read, Sink, service_category
from ingest.billing.problems import flagged, rejected
from warehouse.focus_spec import COLUMNS
from warehouse.tabular import Column, Derived, Kind, read
from warehouse.tabular_values import decimal

NAME = "gcp"
VERSION = "gcp-billing-export"
DATASET = "gcp-export"
PROVIDER = "Google Cloud"
RAW = "x_SourceRow"
BAD = "_bad"  # the reason a mapped row is quarantined (a struct of column, value, why)

D, T, S, A = Kind.DECIMAL, Kind.TIME, Kind.TEXT, Kind.JSON_ARRAY
# The export's fields the mapping reads, dotted as BigQuery's CSV export names them.
FIELDS: dict[str, Kind] = {
    "billing_account_id": S,
    "service.id": S,
    "service.description": S,
    "sku.id": S,
    "sku.description": S,
    "usage_start_time": T,
    "usage_end_time": T,
    "project.id": S,
    "project.name": S,
    "labels": A,
    "location.region": S,
    "location.zone": S,
    "cost": D,
    "currency": S,
    "cost_at_list": D,
    "usage.amount": D,
    "usage.unit": S,
    "usage.amount_in_pricing_units": D,
    "usage.pricing_unit": S,
    "price.effective_price": D,
    "credits": A,
    "invoice.month": S,
    "cost_type": S,
    "adjustment_info.id": S,
    "adjustment_info.description": S,
    "adjustment_info.type": S,
    "adjustment_info.mode": S,
    "resource.name": S,
    "resource.global_name": S,
    "subscription.instance_id": S,
    "transaction_type": S,
    "seller_name": S,
}
MANDATORY = (
    "billing_account_id",
    "service.description",
    "sku.id",
    "sku.description",
    "usage_start_time",
    "usage_end_time",
    "cost",
    "currency",
    "invoice.month",
    "cost_type",
)
# Fields no other export spells this way: two of them make a file a GCP export.
SIGNATURE = frozenset(
    {
        "billing_account_id",
        "usage_start_time",
        "usage_end_time",
        "cost_type",
        "cost_at_list",
        "export_time",
        "invoice",
        "invoice.month",
        "service.description",
        "sku.description",
        "credits",
    }
)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# SQL over the typed fields (named as in FIELDS), shared by several FOCUS columns.
_REGULAR = "lower(\"cost_type\") = 'regular'"
_AMOUNTS = "json_extract_string(\"credits\", '$[*].amount')"
# The credits' sum: 0 for none (the appended 0), NULL only when the sum overflows.
_CREDITS = (
    f"try(list_sum(list_append(list_transform(coalesce({_AMOUNTS}, []::VARCHAR[]), "
    f"lambda x: {decimal('x')}), 0::DECIMAL(38, 12))))"
)
_BAD_CREDIT = (
    f"coalesce(list_bool_or(list_transform({_AMOUNTS}, "
    f"lambda x: x IS NOT NULL AND {decimal('x')} IS NULL)), false)"
)
_NET = f'try("cost" + {_CREDITS})::DECIMAL(38, 12)'
_MONTH = (  # in the years 1 to 9998, as every time read (`warehouse.tabular_values.YEARS`)
    "CASE WHEN regexp_full_match(\"invoice.month\", '[0-9]{6}') "
    "AND \"invoice.month\" BETWEEN '000101' AND '999812' "
    "THEN try_strptime(\"invoice.month\", '%Y%m')::TIMESTAMPTZ END"
)
_CUD_TYPES = "('COMMITTED_USAGE_DISCOUNT', 'COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE')"
_CUD = f"list_filter(json_extract(\"credits\", '$[*]'), lambda c: c->>'type' IN {_CUD_TYPES})[1]"
_TAGS = (
    "CASE WHEN \"labels\" IS NOT NULL THEN '{' || array_to_string(list_transform(list_filter("
    "json_extract(\"labels\", '$[*]'), lambda e: json_type(e) = 'OBJECT'), "
    "lambda e: to_json(coalesce(e->>'key', '')) || ':' || coalesce(to_json(e->>'value'), "
    "'null')), ',') || '}' END"
)
# FOCUS's ServiceCategory by `service.description`, for common services; `Other` for the
# rest. Google's own view takes it from the pricing export's product taxonomy, a table the
# billing export does not hold.
SERVICE_CATEGORIES = {
    "AI and Machine Learning": ("Vertex AI", "Cloud Vision API", "Cloud Natural Language API",
                                "Cloud Speech API", "Cloud Translation API", "Document AI"),
    "Compute": ("Compute Engine", "Kubernetes Engine", "Cloud Run", "Cloud Functions",
                "App Engine"),
    "Storage": ("Cloud Storage", "Filestore"),
    "Databases": ("Cloud SQL", "Cloud Spanner", "Cloud Bigtable", "Cloud Firestore",
                  "Cloud Memorystore for Redis"),
    "Networking": ("Networking", "Cloud DNS"),
    "Analytics": ("BigQuery", "Dataflow", "Dataproc", "Cloud Composer"),
    "Integration": ("Cloud Pub/Sub", "Cloud Tasks", "Cloud Scheduler"),
    "Management and Governance": ("Cloud Logging", "Cloud Monitoring"),
    "Security": ("Secret Manager", "Cloud Key Management Service (KMS)",
                 "Security Command Center"),
    "Developer Tools": ("Cloud Build", "Artifact Registry", "Container Registry"),
}  # fmt: skip
# Every FOCUS column the export fills; the rest are null.
MAPPING: dict[str, str] = {
    "AvailabilityZone": '"location.zone"',
    "BilledCost": _NET,
    "BillingAccountId": '"billing_account_id"',
    "BillingCurrency": '"currency"',
    "BillingPeriodStart": _MONTH,
    "BillingPeriodEnd": f"{_MONTH} + INTERVAL 1 MONTH",
    "ChargeCategory": (
        "CASE lower(\"cost_type\") WHEN 'regular' THEN 'Usage' WHEN 'tax' THEN 'Tax' "
        "WHEN 'adjustment' THEN 'Adjustment' WHEN 'rounding_error' THEN 'Adjustment' END"
    ),
    "ChargeClass": (
        'CASE WHEN coalesce("adjustment_info.id", "adjustment_info.description", '
        '"adjustment_info.type", "adjustment_info.mode") IS NOT NULL THEN \'Correction\' END'
    ),
    "ChargeDescription": '"sku.description"',
    # never null in FOCUS: a committed-use fee recurs, a correction happens once, usage
    # and the tax on it follow use (the CUR mapping reads taxes the same way)
    "ChargeFrequency": (
        f"CASE WHEN {_REGULAR} AND lower(\"sku.description\") LIKE 'commitment%' THEN "
        "'Recurring' WHEN lower(\"cost_type\") IN ('adjustment', 'rounding_error') THEN "
        "'One-Time' WHEN lower(\"cost_type\") IN ('regular', 'tax') THEN 'Usage-Based' END"
    ),
    "ChargePeriodStart": '"usage_start_time"',
    "ChargePeriodEnd": '"usage_end_time"',
    "CommitmentDiscountCategory": (
        f"CASE {_CUD}->>'type' WHEN 'COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE' THEN 'Spend' "
        "WHEN 'COMMITTED_USAGE_DISCOUNT' THEN 'Usage' END"
    ),
    "CommitmentDiscountId": '"subscription.instance_id"',
    "CommitmentDiscountName": f"{_CUD}->>'full_name'",
    "ConsumedQuantity": f'CASE WHEN {_REGULAR} THEN "usage.amount" END',
    "ConsumedUnit": f'CASE WHEN {_REGULAR} THEN "usage.unit" END',
    "ContractedCost": '"cost"',
    "ContractedUnitPrice": '"price.effective_price"',
    "EffectiveCost": _NET,
    "InvoiceIssuerName": f"'{PROVIDER}'",
    # FOCUS lets it not be null; an export without `cost_at_list` has no better figure
    # than the cost at the account's price, before credits
    "ListCost": 'coalesce("cost_at_list", "cost")',
    "PricingCategory": (
        f"CASE WHEN {_REGULAR} THEN CASE WHEN lower(\"sku.description\") LIKE 'commitment%' "
        f"OR {_CUD} IS NOT NULL THEN 'Committed' ELSE 'Standard' END END"
    ),
    "PricingQuantity": f'CASE WHEN {_REGULAR} THEN "usage.amount_in_pricing_units" END',
    "PricingUnit": f'CASE WHEN {_REGULAR} THEN "usage.pricing_unit" END',
    "ProviderName": f"'{PROVIDER}'",
    "PublisherName": (
        'CASE WHEN upper("transaction_type") NOT IN (\'GOOGLE\') AND "seller_name" IS NOT NULL '
        f"THEN \"seller_name\" ELSE '{PROVIDER}' END"
    ),
    "RegionId": '"location.region"',
    "ResourceId": '"resource.global_name"',
    "ResourceName": '"resource.name"',
    "ServiceName": '"service.description"',
    "ServiceCategory": service_category('"service.description"', SERVICE_CATEGORIES),
    "SkuId": '"sku.id"',
    "SubAccountId": '"project.id"',
    "SubAccountName": '"project.name"',
    "SubAccountType": "CASE WHEN \"project.id\" IS NOT NULL THEN 'Project' END",
    "Tags": _TAGS,
    "ServiceProviderName": f"'{PROVIDER}'",
    "HostProviderName": f"'{PROVIDER}'",
}
_CHECK = (
    f"CASE WHEN \"invoice.month\" IS NOT NULL AND ({_MONTH}) IS NULL THEN {{'column': "
    "'invoice.month', 'value': \"invoice.month\", 'why': 'is not a YYYYMM month'} "
    f"WHEN {_BAD_CREDIT} THEN {{'column': 'credits', 'value': \"credits\", 'why': 'holds an "
    "amount that is not a number in DECIMAL(38, 12)'} "
    f"WHEN \"cost\" IS NOT NULL AND ({_NET}) IS NULL THEN {{'column': 'cost', 'value': "
    "\"cost\"::VARCHAR, 'why': 'plus its credits does not fit DECIMAL(38, 12)'} END"
)
_NULLS = {Kind.DECIMAL: "DECIMAL(38, 12)", Kind.TIME: "TIMESTAMPTZ"}


def derived() -> list[Derived]:
    """Every FOCUS column of the ledger, in `focus_spec.COLUMNS` order, then the check."""
    found = []
    for name, (kind, _) in COLUMNS.items():
        sql = MAPPING.get(name, "NULL")
        found.append(Derived(name, f"({sql})::{_NULLS.get(kind, 'VARCHAR')}"))
    return [*found, Derived(BAD, _CHECK)]


def present(field: str, columns: Sequence[str]) -> bool:
    """A field is there as its dotted column or inside its struct."""
    return field in columns or field.split(".", 1)[0] in columns


def sources(columns: Sequence[str]) -> list[Column]:
    """Each field from its dotted column (CSV), else as a member of its struct (JSON lines,
    Parquet), else null."""
    present_ = set(columns)
    wanted = []
    for field, kind in FIELDS.items():
        top, _, member = field.partition(".")
        if field in present_:
            wanted.append(Column(field, kind, (field,)))
        elif member and top in present_:
            wanted.append(Column(field, kind, (top,), path=f"$.{_q(member)}"))
        else:
            wanted.append(Column(field, kind))
    return wanted


@dataclass(frozen=True)
class Gcp:
    """Google Cloud billing export rows (standard or detailed usage cost) as CSV, gzip CSV,
    JSON lines or Parquet."""

    name: str = NAME

    def claims(self, columns: Sequence[str]) -> bool:
        return len(SIGNATURE.intersection(columns)) >= 2

    def missing(self, columns: Sequence[str]) -> list[str]:
        return [f for f in MANDATORY if not present(f, columns)]

    def read(
        self, path: Path, columns: Sequence[str], *, complete: bool, sink: Sink | None = None
    ) -> Read:
        wanted = sources(columns)
        if not complete:  # check what is there, so a refusal names the bad values too
            typed = read(path, [c for c in wanted if c.sources], raw=RAW)
            return Read(typed.rows, VERSION, DATASET, rejected(typed), error=typed.truncated)
        typed = read(path, wanted, raw=RAW, derive=derived())
        if typed.truncated:
            return Read(typed.rows, VERSION, DATASET, rejected(typed), error=typed.truncated)
        rows, checked = flagged(typed.rows, BAD, RAW)
        return Read(rows, VERSION, DATASET, [*rejected(typed), *checked], read_rows=typed.read_rows)
