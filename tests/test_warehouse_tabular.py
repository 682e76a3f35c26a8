"""`warehouse.tabular`: the typed reader every billing format stands on. The formats' own
tests cover FOCUS files; these cover what a format that is not FOCUS relies on: columns
derived in SQL from the typed ones, nested Parquet columns read as JSON text, members of
nested columns checked as columns, and JSON lines files (bad lines named by line)."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warehouse.tabular import Column, Derived, Kind, TabularError, header, kind_of, read
from warehouse.tabular_files import q, row_json, sql_names


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


# -- JSON lines (`bq extract --destination_format NEWLINE_DELIMITED_JSON`) ------------------------
def _jsonl(path: Path, *lines: object, end: str = "\n") -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + end)
    return path


def test_json_lines_are_read_as_text_with_nested_values_as_json(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "export.json",
        {
            "service": {"id": "6F81", "description": "Compute Engine"},
            "cost": 1.385e-05,
            "credits": [{"amount": -0.25}],
            "labels": [],
        },
        {"cost": "0.1000000000000000055511151231257827", "late": True},  # a null field left out
    )
    assert header(path) == ("service", "cost", "credits", "labels", "late")
    typed = read(
        path,
        [
            Column("ServiceName", Kind.TEXT, ("service",), path="$.description"),
            Column("cost", Kind.DECIMAL, ("cost",)),
            Column("credits", Kind.JSON_ARRAY, ("credits",)),
            Column("late", Kind.TEXT, ("late",)),
        ],
        raw="raw",
    )
    assert typed.problems == [] and typed.malformed == []
    assert typed.rows.to_pylist() == [
        {"ServiceName": "Compute Engine", "cost": Decimal("0.00001385"),
         "credits": '[{"amount":-0.25}]', "late": None, "raw": typed.rows["raw"][0].as_py(),
         "_row": 1},
        {"ServiceName": None, "cost": Decimal("0.100000000000"), "credits": None,
         "late": "true", "raw": typed.rows["raw"][1].as_py(), "_row": 2},
    ]  # fmt: skip
    assert json.loads(typed.rows["raw"][0].as_py())["labels"] == "[]"


def test_a_member_of_a_nested_column_that_does_not_parse_is_named_by_its_path(
    tmp_path: Path,
) -> None:
    path = _jsonl(
        tmp_path / "export.jsonl",
        {"usage": {"amount": "lots"}, "labels": {"team": "x"}},
        {"usage": {"amount": 2}, "labels": [{"key": "team", "value": "x"}]},
    )
    typed = read(
        path,
        [
            Column("amount", Kind.DECIMAL, ("usage",), path="$.amount"),
            Column("labels", Kind.JSON_ARRAY, ("labels",)),
        ],
    )
    assert [(p.row, p.column, p.value, p.why) for p in typed.problems] == [
        (1, "labels", '{"team":"x"}', "is not a JSON array"),
        (1, "usage.amount", "lots", "is not a number"),
    ]
    assert typed.rows["amount"].to_pylist() == [Decimal(2)]


def test_a_line_that_is_not_a_json_object_is_named_by_its_line(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_bytes(
        b'{"a": "1"}\n'
        b"not json\n"
        b"\n"  # a blank line is no row, and nothing wrong
        b'["an", "array"]\n'
        b'{"a": "\xff"}\n'  # not UTF-8
        b'{"a": 1}\x1f{}\n'  # a control character between two objects
        b'{"a": "6"}\n'
    )
    typed = read(path, [Column("a", Kind.DECIMAL, ("a",))])
    assert [(m.line, m.why) for m in typed.malformed][:2] == [
        (2, "not valid JSON"),
        (4, "not a JSON object"),
    ]
    assert [m.line for m in typed.malformed] == [2, 4, 5, 6]
    assert typed.truncated is None
    assert typed.rows["a"].to_pylist() == [Decimal(1), Decimal(6)]
    assert typed.rows["_row"].to_pylist() == [1, 2]


def test_a_json_lines_file_cut_inside_its_last_line_is_truncated(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "export.jsonl", {"a": "1"}, '{"a": "2', end="")
    typed = read(path, [Column("a", Kind.TEXT, ("a",))])
    assert typed.truncated and "ends inside a row at line 2" in typed.truncated
    # the same bad line with its line break is a bad line, not a cut
    _jsonl(path, {"a": "1"}, '{"a": "2')
    typed = read(path, [Column("a", Kind.TEXT, ("a",))])
    assert typed.truncated is None and [m.line for m in typed.malformed] == [2]


def test_gzip_json_lines_and_files_without_an_object(tmp_path: Path) -> None:
    plain = _jsonl(tmp_path / "a.jsonl", {"a": "1"}, {"b": "2"})
    packed = tmp_path / "a.json.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert kind_of(packed.read_bytes()[:8]) == "gzip"
    typed = read(packed, [Column("a", Kind.TEXT, ("a",)), Column("b", Kind.TEXT, ("b",))])
    assert typed.rows.to_pylist() == [
        {"a": "1", "b": None, "_row": 1},
        {"a": None, "b": "2", "_row": 2},
    ]
    (tmp_path / "bad.jsonl").write_text("{ nothing here\n")
    with pytest.raises(TabularError, match="has no line that is a JSON object"):
        header(tmp_path / "bad.jsonl")


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


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=12), min_size=1, max_size=6), st.text(max_size=8))
def test_the_raw_row_is_what_duckdb_to_json_writes(names: list[str], value: str) -> None:
    """row_json writes each key as a literal made in Python: it must be the JSON object
    DuckDB's own to_json makes of the same row, for any column name (quotes, controls,
    non-ASCII, names that differ only in case)."""
    names = [n.replace("\x00", "") for n in names]  # a CSV header holds no NUL
    ids = sql_names(names)
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE _src AS SELECT " + ", ".join(f"$v::VARCHAR AS {q(i)}" for i in ids),
        {"v": value},
    )
    (made,) = con.execute(f"SELECT {row_json(names, ids)} FROM _src").fetchone()
    (keys, text) = con.execute(
        "SELECT list_transform($n::VARCHAR[], lambda x: to_json(x)::VARCHAR), "
        "to_json($v::VARCHAR)::VARCHAR",
        {"n": names, "v": value},
    ).fetchone()
    assert made == "{" + ",".join(f"{k}:{text}" for k in keys) + "}"
