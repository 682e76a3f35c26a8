"""The real `hybridlens` command in a subprocess: help, exit codes, where the warehouse and
the config come from, and the three output formats of `metrics`."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from otlp_factory import BASE_NS, NS, SpanSpec, jsonl, traces_request
from test_boundaries import commands

from hybridlens.output import quarantine_hint, write_csv, write_json
from warehouse.metrics import METRIC_COLUMNS

HOUR_NS = 3600 * NS


def hybridlens(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script with a clean HYBRIDLENS_* environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("HYBRIDLENS_")}
    exe = Path(sys.executable).with_name("hybridlens")
    return subprocess.run(
        [str(exe), *map(str, args)],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two environments, two models, two versions; 14 requests over two hours, 2 errors."""
    folder = tmp_path_factory.mktemp("traces")
    lines = []
    for env, version, model, n, errors in (
        ("prod-eu", "1.0", "llm-a", 4, 1),
        ("prod-eu", "1.1", "llm-a", 3, 0),
        ("prod-eu", "1.1", "llm-b", 2, 0),
        ("edge-1", "1.0", "llm-a", 5, 1),
    ):
        resource = {
            "service.name": "chat",
            "service.version": version,
            "deployment.environment.name": env,
        }
        specs = [
            SpanSpec(
                start_ns=BASE_NS + (i % 2) * HOUR_NS + i * NS,
                duration_ms=100.0 * (i + 1),
                status_code=2 if i < errors else 0,
                attributes={"gen_ai.request.model": model, "gen_ai.usage.input_tokens": 10},
            )
            for i in range(n)
        ]
        lines.append(jsonl(traces_request(resource, specs)))
    path = folder / "spans.jsonl"
    path.write_bytes(b"".join(lines))
    return path


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, traces: Path) -> Path:
    folder = tmp_path_factory.mktemp("loaded")
    done = hybridlens("ingest", "traces", traces, "--warehouse", folder / "w.duckdb", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and "loaded 14 spans" in done.stderr
    return folder / "w.duckdb"


# -- help -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["", *commands(), "ingest"])
def test_help_of_every_command(tmp_path: Path, command: str) -> None:
    done = hybridlens(*command.split(), "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: hybridlens {command}".rstrip())
    assert done.stderr == ""
    if command and command != "ingest":
        assert "--warehouse" in done.stdout and "--config" in done.stdout
    assert not list(tmp_path.iterdir()), "help creates nothing"


def test_version(tmp_path: Path) -> None:
    done = hybridlens("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("hybridlens ")


def test_no_command_is_usage_exit_2(tmp_path: Path) -> None:
    done = hybridlens(cwd=tmp_path)
    assert done.returncode == 2 and "usage: hybridlens" in done.stderr


# -- the warehouse --------------------------------------------------------------------------------
def test_metrics_on_a_missing_warehouse_is_a_sentence(tmp_path: Path) -> None:
    done = hybridlens("metrics", cwd=tmp_path)
    assert done.returncode == 2, "the user's to fix: point at a warehouse or load one"
    assert done.stdout == ""
    assert done.stderr.strip() == (
        "hybridlens: error: no warehouse at hybridlens.duckdb: run `hybridlens ingest traces "
        "PATH` or `hybridlens demo` first, or point --warehouse / HYBRIDLENS_WAREHOUSE at one."
    )
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.iterdir())


def test_warehouse_flag_variable_and_default(tmp_path: Path, loaded: Path) -> None:
    # HYBRIDLENS_WAREHOUSE
    by_env = hybridlens(
        "metrics", "--format", "json", cwd=tmp_path, env={"HYBRIDLENS_WAREHOUSE": str(loaded)}
    )
    assert by_env.returncode == 0, by_env.stderr
    # --warehouse beats the variable
    by_flag = hybridlens(
        "metrics",
        "--format",
        "json",
        "--warehouse",
        loaded,
        cwd=tmp_path,
        env={"HYBRIDLENS_WAREHOUSE": str(tmp_path / "missing.duckdb")},
    )
    assert by_flag.returncode == 0, by_flag.stderr
    assert json.loads(by_flag.stdout) == json.loads(by_env.stdout)
    # the variable is honoured when it points at nothing: a sentence naming that path
    missing = hybridlens(
        "metrics", cwd=tmp_path, env={"HYBRIDLENS_WAREHOUSE": str(tmp_path / "missing.duckdb")}
    )
    assert (
        missing.returncode == 2
        and f"no warehouse at {tmp_path / 'missing.duckdb'}" in missing.stderr
    )
    # default: ./hybridlens.duckdb
    (tmp_path / "hybridlens.duckdb").write_bytes(loaded.read_bytes())
    default = hybridlens("metrics", "--format", "json", cwd=tmp_path)
    assert default.returncode == 0, default.stderr
    assert json.loads(default.stdout) == json.loads(by_env.stdout)


def test_ingest_honours_the_variable(tmp_path: Path, traces: Path) -> None:
    target = tmp_path / "from-env.duckdb"
    done = hybridlens(
        "ingest", "traces", traces, cwd=tmp_path, env={"HYBRIDLENS_WAREHOUSE": str(target)}
    )
    assert done.returncode == 0, done.stderr
    assert target.exists() and not (tmp_path / "hybridlens.duckdb").exists()


def test_a_newer_warehouse_is_exit_1_with_a_sentence(tmp_path: Path, loaded: Path) -> None:
    copy = tmp_path / "newer.duckdb"
    copy.write_bytes(loaded.read_bytes())
    con = duckdb.connect(str(copy))
    con.execute("UPDATE _meta SET value = '999' WHERE key = 'schema_version'")
    con.close()
    done = hybridlens("metrics", "--warehouse", copy, cwd=tmp_path)
    assert done.returncode == 1
    assert "schema version 999" in done.stderr and "upgrade hybridlens" in done.stderr
    assert "Traceback" not in done.stderr


# -- formats --------------------------------------------------------------------------------------
def test_json_is_only_json_with_every_key(tmp_path: Path, loaded: Path) -> None:
    done = hybridlens("metrics", "--warehouse", loaded, "--format", "json", "-v", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)  # -v logs go to stderr, never into the JSON
    assert [(r["environment"], r["model"]) for r in rows] == [
        ("edge-1", "llm-a"),
        ("prod-eu", "llm-a"),
        ("prod-eu", "llm-b"),
    ]
    for row in rows:
        assert list(row) == ["environment", "model", *METRIC_COLUMNS]
    by = {(r["environment"], r["model"]): r for r in rows}
    assert by[("prod-eu", "llm-a")]["requests"] == 7 and by[("prod-eu", "llm-a")]["errors"] == 1
    assert by[("edge-1", "llm-a")]["error_rate"] == pytest.approx(0.2)
    assert by[("edge-1", "llm-a")]["availability"] == pytest.approx(0.8)
    assert by[("prod-eu", "llm-b")]["accuracy"] is None
    assert by[("prod-eu", "llm-b")]["input_tokens"] == 20


def test_csv_has_the_same_figures(tmp_path: Path, loaded: Path) -> None:
    as_json = json.loads(
        hybridlens("metrics", "--warehouse", loaded, "--format", "json", cwd=tmp_path).stdout
    )
    done = hybridlens("metrics", "--warehouse", loaded, "--format", "csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert len(rows) == len(as_json)
    for c, j in zip(rows, as_json, strict=True):
        assert list(c) == list(j)
        for key, value in j.items():
            if value is None:
                assert c[key] == ""
            elif isinstance(value, float):
                assert float(c[key]) == pytest.approx(value)
            else:
                assert c[key] == str(value)


def test_table_is_for_people(tmp_path: Path, loaded: Path) -> None:
    done = hybridlens("metrics", "--warehouse", loaded, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["environment", "model", *METRIC_COLUMNS]
    assert len(lines) == 4
    assert lines[1].split()[:4] == ["edge-1", "llm-a", "5", "1"]
    assert " - " in lines[1] + " ", "nulls show as -"
    empty = hybridlens(
        "metrics", "--warehouse", loaded, "--from", "2020-01-01", "--to", "2020-01-02", cwd=tmp_path
    )
    assert empty.returncode == 0 and empty.stdout == ""
    assert "no requests in the selected range" in empty.stderr


def test_by_version_and_filters(tmp_path: Path, loaded: Path) -> None:
    done = hybridlens(
        "metrics",
        "--warehouse",
        loaded,
        "--format",
        "json",
        "--by",
        "environment,model,version",
        "--environment",
        "prod-eu",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [(r["model"], r["version"], r["requests"]) for r in rows] == [
        ("llm-a", "1.0", 4),
        ("llm-a", "1.1", 3),
        ("llm-b", "1.1", 2),
    ]
    one = json.loads(
        hybridlens(
            "metrics",
            "--warehouse",
            loaded,
            "--format",
            "json",
            "--by",
            "version",
            "--model",
            "llm-b",
            cwd=tmp_path,
        ).stdout
    )
    assert one == [{**one[0], "version": "1.1", "requests": 2}]
    assert "environment" not in one[0] and one[0]["uptime"] is None


def test_from_and_to_are_hour_filters(tmp_path: Path, loaded: Path) -> None:
    first_hour = json.loads(
        hybridlens(
            "metrics",
            "--warehouse",
            loaded,
            "--format",
            "json",
            "--by",
            "environment",
            "--to",
            "2026-10-26T08:00:00Z",
            cwd=tmp_path,
        ).stdout
    )
    later = json.loads(
        hybridlens(
            "metrics",
            "--warehouse",
            loaded,
            "--format",
            "json",
            "--by",
            "environment",
            "--from",
            "2026-10-26T08:00:00+00:00",
            cwd=tmp_path,
        ).stdout
    )
    # BASE_NS is 2026-10-26T07:33:20Z: even-numbered requests in hour 07, odd ones in 08
    assert {r["environment"]: r["requests"] for r in first_hour} == {"edge-1": 3, "prod-eu": 5}
    assert {r["environment"]: r["requests"] for r in later} == {"edge-1": 2, "prod-eu": 4}


def test_a_name_that_matches_nothing_is_noted(tmp_path: Path, loaded: Path) -> None:
    """A typo in --environment or --model is told apart from a quiet range: the answer is
    still exit 0 (an empty range is no error), with a note naming what is known."""
    done = hybridlens(
        "metrics", "--warehouse", loaded, "--format", "json", "--environment", "prod-ue",
        "--model", "llm-a", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0 and json.loads(done.stdout) == []
    assert "no environment named 'prod-ue' in the warehouse or the config" in done.stderr
    assert "(known: edge-1, prod-eu)" in done.stderr
    assert "model" not in done.stderr  # llm-a is known: only the environment is a typo
    fleet = hybridlens(
        "metrics", "--warehouse", loaded, "--by", "none", "--format", "json", "--model",
        "llm-b", cwd=tmp_path,
    )  # fmt: skip
    assert fleet.returncode == 0 and json.loads(fleet.stdout)[0]["requests"] == 2
    assert fleet.stderr == ""
    typo = hybridlens(
        "metrics", "--warehouse", loaded, "--by", "none", "--model", "llm-c", cwd=tmp_path
    )
    assert "no model named 'llm-c'" in typo.stderr and "(known: llm-a, llm-b)" in typo.stderr


# -- usage and config errors: exit 2 --------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--by", "environment,region"), "cannot group by region"),
        (("--by", ","), "--by needs at least one of"),
        (("--format", "xml"), "invalid choice: 'xml'"),
        (("--from", "last tuesday"), "is not an ISO 8601 date"),
        (("--from", "2026-10-27", "--to", "2026-10-26"), "is not before --to"),
        (("--from", "2026-10-26", "--to", "2026-10-26"), "the range is empty"),
    ],
)
def test_bad_usage_is_exit_2(
    tmp_path: Path, loaded: Path, args: tuple[str, ...], says: str
) -> None:
    done = hybridlens("metrics", "--warehouse", loaded, *args, cwd=tmp_path)
    assert done.returncode == 2
    assert says in done.stderr and done.stdout == ""
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("via", ["--config", "HYBRIDLENS_CONFIG", "./hybridlens.toml"])
def test_a_bad_config_is_exit_2_naming_key_and_file(tmp_path: Path, loaded: Path, via: str) -> None:
    bad = tmp_path / ("hybridlens.toml" if via.startswith("./") else "fleet.toml")
    bad.write_text('[[environments]]\nname = "x"\nslo = { availabilty = 0.99 }\n', encoding="utf-8")
    args: list[str | Path] = ["metrics", "--warehouse", loaded]
    env = {}
    if via == "--config":
        args += ["--config", bad]
    elif via == "HYBRIDLENS_CONFIG":
        env["HYBRIDLENS_CONFIG"] = str(bad)
    done = hybridlens(*args, cwd=tmp_path, env=env)
    assert done.returncode == 2
    shown = "hybridlens.toml" if via.startswith("./") else str(bad)
    assert done.stderr.startswith(f"hybridlens: error: {shown}: environments[0].slo.availabilty")
    assert "unknown key" in done.stderr and "Traceback" not in done.stderr
    # the same for a load, which must not load anything with a config it cannot read
    ingest = hybridlens(
        "ingest",
        "traces",
        loaded,
        "--warehouse",
        tmp_path / "new.duckdb",
        *(args[3:]),
        cwd=tmp_path,
        env=env,
    )
    assert ingest.returncode == 2 and not (tmp_path / "new.duckdb").exists()


def test_a_missing_config_file_is_exit_2(tmp_path: Path, loaded: Path) -> None:
    done = hybridlens(
        "metrics", "--warehouse", loaded, "--config", tmp_path / "nope.toml", cwd=tmp_path
    )
    assert done.returncode == 2 and "nope.toml does not exist" in done.stderr


# -- the output is Polars's, without Polars --------------------------------------------------------
# `metrics` prints plain rows through hybridlens.output so it need not import Polars; these
# prove the bytes are the ones Polars's writers produce for the same frame.
NAMES = st.text(st.characters(codec="utf-8"), max_size=12)
FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=1e-8, max_value=1e-3),  # small error rates: where notations differ
    st.builds(lambda m, e: m * 10.0**e, st.floats(0.5, 10), st.integers(-20, 20)),
)


def _frame_and_rows(data: list[tuple[str | None, float | None, int | None]]) -> Any:
    import polars as pl

    schema = {"name": pl.String, "ratio": pl.Float64, "tokens": pl.Int128}
    frame = pl.DataFrame(data, schema=schema, orient="row")
    rows = [dict(zip(schema, row, strict=True)) for row in data]
    return frame, list(schema), rows


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.none() | NAMES,
            st.none() | FLOATS,
            st.none() | st.integers(-(2**126), 2**126),
        ),
        max_size=6,
    )
)
def test_json_and_csv_writers_write_what_polars_writes(
    data: list[tuple[str | None, float | None, int | None]],
) -> None:
    frame, columns, rows = _frame_and_rows(data)
    assert write_json(columns, rows) == frame.write_json()
    assert write_csv(columns, rows) == frame.write_csv()


