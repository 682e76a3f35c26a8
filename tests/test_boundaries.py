"""Meta-tests: the layout DESIGN.md draws holds, and the docs keep up with the code.

In the spirit of datasette's tests/test_docs.py: they fail when a package imports across
a boundary, when a `.sql` file is orphaned or undescribed, when a table, a config key or a
command is added without its documentation.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from hybridlens.cli import build_parser
from warehouse.config import key_paths
from warehouse.db import Warehouse, migrations, read_sql

ROOT = Path(__file__).resolve().parents[1]
OURS = ("warehouse", "ingest", "forecasting", "dashboard", "hybridlens", "sample_data")
# package -> the packages of ours it may import (DESIGN.md, "Layout")
ALLOWED = {
    "warehouse": set(),
    "ingest": {"warehouse"},
    "forecasting": {"warehouse"},
    "dashboard": {"warehouse", "forecasting"},
    "sample_data": set(),
    "hybridlens": set(OURS),
}
QUERIES = ROOT / "warehouse" / "queries"
SCHEMA_DOC = ROOT / "docs" / "schema.md"
CONFIG_DOC = ROOT / "docs" / "config.md"
README = ROOT / "README.md"


def package_files(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)


def imports(path: Path) -> Iterator[tuple[str, int]]:
    """(top-level module, line) of every import in a file, relative ones resolved to ours."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside its own package
                yield path.relative_to(ROOT).parts[0], node.lineno
            elif node.module:
                yield node.module.split(".")[0], node.lineno
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.args[0].value.split(".")[0], node.lineno


# -- import boundaries ----------------------------------------------------------------------------
def test_only_the_warehouse_imports_duckdb() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for package in OURS
        if package != "warehouse"
        for path in package_files(package)
        for module, line in imports(path)
        if module == "duckdb"
    ]
    assert offenders == [], "only warehouse/ may import duckdb (DESIGN.md, Warehouse rules)"
    assert any(m == "duckdb" for p in package_files("warehouse") for m, _ in imports(p))


def test_only_the_dashboard_imports_streamlit() -> None:
    """A page framework inside the warehouse or the CLI would load it for every command."""
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for package in OURS
        if package != "dashboard"
        for path in package_files(package)
        for module, line in imports(path)
        if module == "streamlit"
    ]
    assert offenders == [], "only dashboard/ may import streamlit (the preamble's house rules)"
    assert any(m == "streamlit" for p in package_files("dashboard") for m, _ in imports(p))


