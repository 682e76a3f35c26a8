"""`warehouse.tabular`: the typed reader every billing format stands on. The formats' own
tests cover FOCUS files; these cover what a format that is not FOCUS relies on: columns
derived in SQL from the typed ones, and nested Parquet columns read as JSON text."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.tabular import Column, Derived, Kind, read


def test_derived_columns_are_computed_from_the_typed_ones(tmp_path: Path) -> None:
    path = tmp_path / "cur.csv"
    path.write_text(
        "lineItem/LineItemType,lineItem/UnblendedCost\n"
        "Usage,1.25\n"
        "Credit,-0.5\n"
        "Usage,not-a-number\n"
    )
    typed = read(
        path,
        [
            Column("type", Kind.TEXT, ("lineItem/LineItemType",)),
            Column("cost", Kind.DECIMAL, ("lineItem/UnblendedCost",)),
        ],
        raw="raw",
        derive=[
            Derived("ChargeCategory", "CASE type WHEN 'Credit' THEN 'Credit' ELSE type END"),
            Derived("BilledCost", "cost"),
            Derived("Doubled", "cost * 2"),
        ],
    )
    assert typed.rows.column_names == ["ChargeCategory", "BilledCost", "Doubled", "raw", "_row"]
    assert typed.rows["ChargeCategory"].to_pylist() == ["Usage", "Credit"]
    assert typed.rows["BilledCost"].to_pylist() == [Decimal("1.25"), Decimal("-0.5")]
    assert typed.rows["Doubled"].to_pylist() == [Decimal("2.5"), Decimal("-1.0")]
    assert typed.rows["_row"].to_pylist() == [1, 2]
    assert json.loads(typed.rows["raw"][0].as_py())["lineItem/UnblendedCost"] == "1.25"
    # the bad value is still named by its input column, and its row left out
    assert [(p.row, p.column, p.value) for p in typed.problems] == [
        (3, "lineItem/UnblendedCost", "not-a-number")
    ]


def test_nested_parquet_columns_are_read_as_json_text(tmp_path: Path) -> None:
    schema = pa.schema(
        [
            ("service", pa.struct([("id", pa.string()), ("description", pa.string())])),
            ("resource_tags", pa.map_(pa.string(), pa.string())),
            ("credits", pa.list_(pa.struct([("name", pa.string()), ("amount", pa.float64())]))),
            ("cost", pa.float64()),
        ]
    )
    table = pa.table(
        {
            "service": [{"id": "6F81-5844-456A", "description": "Compute Engine"}],
            "resource_tags": [[("user:team", "search")]],
            "credits": [[{"name": "Sustained use", "amount": -0.25}]],
            "cost": [1.5],
        },
        schema=schema,
    )
    path = tmp_path / "export.parquet"
    pq.write_table(table, path)
    typed = read(
        path,
        [
            Column("service", Kind.JSON, ("service",)),
            Column("tags", Kind.JSON, ("resource_tags",)),
            Column("credits", Kind.TEXT, ("credits",)),
            Column("cost", Kind.DECIMAL, ("cost",)),
        ],
        derive=[
            Derived("ServiceName", "json_extract_string(service, '$.description')"),
            Derived("team", "json_extract_string(tags, '$.\"user:team\"')"),
            Derived("credit", "json_extract(credits, '$[0].amount')::DECIMAL(38, 12)"),
            Derived("cost", "cost"),
        ],
    )
    assert typed.problems == []
    row = typed.rows.to_pylist()[0]
    assert row["ServiceName"] == "Compute Engine"
    assert row["team"] == "search"
    assert row["credit"] == Decimal("-0.25")
    assert row["cost"] == Decimal("1.5")


def test_day_columns_read_us_and_iso_dates_and_name_the_rest(tmp_path: Path) -> None:
    """Azure's cost details write days as M/D/YYYY (newer exports ISO); '9/2/23' would be a
    date in the year 9 to DuckDB's own cast, so only these two shapes are days."""
    path = tmp_path / "days.csv"
    good = ["09/30/2023", "9/2/2023", "2023-09-01", "2023-09-01T00:00:00.0000000Z"]
    bad = ["02/30/2023", "13/01/2023", "9/2/23", "2023/09/01", "yesterday"]
    path.write_text("Date\n" + "\n".join(good + bad) + "\n")
    typed = read(path, [Column("day", Kind.DAY, ("Date",))])
    assert [d.date().isoformat() for d in typed.rows["day"].to_pylist()] == [
        "2023-09-30", "2023-09-02", "2023-09-01", "2023-09-01",
    ]  # fmt: skip
    assert {d.utcoffset() for d in typed.rows["day"].to_pylist()} == {timedelta(0)}
    assert [(p.row, p.value, p.why) for p in typed.problems] == [
        (5 + i, v, "is not a date (M/D/YYYY or YYYY-MM-DD)") for i, v in enumerate(bad)
    ]
