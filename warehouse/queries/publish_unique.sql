-- The staged rows of {table} with in-batch duplicates of its key removed, keeping the first by {order} (run only when there are some).
CREATE OR REPLACE TEMP TABLE _batch_{table} AS
SELECT * FROM staged_{table}
QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order}) = 1
