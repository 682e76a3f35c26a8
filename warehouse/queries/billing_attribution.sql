-- Every billing row charged in [$lo, $hi) with the environment, model and cost center it is attributed to, and the rule that gave each (docs/billing.md "Attribution").
-- A row's time is ChargePeriodStart, else its BillingPeriodStart. Each dimension takes the
-- first rule that gives it, in this order: modelled, tag, inherited, resource, gpu-host,
-- region; `how` is the first rule that gave any, `unallocated` when none did. Every row of
-- the range comes out exactly once: the rules are LEFT JOINs on one row each.
-- $resources (ResourceId -> the first [[attribution.resources]] rule's values) and
-- $regions are built from the config by warehouse/attribution.py; every value is bound.
WITH base AS (
    SELECT rowid AS row_id,
           coalesce(ChargePeriodStart, BillingPeriodStart) AS charged_at,
           coalesce(ChargePeriodEnd, coalesce(ChargePeriodStart, BillingPeriodStart)
                    + INTERVAL 1 DAY) AS charged_until,
           ChargePeriodStart, ChargePeriodEnd, BillingPeriodStart, ProviderName,
           BillingAccountId, SubAccountId, ServiceCategory, ServiceName, ChargeCategory,
           RegionId, RegionName, ResourceId, ResourceName, BillingCurrency, BilledCost,
           EffectiveCost, ListCost, ContractedCost, x_Modelled, x_Environment, x_Pool,
           x_ReplaceUnit, Tags, x_SourceFormat, CommitmentDiscountId,
           CommitmentDiscountType, CommitmentDiscountStatus
    FROM billing
    WHERE coalesce(ChargePeriodStart, BillingPeriodStart) >= $lo
      AND coalesce(ChargePeriodStart, BillingPeriodStart) < $hi
),
-- the raw row, of the rows whose inherited labels are in it (Google Cloud's, Azure's) only:
-- carried in `base`, a FOCUS file's 800 bytes a row cost a fifth of the allocation's query
raw_rows AS (
    SELECT rowid AS row_id, x_SourceRow, x_SourceFormat, ProviderName
    FROM billing
    WHERE (x_SourceFormat = 'gcp-billing-export' OR ProviderName = 'Microsoft')
      AND coalesce(ChargePeriodStart, BillingPeriodStart) >= $lo
      AND coalesce(ChargePeriodStart, BillingPeriodStart) < $hi
),
-- tags (rank 1), keys normalized: lower case; on AWS rows `resourceTags/`, `resource_tags_`
-- then `user:`, `user_` stripped and `aws:` / `aws_` system tags left out. Taken apart once
-- per distinct tag set, not per row: a bill repeats a few thousand sets over millions of rows
tag_sets AS (
    SELECT DISTINCT Tags, ProviderName = 'AWS' AS aws
    FROM base WHERE Tags IS NOT NULL AND json_type(Tags) = 'OBJECT'
),
tag_pairs AS (
    SELECT t.Tags, t.aws, 1 AS rank, e.key AS raw_key,
           CASE WHEN t.aws
                THEN regexp_replace(regexp_replace(lower(trim(e.key)),
                     '^(resourcetags/|resource_tags_)', ''), '^(user:|user_)', '')
                ELSE lower(trim(e.key)) END AS key,
           e.value->>'$' AS value
    FROM tag_sets AS t, json_each(t.Tags) AS e
    WHERE NOT (t.aws AND regexp_matches(lower(trim(e.key)),
                                        '^(resourcetags/|resource_tags_)?aws[:_]'))
),
-- inherited (rank 2): a Google Cloud project's labels (CSV: `project.labels`; JSON lines
-- and Parquet: `project` holding `labels`), an Azure row's resource group and cost center
gcp_labels AS (
    SELECT row_id, coalesce(x_SourceRow->>'project.labels',
                            try(json_extract_string(x_SourceRow->>'project', '$.labels'))) AS raw
    FROM raw_rows WHERE x_SourceFormat = 'gcp-billing-export'
),
label_pairs AS (  -- the export's project labels are not checked on load: anything but a list is none
    SELECT g.row_id, 2 AS rank, l->>'key' AS raw_key, lower(trim(l->>'key')) AS key,
           l->>'value' AS value
    FROM (SELECT row_id, CASE WHEN json_valid(raw) AND json_type(raw) = 'ARRAY' THEN raw END
                 AS labels FROM gcp_labels) AS g,
         unnest(json_extract(g.labels, '$[*]')) AS u(l)
    WHERE json_type(l) = 'OBJECT'
),
azure_pairs AS (
    SELECT row_id, 2 AS rank, 'ResourceGroup' AS raw_key, 'resource_group' AS key,
           coalesce(x_SourceRow->>'ResourceGroup', x_SourceRow->>'ResourceGroupName',
                    x_SourceRow->>'resourceGroupName', x_SourceRow->>'resourceGroup',
                    x_SourceRow->>'x_ResourceGroupName') AS value
    FROM raw_rows WHERE ProviderName = 'Microsoft' AND x_SourceRow IS NOT NULL
    UNION ALL
    SELECT row_id, 2, 'CostCenter', 'cost_center',
           coalesce(x_SourceRow->>'CostCenter', x_SourceRow->>'costCenter',
                    x_SourceRow->>'x_CostCenter')
    FROM raw_rows WHERE ProviderName = 'Microsoft' AND x_SourceRow IS NOT NULL
),
-- the first pair of each dimension, by the key's place in its list, then the raw key: of
-- each tag set (rank 1) and of each row's inherited labels (rank 2) apart, since a tag
-- always comes before a label
firsts AS (
    SELECT rank, Tags, aws, row_id,
           first(value ORDER BY list_position($environment_keys, key), raw_key)
               FILTER (WHERE list_contains($environment_keys, key)) AS env_value,
           first(value ORDER BY list_position($model_keys, key), raw_key)
               FILTER (WHERE list_contains($model_keys, key)) AS model_value,
           first(value ORDER BY list_position($cost_center_keys, key), raw_key)
               FILTER (WHERE list_contains($cost_center_keys, key)) AS cc_value
    FROM (SELECT rank, Tags, aws, NULL::BIGINT AS row_id, raw_key, key, value FROM tag_pairs
          UNION ALL
          SELECT rank, NULL::JSON, NULL::BOOLEAN, row_id, raw_key, key, value
          FROM (SELECT * FROM label_pairs UNION ALL SELECT * FROM azure_pairs))
    WHERE value IS NOT NULL AND trim(value) <> ''
      AND (list_contains($environment_keys, key) OR list_contains($model_keys, key)
           OR list_contains($cost_center_keys, key))
    GROUP BY ALL
),
keyed AS (
    SELECT b.row_id,
           coalesce(t.env_value, i.env_value) AS env_value,
           CASE WHEN t.env_value IS NOT NULL THEN 1 WHEN i.env_value IS NOT NULL THEN 2 END
               AS env_rank,
           coalesce(t.model_value, i.model_value) AS model_value,
           CASE WHEN t.model_value IS NOT NULL THEN 1 WHEN i.model_value IS NOT NULL THEN 2 END
               AS model_rank,
           coalesce(t.cc_value, i.cc_value) AS cc_value,
           CASE WHEN t.cc_value IS NOT NULL THEN 1 WHEN i.cc_value IS NOT NULL THEN 2 END
               AS cc_rank
    FROM base AS b
    LEFT JOIN firsts AS t
      ON t.rank = 1 AND t.Tags = b.Tags AND t.aws IS NOT DISTINCT FROM (b.ProviderName = 'AWS')
    LEFT JOIN firsts AS i ON i.rank = 2 AND i.row_id = b.row_id
    WHERE t.rank IS NOT NULL OR i.rank IS NOT NULL
),
-- [[attribution.resources]]: the first rule matching each ResourceId, matched in Python
resource_rules AS (
    SELECT r.resource_id, nullif(r.environment, '') AS environment,
           nullif(r.model, '') AS model, nullif(r.cost_center, '') AS cost_center
    FROM (SELECT unnest(CAST($resources AS STRUCT(resource_id VARCHAR, environment VARCHAR,
                                                  model VARCHAR, cost_center VARCHAR)[])) AS r)
),
-- the GPU hosts behind a row's resource: a host (or its first DNS label, or its cloud id)
-- named as its ResourceId, the id's last part (an ARN's `instance/i-...`, an Azure or GCP
-- path) or its ResourceName
host_names AS (
    SELECT DISTINCT row_id, charged_at, charged_until, name
    FROM (SELECT row_id, charged_at, charged_until,
                 unnest([lower(ResourceId), lower(regexp_extract(ResourceId, '[^/]+$')),
                         lower(ResourceName)]) AS name
          FROM base WHERE NOT x_Modelled AND (ResourceId IS NOT NULL OR ResourceName IS NOT NULL))
    WHERE name IS NOT NULL AND name <> ''
),
gpu_hours AS (
    SELECT host, host_id, hour, environment, pool, workload, gpu_hours
    FROM workload_gpu_hours()
    WHERE hour >= $lo AND hour < (SELECT max(charged_until) FROM base)
),
host_keys AS (
    SELECT DISTINCT host, name, NULL::VARCHAR AS host_id
    FROM (SELECT host, unnest([lower(host), split_part(lower(host), '.', 1)]) AS name
          FROM (SELECT DISTINCT host FROM gpu_hours))
    UNION ALL
    -- a cloud id names its host only for the hours the host had it: `ip-10-0-1-23` is the
    -- name of whichever instance holds that private address. A Kubernetes node's providerID
    -- (`aws:///us-east-1a/i-...`) names it by its last part.
    SELECT DISTINCT host, name, host_id
    FROM (SELECT host, host_id,
                 unnest([lower(host_id), lower(regexp_extract(host_id, '[^/]+$'))]) AS name
          FROM (SELECT DISTINCT host, host_id FROM gpu_hours WHERE host_id IS NOT NULL))
    WHERE name <> ''
),
row_hosts AS (  -- each host once per billing row, however many of its names match; all its
                -- hours where a name matched, else those of the id that did
    SELECT h.row_id, h.charged_at, h.charged_until, k.host,
           CASE WHEN bool_or(k.host_id IS NULL) THEN NULL ELSE min(k.host_id) END AS host_id
    FROM host_names AS h JOIN host_keys AS k ON k.name = h.name
    GROUP BY ALL
),
host_hits AS (
    SELECT r.row_id, g.environment, g.workload, g.gpu_hours
    FROM row_hosts AS r
    JOIN gpu_hours AS g ON g.host = r.host AND g.hour >= r.charged_at AND g.hour < r.charged_until
                       AND (r.host_id IS NULL OR g.host_id = r.host_id)
),
by_host AS (  -- the environment, and the workload, with the most GPU-hours there
    SELECT e.row_id, e.environment, w.model
    FROM (SELECT row_id, arg_max(environment, (hours, environment)) AS environment
          FROM (SELECT row_id, environment, sum(gpu_hours) AS hours FROM host_hits GROUP BY ALL)
          GROUP BY row_id) AS e
    LEFT JOIN (SELECT row_id, arg_max(workload, (hours, workload)) AS model
               FROM (SELECT row_id, workload, sum(gpu_hours) AS hours FROM host_hits
                     WHERE workload IS NOT NULL GROUP BY ALL)
               GROUP BY row_id) AS w USING (row_id)
),
-- a modelled row's model: the workload that held most of its pool's GPU-hours that day
by_pool AS (
    SELECT row_id, arg_max(workload, (hours, workload)) AS model
    FROM (SELECT b.row_id, g.workload, sum(g.gpu_hours) AS hours
          FROM base AS b
          JOIN gpu_hours AS g
            ON b.x_Modelled AND g.environment = b.x_Environment AND g.pool = b.x_Pool
           AND g.hour >= b.charged_at AND g.hour < b.charged_until AND g.workload IS NOT NULL
          GROUP BY ALL)
    GROUP BY row_id
),
-- region -> environment: [[attribution.regions]] in order, then the environments' own
by_region AS (
    SELECT b.row_id, first(r.environment ORDER BY r.ord) AS environment
    FROM base AS b
    JOIN (SELECT unnest(CAST($regions AS STRUCT(ord INTEGER, provider VARCHAR, region VARCHAR,
                                              environment VARCHAR)[]), recursive := true)) AS r
      ON (r.provider = '' OR r.provider = lower(b.ProviderName)
          OR r.provider = CASE b.ProviderName WHEN 'AWS' THEN 'aws' WHEN 'Google Cloud' THEN 'gcp'
                                              WHEN 'Microsoft' THEN 'azure' END)
     AND (r.region = lower(b.RegionId) OR r.region = lower(b.RegionName))
    GROUP BY b.row_id
),
chosen AS (
    SELECT b.*,
           CASE WHEN b.x_Modelled AND b.x_Environment IS NOT NULL THEN 'modelled'
                WHEN k.env_rank = 1 THEN 'tag' WHEN k.env_rank = 2 THEN 'inherited'
                WHEN rr.environment IS NOT NULL THEN 'resource'
                WHEN h.environment IS NOT NULL THEN 'gpu-host'
                WHEN g.environment IS NOT NULL THEN 'region'
                ELSE 'unallocated' END AS environment_how,
           CASE WHEN b.x_Modelled AND b.x_Environment IS NOT NULL THEN b.x_Environment
                ELSE coalesce(k.env_value, rr.environment, h.environment, g.environment)
                END AS env_found,
           CASE WHEN p.model IS NOT NULL THEN 'modelled'
                WHEN k.model_rank = 1 THEN 'tag' WHEN k.model_rank = 2 THEN 'inherited'
                WHEN rr.model IS NOT NULL THEN 'resource'
                WHEN h.model IS NOT NULL THEN 'gpu-host'
                ELSE 'unallocated' END AS model_how,
           coalesce(p.model, k.model_value, rr.model, h.model) AS model_found,
           CASE WHEN k.cc_rank = 1 THEN 'tag' WHEN k.cc_rank = 2 THEN 'inherited'
                WHEN rr.cost_center IS NOT NULL THEN 'resource'
                ELSE 'unallocated' END AS cost_center_how,
           coalesce(k.cc_value, rr.cost_center) AS cost_center_found
    FROM base AS b
    LEFT JOIN keyed AS k USING (row_id)
    LEFT JOIN resource_rules AS rr ON rr.resource_id = b.ResourceId
    LEFT JOIN by_host AS h USING (row_id)
    LEFT JOIN by_pool AS p USING (row_id)
    LEFT JOIN by_region AS g USING (row_id)
)
SELECT ChargePeriodStart, ChargePeriodEnd, BillingPeriodStart, ProviderName,
       BillingAccountId, SubAccountId, ServiceCategory, ServiceName, ChargeCategory, RegionId,
       ResourceId, ResourceName, BillingCurrency, BilledCost, EffectiveCost, ListCost,
       ContractedCost, x_Modelled, x_ReplaceUnit, x_Environment, CommitmentDiscountId,
       CommitmentDiscountType, CommitmentDiscountStatus,
       coalesce(en.name, env_found, 'unallocated') AS environment,
       coalesce(mn.name, model_found, 'unallocated') AS model,
       coalesce(cost_center_found, 'unallocated') AS cost_center,
       -- $hows lists the rules in precedence order, `unallocated` last
       $hows[least(list_position($hows, environment_how), list_position($hows, model_how),
                   list_position($hows, cost_center_how))] AS how,
       environment_how, model_how, cost_center_how,
       row_id  -- the billing row's rowid, for queries that read more of it
FROM chosen
-- a configured environment's or model's own spelling when a value names it in another case
LEFT JOIN (SELECT lower(n) AS key, min(n) AS name FROM unnest($environment_names::VARCHAR[]) AS u(n)
           GROUP BY 1) AS en ON en.key = lower(env_found)
LEFT JOIN (SELECT lower(n) AS key, min(n) AS name FROM unnest($model_names::VARCHAR[]) AS u(n)
           GROUP BY 1) AS mn ON mn.key = lower(model_found)
ORDER BY charged_at, row_id
