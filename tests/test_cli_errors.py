"""How the command line fails: the user's errors are exit 2 with a sentence, ours are
exit 70 with one line (the traceback only with -v), a closed pipe is a quiet exit, and
`--help` pays for no heavy import."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
from otlp_factory import BASE_NS, NS, SpanSpec, jsonl, traces_request
from test_cli import hybridlens

from hybridlens import cli, metrics_command
from ingest.errors import IngestError
from warehouse.errors import ConfigError, WarehouseBusyError

HEAVY = ("duckdb", "polars", "pyarrow", "numpy", "tqdm", "streamlit", "scipy", "sklearn")


@pytest.fixture(scope="module")
def many_groups(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 models, one request each: far more output than a pipe buffer holds."""
    folder = tmp_path_factory.mktemp("many")
    specs = [
        SpanSpec(start_ns=BASE_NS + i * NS, attributes={"gen_ai.request.model": f"model-{i:05d}"})
        for i in range(3000)
    ]
    path = folder / "spans.jsonl"
    path.write_bytes(jsonl(traces_request({"service.name": "chat"}, specs)))
    done = hybridlens("ingest", "traces", path, "--warehouse", folder / "w.duckdb", cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder / "w.duckdb"


# -- a bug is a bug -------------------------------------------------------------------------------
def fail_with(exc: BaseException, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(args: argparse.Namespace) -> int:
        raise exc

    monkeypatch.setattr(metrics_command, "_run", broken)


def test_an_unexpected_exception_is_one_line_and_exit_70(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fail_with(ZeroDivisionError("division by zero"), monkeypatch)
    assert cli.main(["metrics"]) == 70
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "hybridlens: internal error: ZeroDivisionError: division by zero; "
        "run with -v for the traceback\n"
    )


def test_with_v_the_traceback_comes_first(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fail_with(KeyError("environment"), monkeypatch)
    assert cli.main(["metrics", "-v"]) == 70
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert "in broken\n    raise exc\nKeyError: 'environment'" in err
    assert err.rstrip().splitlines()[-1] == (
        "hybridlens: internal error: KeyError: 'environment'; the traceback is above"
    )


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ConfigError("hybridlens.toml: models[0].name: missing"), 2),
        (WarehouseBusyError("the warehouse w.duckdb stayed busy for 120 s"), 1),
        (IngestError("the spool /x cannot be written"), 1),
        (ValueError("a ValueError is a bug, not a usage error"), 70),
    ],
)
def test_known_failures_are_their_sentence(
    exc: Exception, code: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fail_with(exc, monkeypatch)
    assert cli.main(["metrics"]) == code
    err = capsys.readouterr().err
    assert str(exc) in err and len(err.splitlines()) == 1 and "Traceback" not in err


# -- stdout closed early --------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_head_1_ends_it_quietly(tmp_path: Path, many_groups: Path, fmt: str) -> None:
    exe = Path(sys.executable).with_name("hybridlens")
    script = (
        f"'{exe}' metrics --warehouse '{many_groups}' --by model --format {fmt} | head -1; "
        'echo "status=${PIPESTATUS[0]}" >&2'
    )
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert len(done.stdout.splitlines()) == 1
    # No BrokenPipeError traceback, no "Exception ignored": only the status. A table is
    # written a row at a time, so its writes outlive head and meet the closed pipe; one
    # big CSV or JSON write may be taken whole by the pipe before head exits.
    expected = {"status=141\n"} if fmt == "table" else {"status=141\n", "status=0\n"}
    assert done.stderr in expected, done.stderr
    full = hybridlens("metrics", "--warehouse", many_groups, "--by", "model", "--format", fmt,
                      cwd=tmp_path)  # fmt: skip
    assert full.returncode == 0 and len(full.stdout) > 200_000, "more than a pipe buffer holds"


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_a_reader_gone_before_the_first_write_is_exit_141(
    tmp_path: Path, many_groups: Path, fmt: str
) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before a byte is written: every write fails
    try:
        done = subprocess.run(
            [str(Path(sys.executable).with_name("hybridlens")), "metrics", "--warehouse",
             str(many_groups), "--by", "model", "--format", fmt],
            cwd=tmp_path, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (141, "")


# -- config that cannot be read -------------------------------------------------------------------
def write_deep(path: Path) -> None:
    path.write_text("a = " + "[" * 10_000 + "]" * 10_000 + "\n", encoding="utf-8")


def write_latin1(path: Path) -> None:
    path.write_bytes('[dashboard]\ntrace_link = "http://jäger/{trace_id}"\n'.encode("latin-1"))


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: p.mkdir(), "is a folder"),
        (write_deep, "not valid TOML: arrays or tables nested too deeply"),
        (write_latin1, "not valid TOML: not UTF-8 text"),
    ],
    ids=["folder", "10000-deep", "not-utf-8"],
)
def test_a_config_that_cannot_be_read_is_exit_2(
    tmp_path: Path, many_groups: Path, make: object, says: str
) -> None:
    bad = tmp_path / "fleet.toml"
    make(bad)  # type: ignore[operator]
    done = hybridlens("metrics", "--warehouse", many_groups, "--config", bad, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("hybridlens: error: ") and str(bad) in done.stderr
    assert says in done.stderr and len(done.stderr.splitlines()) == 1
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("sample", "out", "--days", "0"), "'0' is not a whole number of at least 1"),
        (("demo", "--no-serve", "--scale", "-1"), "'-1' is not a number above 0"),
        (("demo", "--no-serve", "--scale", "nan"), "'nan' is not a number above 0"),
        (("demo", "--no-serve", "--data", "afile"), "--data afile is a file"),
    ],
)
def test_bad_demo_flags_are_exit_2_and_create_nothing(
    tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    (tmp_path / "afile").write_text("not a folder")
    done = hybridlens(*args, cwd=tmp_path)
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


@pytest.mark.parametrize("command", ["dashboard", "demo", "serve-otlp"])
@pytest.mark.parametrize("given", ["70000", "0"])
def test_a_port_out_of_range_is_exit_2(tmp_path: Path, command: str, given: str) -> None:
    """70000 reached the socket: serve-otlp's bind raised OverflowError (exit 70), the
    dashboard printed "serving" and Streamlit's traceback (exit 1)."""
    done = hybridlens(command, "--port", given, cwd=tmp_path)
    assert done.returncode == 2 and f"'{given}' is not a port (1 to 65535)" in done.stderr
    assert "Traceback" not in done.stderr and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["dashboard", "demo"])
def test_a_taken_port_is_exit_2_before_anything_is_served_or_made(
    tmp_path: Path, command: str
) -> None:
    """Before, both printed "serving the dashboard on …", then Streamlit's "Port … is not
    available", and exited 1 (the demo after storing its config)."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = hybridlens(command, "--port", str(port), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"cannot serve the dashboard on 127.0.0.1:{port}" in done.stderr
    assert "is a dashboard already running there?" in done.stderr
    assert "serving" not in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # no warehouse, no scenario


def test_a_bad_read_limit_is_exit_2(tmp_path: Path, many_groups: Path) -> None:
    done = hybridlens("metrics", "--warehouse", many_groups, cwd=tmp_path,
                      env={"HYBRIDLENS_READ_LIMIT_S": "soon"})  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == (
        "hybridlens: error: HYBRIDLENS_READ_LIMIT_S='soon' is not a number of seconds "
        "(0 turns the limit off)\n"
    )


# -- import time ----------------------------------------------------------------------------------
def test_help_imports_nothing_heavy(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from hybridlens.cli import main\n"
        "try:\n    main(['metrics', '--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "[]", "--help imports only the parser's modules"