@pytest.mark.parametrize(
    "value",
    [0.00001, 1.5e-7, -1.234567e-05, 1e16, 1e15, 1.2345678901234568e16, -0.0, 5e-324, 1e308],
)
def test_float_notation_switches_where_polars_switches(value: float) -> None:
    frame, columns, rows = _frame_and_rows([("x", value, 1)])
    assert write_json(columns, rows) == frame.write_json()
    assert write_csv(columns, rows) == frame.write_csv()


def test_hostile_names_are_escaped_and_quoted_like_polars() -> None:
    names = ["a,b", 'q"x', "line\nnext", "cr\rx", "", " lead", "é\u2028", "\x00\x1f\x7f", "\\"]
    frame, columns, rows = _frame_and_rows([(n, 0.5, 1) for n in names])
    assert write_json(columns, rows) == frame.write_json()
    assert write_csv(columns, rows) == frame.write_csv()
    assert [r["name"] for r in json.loads(write_json(columns, rows))] == names
    assert [r["name"] for r in csv.DictReader(io.StringIO(write_csv(columns, rows)))] == names


def test_metrics_imports_no_polars_pyarrow_streamlit_or_plotly(
    tmp_path: Path, loaded: Path
) -> None:
    """Half a second of the command's time was importing these; only `metrics`'s own
    rows are printed, so none of them is needed."""
    probe = (
        "import sys\n"
        "from hybridlens.cli import main\n"
        "status = main(sys.argv[1:])\n"
        "heavy = {'polars', 'pyarrow', 'streamlit', 'plotly', 'pandas', 'numpy', 'scipy'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy), status, file=sys.stderr)\n"
    )
    for fmt in ("json", "csv", "table"):
        done = subprocess.run(
            [sys.executable, "-c", probe, "metrics", "--warehouse", str(loaded), "--format", fmt],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.stderr.strip().splitlines()[-1] == "[] 0", done.stderr
        assert done.stdout


def test_an_ingest_process_loads_without_importing_pandas_or_the_other_collectors(
    tmp_path: Path, traces: Path
) -> None:
    """The console script's ingest tells pyarrow pandas is absent (its first conversion
    imported it: 0.5 s) and imports only the collector it runs; `main` called from Python
    leaves pyarrow as it was, and pandas stays importable afterwards."""
    probe = (
        "import sys\n"
        "from hybridlens.cli import entry\n"
        "sys.argv = ['hybridlens', *sys.argv[1:]]\n"
        "try:\n"
        "    entry()\n"
        "except SystemExit as done:\n"
        "    loaded = {m.split('.')[0] for m in sys.modules} | set(sys.modules)\n"
        "    seen = sorted(loaded & {'pandas', 'ingest.billing', 'ingest.gpu.collector'})\n"
        "    import pandas, pyarrow as pa\n"
        "    print(seen, done.code, pa.array(['x']).to_pylist(), file=sys.stderr)\n"
    )
    warehouse = tmp_path / "w.duckdb"
    done = subprocess.run(
        [sys.executable, "-c", probe, "ingest", "traces", str(traces), "--warehouse", warehouse],
        cwd=tmp_path, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.stderr.strip().splitlines()[-1] == "[] 0 ['x']", done.stderr
    fleet = hybridlens("metrics", "--warehouse", warehouse, "--by", "none", "--format", "json",
                       cwd=tmp_path)  # fmt: skip
    assert [row["requests"] for row in json.loads(fleet.stdout)] == [14], fleet.stderr


def test_every_format_prints_exactly_what_the_polars_frame_printed(
    tmp_path: Path, loaded: Path
) -> None:
    """The command's bytes against the frame `warehouse.metrics.metrics` returns (the one
    pages use), written by Polars as the command did before it printed plain rows."""
    from warehouse.config import Config
    from warehouse.db import Warehouse
    from warehouse.metrics import metrics

    for by in ("environment,model", "environment,model,version", "none", "model"):
        want = metrics(Warehouse(loaded), Config(), by=by.split(","))
        got_json = hybridlens(
            "metrics", "--warehouse", loaded, "--by", by, "--format", "json", cwd=tmp_path
        )
        got_csv = hybridlens(
            "metrics", "--warehouse", loaded, "--by", by, "--format", "csv", cwd=tmp_path
        )
        assert got_json.stdout == want.write_json() + "\n"
        assert got_csv.stdout == want.write_csv()


def test_the_quarantine_line_counts_in_english() -> None:
    assert quarantine_hint(1, "w.duckdb").startswith("1 bad record was quarantined; see them")
    assert quarantine_hint(1, "w.duckdb", "rows").startswith("1 bad row was quarantined")
    assert quarantine_hint(2_500, "w.duckdb").startswith("2,500 bad records were quarantined")