def test_the_scan_sees_imports_inside_functions(tmp_path: Path) -> None:
    """The boundary scans walk the whole tree, so a lazy import cannot slip past them."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "def page():\n    import streamlit as st\n"
        "    from duckdb import connect\n"
        "    importlib.import_module('polars.io')\n",
        encoding="utf-8",
    )
    assert sorted(m for m, _ in imports(probe)) == ["duckdb", "polars", "streamlit"]


@pytest.mark.parametrize("package", OURS)
def test_imports_flow_one_way(package: str) -> None:
    files = package_files(package)
    assert files, f"{package}/ has no Python files: the layout of DESIGN.md is broken"
    allowed = ALLOWED[package] | {package}
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in files
        for module, line in imports(path)
        if module in OURS and module not in allowed
    ]
    assert offenders == [], f"{package}/ may import only {sorted(allowed)} of ours"


# -- SQL files ------------------------------------------------------------------------------------
def sql_files() -> list[Path]:
    return sorted(QUERIES.glob("*.sql"))


def package_source() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for pkg in OURS for p in package_files(pkg))


def string_constants() -> set[str]:
    found: set[str] = set()
    for package in OURS:
        for path in package_files(package):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            found.update(
                n.value
                for n in ast.walk(tree)
                if isinstance(n, ast.Constant) and isinstance(n.value, str)
            )
    return found


def test_every_query_file_is_used_by_name() -> None:
    """A query is named as a string in package code (read_sql("x"), query("x"), ...)."""
    assert sql_files(), "warehouse/queries/ is empty"
    constants = string_constants()
    source = package_source()
    unused = [
        p.name
        for p in sql_files()
        if p.stem not in constants and f'"{p.stem}"' not in source and f"'{p.stem}'" not in source
    ]
    assert unused == [], "orphaned .sql files: use them or delete them"


@pytest.mark.parametrize(
    "path",
    [*sql_files(), *(ROOT / "warehouse" / "migrations").glob("*.sql")],
    ids=lambda p: p.name,
)
def test_every_sql_file_starts_with_a_description(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("-- ") and len(first) > 20, (
        f"{path.name}: the first line must be a `-- ` comment saying what the query does"
    )


def test_every_read_query_binds_against_a_fresh_warehouse(tmp_path: Path) -> None:
    """The read-side queries EXPLAIN on the current schema with every parameter bound."""
    wh = Warehouse(tmp_path / "w.duckdb")
    with wh.write():
        pass
    explained = 0
    with wh.read() as con:
        for path in sql_files():
            text = read_sql(path.stem)
            body = "\n".join(
                line for line in text.splitlines() if not line.lstrip().startswith("--")
            ).lstrip()
            if not re.match(r"(?i)(select|with)\b", body) or ";" in body.rstrip().rstrip(";"):
                continue  # a write or a multi-statement script: run by the loader's tests
            sql = (
                text.replace("{uptime_minutes}", read_sql("uptime_minutes"))
                .replace(  # spliced into the daily unit costs, grouped by day too
                    "{metrics_cost}",
                    read_sql("metrics_cost").replace("{group}", "day, environment, model"),
                )
                .replace("{group}", "environment, model")
                .replace("{measure}", "EffectiveCost")
                .replace("{columns}", "ProviderName AS provider")
                .replace("{ledger}", "billing")
            )
            sql = sql.replace("{allocation_rows}", read_sql("allocation_rows"))
            sql = sql.replace("{billing_attribution}", read_sql("billing_attribution"))
            sql = sql.replace("{rates}", read_sql("money_rates"))
            sql = sql.replace("{billed_days}", read_sql("cost_billed_gpu_days"))
            params = dict.fromkeys(set(re.findall(r"\$([a-z_][a-z0-9_]*)", sql)))
            for name in params:
                if name.startswith(("slo_", "eval_", "minute_")) or name in (
                    "environments",
                    "models",
                    "versions",
                ):
                    params[name] = []
                elif name == "gamma":
                    params[name] = 1.01
                elif name == "grain":
                    params[name] = "hour"
            try:
                con.execute(f"EXPLAIN {sql}", params)
            except Exception as exc:
                pytest.fail(f"{path.name} does not bind: {exc}")
            explained += 1
    assert explained >= 8, explained


# -- documentation --------------------------------------------------------------------------------
def migration_tables() -> dict[str, list[str]]:
    """table -> its columns, from the CREATE TABLE statements of every migration."""
    tables: dict[str, list[str]] = {}
    for _, _, sql in migrations():
        for match in re.finditer(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\);", sql, flags=re.S):
            columns = []
            for line in match.group(2).splitlines():
                line = line.strip()
                if line and not line.startswith("--"):
                    columns.append(line.split()[0])
            tables[match.group(1)] = columns
    return tables


def test_every_table_and_column_is_documented() -> None:
    tables = migration_tables()
    assert {"spans", "evaluations", "rollup_hourly", "ingest_log"} <= set(tables)
    doc = SCHEMA_DOC.read_text(encoding="utf-8")
    sections = re.split(r"^### ", doc, flags=re.M)
    missing = []
    for table, columns in tables.items():
        section = next((s for s in sections if s.startswith(f"`{table}`")), None)
        if section is None:
            missing.append(f"table {table} (a `### \\`{table}\\`` section)")
            continue
        missing += [f"{table}.{c}" for c in columns if f"`{c}`" not in section]
    assert missing == [], f"document these in {SCHEMA_DOC.relative_to(ROOT)}"


def config_keys() -> set[str]:
    """Every key warehouse/config.py accepts, as a path: `environments[].slo.availability`.

    Read from the declarations the parser itself reads (warehouse/config_schema.py).
    """
    return set(key_paths())


def test_config_keys_are_found() -> None:
    """A guard on the AST walk above: it sees the keys we know of."""
    keys = config_keys()
    assert {
        "environments",
        "environments[].slo.down_error_ratio",
        "environments[].gpu_pools[].count",
        "models[].model_attribute",
        "ingest.redaction",
        "dashboard.trace_link",
    } <= keys
    assert len(keys) >= 30


def test_every_config_key_is_documented() -> None:
    doc = CONFIG_DOC.read_text(encoding="utf-8")
    missing = sorted(k for k in config_keys() if f"`{k}`" not in doc)
    assert missing == [], f"document these keys in {CONFIG_DOC.relative_to(ROOT)}"


def test_the_config_doc_names_no_key_that_is_not_accepted() -> None:
    doc = CONFIG_DOC.read_text(encoding="utf-8")
    keys = config_keys()
    sections = "|".join(k for k in keys if "." not in k and "[" not in k)
    named = set(re.findall(rf"`((?:{sections})[a-z_.\[\]]*)`", doc))
    assert sorted(named - keys) == [], "docs/config.md names keys the parser rejects"


def commands() -> list[str]:
    """Every command, with its subcommands: ['demo', 'ingest traces', ...]."""
    found = []
    parser = build_parser()
    assert parser._subparsers is not None
    for action in parser._subparsers._group_actions:
        for name, sub in action.choices.items():  # type: ignore[union-attr]
            nested = [a for a in sub._actions if a.__class__.__name__ == "_SubParsersAction"]
            if nested:
                found += [f"{name} {n}" for n in nested[0].choices or ()]
            else:
                found.append(name)
    return found


def test_readme_mentions_every_command() -> None:
    text = README.read_text(encoding="utf-8")
    cmds = commands()
    assert {"metrics", "ingest traces", "demo"} <= set(cmds)
    missing = [c for c in cmds if f"hybridlens {c}" not in text]
    assert missing == [], "README.md does not mention these commands"


def test_the_docs_sql_examples_run(tmp_path: Path) -> None:
    """Every ```sql block of docs/schema.md runs on a fresh warehouse."""
    blocks = re.findall(r"```sql\n(.*?)```", SCHEMA_DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 3
    wh = Warehouse(tmp_path / "w.duckdb")
    with wh.write():
        pass
    with wh.read() as con:
        for block in blocks:
            for statement in (s for s in block.split(";") if s.strip()):
                con.execute(statement).fetchall()


def test_the_example_config_is_valid_toml() -> None:
    """Parsed for real in test_warehouse_config.py; here only that it exists and is TOML."""
    example = ROOT / "examples" / "hybridlens.toml"
    assert tomllib.loads(example.read_text(encoding="utf-8"))
