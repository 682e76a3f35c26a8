-- The rows of a merge table whose key is new: an anti-join against the rows stored within the batch's time range.
CREATE OR REPLACE TEMP TABLE _fresh_{table} AS
SELECT b.* FROM _batch_{table} b
ANTI JOIN (
    SELECT {key} FROM {table} WHERE {time} BETWEEN $lo AND $hi
) t USING ({key})
