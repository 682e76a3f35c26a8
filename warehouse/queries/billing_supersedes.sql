-- The earlier billing units a batch supersedes beside its own: Azure's FOCUS export (dataset focus) and its cost details (actual, amortized) describe the same charges, so for one provider, billing account and period the later delivery's units replace the other kind's. One row per replaced unit: the input that replaces it, what the load report says, the rows replaced.
CREATE OR REPLACE TEMP TABLE _superseded_billing AS
WITH batch AS (
    SELECT x_ReplaceUnit AS unit, min(_file) AS _file,
           regexp_extract(x_ReplaceUnit, '^(.*)/[^/]*$', 1) AS family,
           regexp_extract(x_ReplaceUnit, '[^/]*$') AS dataset
    FROM _batch_billing
    GROUP BY x_ReplaceUnit
), wanted AS (  -- a focus unit supersedes its cost details, and each of those the focus unit
    SELECT b._file, b.family || '/' || o.other AS unit
    FROM batch AS b, (VALUES ('focus'), ('actual'), ('amortized')) AS o (other)
    WHERE b.dataset IN ('focus', 'actual', 'amortized')
      AND (b.dataset = 'focus') <> (o.other = 'focus')
)
SELECT t.x_ReplaceUnit, min(w._file) AS _file,
       'line items of an earlier delivery of the same charges, replaced: ' || t.x_ReplaceUnit
       || ' (' || coalesce(min(t.x_SourceFormat), 'unknown format') || ', from '
       || coalesce(min(t.x_SourceUri), 'no file')
       || CASE WHEN count(DISTINCT t.x_SourceUri) > 1
               THEN ' and ' || (count(DISTINCT t.x_SourceUri) - 1) || ' more files' ELSE '' END
       || ')' AS replaced,
       count(*) AS n
FROM billing AS t
JOIN wanted AS w ON t.x_ReplaceUnit = w.unit
WHERE t.x_ReplaceUnit NOT IN (SELECT unit FROM batch)
GROUP BY t.x_ReplaceUnit
