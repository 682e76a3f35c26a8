-- 007: the ledger takes whole FOCUS 1.0-1.4 files: every FOCUS column they may carry, the raw row, and nulls as delivered.
-- FOCUS columns are added as FOCUS spells them; money and quantities are DECIMAL(38, 12)
-- and the key-value columns JSON. `x_SourceRow` keeps each source line item whole (extra
-- non-FOCUS columns and providers' `x_` columns included), values as read. FOCUS marks
-- some columns not null, but real exports leave them empty: such rows load as delivered
-- and the load report counts them, so only the replace unit's own parts stay NOT NULL.
ALTER TABLE billing ADD COLUMN AvailabilityZone VARCHAR;
ALTER TABLE billing ADD COLUMN BillingAccountType VARCHAR;
ALTER TABLE billing ADD COLUMN CapacityReservationId VARCHAR;
ALTER TABLE billing ADD COLUMN CapacityReservationStatus VARCHAR;
ALTER TABLE billing ADD COLUMN CommitmentDiscountCategory VARCHAR;
ALTER TABLE billing ADD COLUMN CommitmentDiscountId VARCHAR;
ALTER TABLE billing ADD COLUMN CommitmentDiscountName VARCHAR;
ALTER TABLE billing ADD COLUMN CommitmentDiscountQuantity DECIMAL(38, 12);
ALTER TABLE billing ADD COLUMN CommitmentDiscountStatus VARCHAR;
ALTER TABLE billing ADD COLUMN CommitmentDiscountType VARCHAR;
ALTER TABLE billing ADD COLUMN CommitmentDiscountUnit VARCHAR;
ALTER TABLE billing ADD COLUMN ContractedUnitPrice DECIMAL(38, 12);
ALTER TABLE billing ADD COLUMN InvoiceId VARCHAR;
ALTER TABLE billing ADD COLUMN ListUnitPrice DECIMAL(38, 12);
ALTER TABLE billing ADD COLUMN PricingCategory VARCHAR;
ALTER TABLE billing ADD COLUMN PricingCurrency VARCHAR;
ALTER TABLE billing ADD COLUMN PricingCurrencyContractedUnitPrice DECIMAL(38, 12);
ALTER TABLE billing ADD COLUMN PricingCurrencyEffectiveCost DECIMAL(38, 12);
ALTER TABLE billing ADD COLUMN PricingCurrencyListUnitPrice DECIMAL(38, 12);
ALTER TABLE billing ADD COLUMN SkuId VARCHAR;
ALTER TABLE billing ADD COLUMN SkuMeter VARCHAR;
ALTER TABLE billing ADD COLUMN SkuPriceDetails JSON;
ALTER TABLE billing ADD COLUMN SkuPriceId VARCHAR;
ALTER TABLE billing ADD COLUMN SubAccountId VARCHAR;
ALTER TABLE billing ADD COLUMN SubAccountName VARCHAR;
ALTER TABLE billing ADD COLUMN SubAccountType VARCHAR;
ALTER TABLE billing ADD COLUMN Tags JSON;
-- 1.3: the contract a charge drew on, and split cost allocation
ALTER TABLE billing ADD COLUMN ContractApplied JSON;
ALTER TABLE billing ADD COLUMN AllocatedMethodId VARCHAR;
ALTER TABLE billing ADD COLUMN AllocatedMethodDetails JSON;
ALTER TABLE billing ADD COLUMN AllocatedResourceId VARCHAR;
ALTER TABLE billing ADD COLUMN AllocatedResourceName VARCHAR;
ALTER TABLE billing ADD COLUMN AllocatedTags JSON;
-- 1.4
ALTER TABLE billing ADD COLUMN CommitmentProgramEligibilityDetails JSON;
ALTER TABLE billing ADD COLUMN InvoiceDetailId VARCHAR;
-- ours: where a billed row came from, whole
ALTER TABLE billing ADD COLUMN x_SourceFormat VARCHAR;
ALTER TABLE billing ADD COLUMN x_SourceUri VARCHAR;
ALTER TABLE billing ADD COLUMN x_SourceRowNumber BIGINT;
ALTER TABLE billing ADD COLUMN x_SourceRow JSON;
-- delivered nulls load as they are (the unit's parts, ProviderName, BillingAccountId and
-- BillingPeriodStart, stay NOT NULL: a row without them belongs to no delivery)
ALTER TABLE billing ALTER COLUMN BilledCost DROP NOT NULL;
ALTER TABLE billing ALTER COLUMN BillingCurrency DROP NOT NULL;
ALTER TABLE billing ALTER COLUMN BillingPeriodEnd DROP NOT NULL;
ALTER TABLE billing ALTER COLUMN ChargeCategory DROP NOT NULL;
ALTER TABLE billing ALTER COLUMN ChargePeriodStart DROP NOT NULL;
ALTER TABLE billing ALTER COLUMN ChargePeriodEnd DROP NOT NULL;
ALTER TABLE billing ALTER COLUMN ContractedCost DROP NOT NULL;
ALTER TABLE billing ALTER COLUMN EffectiveCost DROP NOT NULL;
ALTER TABLE billing ALTER COLUMN InvoiceIssuerName DROP NOT NULL;
ALTER TABLE billing ALTER COLUMN ListCost DROP NOT NULL;
ALTER TABLE billing ALTER COLUMN PublisherName DROP NOT NULL;
ALTER TABLE billing ALTER COLUMN ServiceCategory DROP NOT NULL;
ALTER TABLE billing ALTER COLUMN ServiceName DROP NOT NULL;
