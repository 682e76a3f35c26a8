-- 006: the cost ledger `billing`: FOCUS 1.2's mandatory columns as FOCUS spells them, plus ours.
-- One table for every cost, billed or modelled: cloud deliveries ([4]) and the on-prem /
-- edge cost model (warehouse/cost_model.py) both write it, each replacing its own unit
-- (`x_ReplaceUnit`), so a second delivery or a recompute never duplicates a charge.
-- Money is DECIMAL(38, 12) in `BillingCurrency`, never a float. Columns of ours start
-- with `x_`, as FOCUS requires of custom columns.
CREATE TABLE IF NOT EXISTS billing (
    BilledCost DECIMAL(38, 12) NOT NULL,
    BillingAccountId VARCHAR NOT NULL,
    BillingAccountName VARCHAR,
    BillingCurrency VARCHAR NOT NULL,
    BillingPeriodStart TIMESTAMPTZ NOT NULL,
    BillingPeriodEnd TIMESTAMPTZ NOT NULL,
    ChargeCategory VARCHAR NOT NULL,
    ChargeClass VARCHAR,
    ChargeDescription VARCHAR,
    ChargeFrequency VARCHAR,
    ChargePeriodStart TIMESTAMPTZ NOT NULL,
    ChargePeriodEnd TIMESTAMPTZ NOT NULL,
    ContractedCost DECIMAL(38, 12) NOT NULL,
    EffectiveCost DECIMAL(38, 12) NOT NULL,
    InvoiceIssuerName VARCHAR NOT NULL,
    ListCost DECIMAL(38, 12) NOT NULL,
    PricingQuantity DECIMAL(38, 12),
    PricingUnit VARCHAR,
    ProviderName VARCHAR NOT NULL,
    PublisherName VARCHAR NOT NULL,
    ServiceCategory VARCHAR NOT NULL,
    ServiceName VARCHAR NOT NULL,
    -- recommended in 1.2 / mandatory from 1.3: filled where known
    ServiceSubcategory VARCHAR,
    ServiceProviderName VARCHAR,
    HostProviderName VARCHAR,
    ConsumedQuantity DECIMAL(38, 12),
    ConsumedUnit VARCHAR,
    RegionId VARCHAR,
    RegionName VARCHAR,
    ResourceId VARCHAR,
    ResourceName VARCHAR,
    ResourceType VARCHAR,
    -- ours: which rows replace which, and where the cost belongs
    x_ReplaceUnit VARCHAR NOT NULL,     -- the partition a delivery or a recompute replaces
    x_Modelled BOOLEAN NOT NULL,        -- true: computed by the cost model, not billed
    x_Environment VARCHAR,              -- the hybridlens environment the cost belongs to
    x_Pool VARCHAR,                     -- the environment's GPU pool (modelled rows)
    x_GpuModel VARCHAR,
    -- the model's inputs, as configured for that day
    x_Gpus INTEGER,
    x_Servers INTEGER,
    x_PurchaseDate DATE,
    x_PricePerServer DECIMAL(38, 12),
    x_ResidualValue DECIMAL(38, 12),
    x_AmortizationYears INTEGER,
    x_ServerPowerW DOUBLE,
    x_PowerPricePerKwh DECIMAL(38, 12),
    x_Pue DOUBLE,
    x_FixedMonthlyCost DECIMAL(38, 12),
    x_CarbonIntensityGPerKwh DOUBLE,
    -- the model's parts: EffectiveCost = amortization + energy + fixed
    x_AmortizationCost DECIMAL(38, 12),
    x_EnergyCost DECIMAL(38, 12),
    x_FixedCost DECIMAL(38, 12),
    -- GPU-hours by kind (capacity = busy + idle-held + idle-free + unmonitored) ...
    x_CapacityGpuHours DOUBLE,
    x_BusyGpuHours DOUBLE,
    x_IdleHeldGpuHours DOUBLE,
    x_IdleFreeGpuHours DOUBLE,
    x_UnmonitoredGpuHours DOUBLE,
    -- ... and EffectiveCost split by them
    x_BusyCost DECIMAL(38, 12),
    x_IdleHeldCost DECIMAL(38, 12),
    x_IdleFreeCost DECIMAL(38, 12),
    x_UnmonitoredCost DECIMAL(38, 12),
    x_CostPerGpuHour DECIMAL(38, 12),
    -- energy and emissions
    x_EnergyKwh DOUBLE,                 -- the GPUs' measured energy, before PUE and server power
    x_ServerEnergyKwh DOUBLE,           -- the servers' non-GPU energy
    x_FacilityEnergyKwh DOUBLE,         -- (GPU + server energy) x PUE: what the site drew
    x_Co2eKg DOUBLE,                    -- facility energy x grid intensity; NULL: none configured
    load_id BIGINT                      -- the load whose publish wrote it; NULL: a config change
);
