"""The DuckDB warehouse: schema, migrations, the lock, the write path and read queries.

The only package that imports duckdb; everything else asks it for Polars frames.
"""
