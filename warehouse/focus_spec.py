"""The FOCUS columns the ledger keeps: each one's kind, the version that brought it, and
which are mandatory. One catalogue for both directions: `ingest.billing.focus` reads
files by it, and the FOCUS export writes every column of a version from it.

It lives in `warehouse/` because the `billing` table is FOCUS-shaped and the export is a
read of it; `ingest/` imports it from here (imports flow one way, DESIGN.md).
"""

from __future__ import annotations

from warehouse.tabular import Kind

D, T, J, S = Kind.DECIMAL, Kind.TIME, Kind.JSON, Kind.TEXT
# Every FOCUS column the ledger keeps: its kind and the version that introduced it.
COLUMNS: dict[str, tuple[Kind, str]] = {
    "AvailabilityZone": (S, "1.0"),
    "BilledCost": (D, "1.0"),
    "BillingAccountId": (S, "1.0"),
    "BillingAccountName": (S, "1.0"),
    "BillingAccountType": (S, "1.2"),
    "BillingCurrency": (S, "1.0"),
    "BillingPeriodEnd": (T, "1.0"),
    "BillingPeriodStart": (T, "1.0"),
    "CapacityReservationId": (S, "1.1"),
    "CapacityReservationStatus": (S, "1.1"),
    "ChargeCategory": (S, "1.0"),
    "ChargeClass": (S, "1.0"),
    "ChargeDescription": (S, "1.0"),
    "ChargeFrequency": (S, "1.0"),
    "ChargePeriodEnd": (T, "1.0"),
    "ChargePeriodStart": (T, "1.0"),
    "CommitmentDiscountCategory": (S, "1.0"),
    "CommitmentDiscountId": (S, "1.0"),
    "CommitmentDiscountName": (S, "1.0"),
    "CommitmentDiscountQuantity": (D, "1.1"),
    "CommitmentDiscountStatus": (S, "1.0"),
    "CommitmentDiscountType": (S, "1.0"),
    "CommitmentDiscountUnit": (S, "1.1"),
    "ConsumedQuantity": (D, "1.0"),
    "ConsumedUnit": (S, "1.0"),
    "ContractedCost": (D, "1.0"),
    "ContractedUnitPrice": (D, "1.0"),
    "EffectiveCost": (D, "1.0"),
    "InvoiceId": (S, "1.2"),
    "InvoiceIssuerName": (S, "1.0"),
    "ListCost": (D, "1.0"),
    "ListUnitPrice": (D, "1.0"),
    "PricingCategory": (S, "1.0"),
    "PricingCurrency": (S, "1.2"),
    "PricingCurrencyContractedUnitPrice": (D, "1.2"),
    "PricingCurrencyEffectiveCost": (D, "1.2"),
    "PricingCurrencyListUnitPrice": (D, "1.2"),
    "PricingQuantity": (D, "1.0"),
    "PricingUnit": (S, "1.0"),
    "ProviderName": (S, "1.0"),
    "PublisherName": (S, "1.0"),
    "RegionId": (S, "1.0"),
    "RegionName": (S, "1.0"),
    "ResourceId": (S, "1.0"),
    "ResourceName": (S, "1.0"),
    "ResourceType": (S, "1.0"),
    "ServiceCategory": (S, "1.0"),
    "ServiceName": (S, "1.0"),
    "ServiceSubcategory": (S, "1.1"),
    "SkuId": (S, "1.0"),
    "SkuMeter": (S, "1.1"),
    "SkuPriceDetails": (J, "1.1"),
    "SkuPriceId": (S, "1.0"),
    "SubAccountId": (S, "1.0"),
    "SubAccountName": (S, "1.0"),
    "SubAccountType": (S, "1.2"),
    "Tags": (J, "1.0"),
    "ServiceProviderName": (S, "1.3"),
    "HostProviderName": (S, "1.3"),
    "ContractApplied": (J, "1.3"),
    "AllocatedMethodId": (S, "1.3"),
    "AllocatedMethodDetails": (J, "1.3"),
    "AllocatedResourceId": (S, "1.3"),
    "AllocatedResourceName": (S, "1.3"),
    "AllocatedTags": (J, "1.3"),
    "CommitmentProgramEligibilityDetails": (J, "1.4"),
    "InvoiceDetailId": (S, "1.4"),
}
# Mandatory in every version from 1.0 to 1.4 (the provider pair aside, below).
MANDATORY = (
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "PricingQuantity",
    "PricingUnit",
    "ServiceCategory",
    "ServiceName",
)
# The mandatory columns FOCUS also says are never null. The others may be: `ChargeClass` is
# null unless the row is a correction, `PricingQuantity`/`PricingUnit` for charges without a
# price (taxes, credits), and a provider without names leaves the account's or the charge's
# description null.
NULLABLE = ("BillingAccountName", "ChargeClass", "ChargeDescription", "PricingQuantity",
            "PricingUnit")  # fmt: skip
NOT_NULL = tuple(c for c in MANDATORY if c not in NULLABLE)
# The values FOCUS allows in the enumerated columns hybridlens reads (the same in 1.0-1.4);
# they are case-sensitive, so a provider's `usage` would match no page's `Usage`.
ALLOWED = {
    "ChargeCategory": ("Usage", "Purchase", "Tax", "Credit", "Adjustment"),
    "ChargeClass": ("Correction",),
    "ChargeFrequency": ("One-Time", "Recurring", "Usage-Based"),
    "CommitmentDiscountCategory": ("Spend", "Usage"),
    "CommitmentDiscountStatus": ("Used", "Unused"),
}
# A file must name its provider one way or the other: 1.0-1.3 `ProviderName`, 1.3-1.4
# `ServiceProviderName`.
PROVIDER = ("ProviderName", "ServiceProviderName")
VERSIONS = ("1.0", "1.1", "1.2", "1.3", "1.4")
