-- Delete the partitions of a replace table that the batch holds (NULL partition values match too); returns the deleted rows' times so their hours are refreshed.
DELETE FROM {table} AS t
USING (SELECT DISTINCT {key} FROM _batch_{table}) AS p
WHERE {match}
{returning}
