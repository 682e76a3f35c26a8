"""Config files that are not config files, and stored configs that no longer pass: each is a
ConfigError whose sentence names the file (the command line prints it and exits 2), and a
stored config that fails a bound added since is a way out, not a dead end."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest

from hybridlens.cli import main
from warehouse.config import Config, load_file, resolve
from warehouse.db import Warehouse
from warehouse.errors import ConfigError
from warehouse.load import store_config, stored_config

# A body as the landed code (before the declarative schema) stored it for a config with
# environments, pools, rules, SLOs, a model and a trace link: it must still read back.
LANDED_BODY = (
    '{"dashboard": {"default_days": 30, "trace_link": "http://jaeger/trace/{trace_id}"}, '
    '"environments": [{"gpu_pools": [{"count": 8, "gpu": "H100-80GB", "name": "big"}, '
    '{"count": 0, "gpu": "L4", "name": "pool-1"}], "kind": "onprem", "match": '
    '[[["cloud.region", "north-1"], ["k8s.cluster.name", "one"]], [["host.name", "h1"]]], '
    '"name": "dc-one", "provider": "", "region": "", "residency": "eu", "sampling_ratio": '
    '0.25, "slo": {"availability": 0.999, "down_error_ratio": 0.05, "latency_p95_ms": '
    '1500.0, "uptime_min_expected": 1.0, "uptime_min_requests": 5}}], "ingest": '
    '{"deny_attributes": ["gen_ai.input.messages", "gen_ai.output.messages", '
    '"gen_ai.system_instructions", "gen_ai.tool.definitions", "gen_ai.prompt", '
    '"gen_ai.prompt.*", "gen_ai.completion", "gen_ai.completion.*", "llm.prompts*", '
    '"llm.completions*"], "max_attribute_bytes": 4096, "max_clock_skew_hours": 24.0, '
    '"max_span_bytes": 1048576, "redaction": "drop", "settle_minutes": 10.0}, "models": '
    '[{"classification": "internal", "evaluation": "accuracy", "model_attribute": '
    '"ml.model.name", "name": "m1", "residency": ["eu"], "service": "vision"}]}'
)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def refused(path: Path | str) -> str:
    with pytest.raises(ConfigError) as info:
        load_file(path)
    message = str(info.value)
    assert str(path) in message, message
    return message


# -- files that are not config files --------------------------------------------------------------
def test_a_folder_is_named(tmp_path: Path) -> None:
    assert "is a folder, not a config file" in refused(tmp_path)


def test_a_file_nested_ten_thousand_levels_deep(tmp_path: Path) -> None:
    arrays = write(tmp_path / "a.toml", b"a = " + b"[" * 10_000 + b"]" * 10_000)
    assert "not valid TOML: arrays or tables nested too deeply" in refused(arrays)
    tables = write(tmp_path / "t.toml", b"a = " + b"{ b = " * 10_000 + b"1" + b" }" * 10_000)
    assert "nested too deeply" in refused(tables)
    opened = write(tmp_path / "o.toml", b"[" * 10_000)
    assert "not valid TOML" in refused(opened)
    # dotted headers nest without recursion in the TOML parser; ours names the key
    headers = write(tmp_path / "h.toml", b"[environments" + b".a" * 5_000 + b"]\nb = 1\n")
    assert "environments: expected list, got <a dict too large to show>" in refused(headers)


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    latin1 = write(tmp_path / "l.toml", '[[environments]]\nname = "Zürich"\n'.encode("latin-1"))
    message = refused(latin1)
    assert "not UTF-8 text (byte 0xfc at offset 26)" in message, message
    utf16 = write(tmp_path / "u.toml", "[dashboard]\ndefault_days = 7\n".encode("utf-16"))
    assert "not UTF-8" in refused(utf16)


def test_a_utf8_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = write(tmp_path / "bom.toml", "\ufeff[dashboard]\ndefault_days = 7\n".encode())
    assert load_file(path).dashboard.default_days == 7


def test_an_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "secret.toml", b"[dashboard]\n")
    path.chmod(0)
    if os.access(path, os.R_OK):  # root reads anything: make open() fail as it would for others
        real_open = Path.open

        def denied(self: Path, *args: Any, **kwargs: Any) -> Any:
            if self == path:
                raise PermissionError(13, "Permission denied", str(self))
            return real_open(self, *args, **kwargs)

        monkeypatch.setattr(Path, "open", denied)
    assert "cannot be read: Permission denied" in refused(path)


def test_a_device_or_huge_file_is_not_read_to_the_end(tmp_path: Path) -> None:
    assert "larger than 16 MiB" in refused("/dev/zero")
    assert "cannot be read" in refused(write(tmp_path / "f", b"") / "below-a-file.toml")


def test_a_huge_integer_is_not_valid_toml(tmp_path: Path) -> None:
    path = write(tmp_path / "n.toml", b"[dashboard]\ndefault_days = " + b"9" * 5000 + b"\n")
    assert "not valid TOML" in refused(path)


@pytest.mark.parametrize("kind", ["folder", "deep", "latin-1"])
def test_the_command_line_prints_the_sentence_and_exits_2(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = {
        "folder": tmp_path,
        "deep": write(tmp_path / "d.toml", b"a = " + b"[" * 10_000 + b"]" * 10_000),
        "latin-1": write(tmp_path / "l.toml", b'[[environments]]\nname = "Z\xfcrich"\n'),
    }[kind]
    argv = ["metrics", "--warehouse", str(tmp_path / "w.duckdb"), "--config", str(path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "Traceback" not in err, err


# -- what the warehouse holds ---------------------------------------------------------------------
def test_a_body_stored_by_the_landed_code_reads_back_unchanged(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    store_config(wh, "fleet.toml", LANDED_BODY)
    config, from_file = resolve(None, wh)
    assert not from_file
    # keys added since then read back as their defaults; every landed value is unchanged
    body = json.loads(config.to_json())
    assert body.pop("gpu") == json.loads(Config().to_json())["gpu"]
    assert body.pop("sources") == {"gpu": [], "billing": []}
    assert body.pop("billing") == {
        "lag_hours": 72, "rates": [], "reporting_currency": "USD", "budgets": [],
    }  # fmt: skip
    assert body.pop("attribution") == json.loads(Config().to_json())["attribution"]
    assert body.pop("allocation") == {"key": "gpu-seconds"}
    for environment in body["environments"]:
        for pool in environment["gpu_pools"]:
            assert pool.pop("hosts") == []
    assert body == json.loads(LANDED_BODY)
    one = config.environments[0]
    assert one.match == (
        (("cloud.region", "north-1"), ("k8s.cluster.name", "one")),
        (("host.name", "h1"),),
    )
    assert one.slo.latency_p95_ms == 1500.0 and one.gpu_pools[1].name == "pool-1"
    assert config.model_attributes() == {"vision": "ml.model.name"}
    # and one stored before the ingest limits existed takes their defaults
    older = LANDED_BODY.replace('"max_clock_skew_hours": 24.0, "max_span_bytes": 1048576, ', "")
    older = older.replace(', "settle_minutes": 10.0', "")
    assert Config.from_json(older, "old").ingest == config.ingest


def bad_stored(tmp_path: Path) -> Warehouse:
    """A warehouse whose stored config an older hybridlens accepted and today's refuses."""
    wh = Warehouse(tmp_path / "w.duckdb")
    body = LANDED_BODY.replace('"default_days": 30', '"default_days": 999999')
    store_config(wh, "old.toml", body)
    return wh


