-- Delete the partitions of a replace table that the batch holds or supersedes (NULL partition values match too); returns the deleted rows' times so their hours are refreshed.
DELETE FROM {table} AS t
USING ({partitions}) AS p
WHERE {match}
{returning}