def test_a_stored_config_that_fails_a_new_bound_says_which_key_and_the_way_out(
    tmp_path: Path,
) -> None:
    wh = bad_stored(tmp_path)
    with pytest.raises(ConfigError) as info:
        resolve(None, wh)
    message = str(info.value)
    assert message.startswith(
        f"old.toml (stored in {wh.path}): dashboard.default_days: must be at most 3660, "
        "got 999999. "
    ), message
    assert "pass --config FILE (or set HYBRIDLENS_CONFIG)" in message
    good = tmp_path / "good.toml"
    good.write_text("[dashboard]\ndefault_days = 60\n", encoding="utf-8")
    assert resolve(good, wh)[0].dashboard.default_days == 60  # the way out works


def test_the_way_out_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wh = bad_stored(tmp_path)
    assert main(["metrics", "--warehouse", str(wh.path)]) == 2
    err = capsys.readouterr().err
    assert "dashboard.default_days: must be at most 3660" in err and "--config" in err, err
    good = tmp_path / "good.toml"
    good.write_text("[dashboard]\ndefault_days = 60\n", encoding="utf-8")
    assert main(["metrics", "--warehouse", str(wh.path), "--config", str(good)]) == 0
    # a load given the fixed file stores it, and then no command needs --config
    spans = tmp_path / "empty.jsonl"
    spans.write_bytes(b"")
    main(["ingest", "traces", str(spans), "--warehouse", str(wh.path), "--config", str(good)])
    assert (stored_config(wh) or ("", ""))[0] == str(good)
    assert main(["metrics", "--warehouse", str(wh.path)]) == 0


@pytest.mark.parametrize(
    "body",
    ["not json", "[" * 100_000, '{"environments": [{"name": "e", "slo": {"availability": NaN}}]}'],
)
def test_a_damaged_stored_body_is_a_config_error(tmp_path: Path, body: str) -> None:
    with pytest.raises(ConfigError, match=r"^stored: "):
        Config.from_json(body, "stored")


def test_from_json_round_trips_what_parse_built() -> None:
    config = Config.from_json(LANDED_BODY, "a")
    assert Config.from_json(config.to_json(), "b") == dataclasses.replace(config, origin="b")
