"""The config: every key parsed, every mistake named with its key and file, the resolution
order, storage in the warehouse, and unconfigured environments kept."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest
from otlp_factory import SpanSpec, jsonl, traces_request
from test_boundaries import config_keys

from hybridlens.cli import main
from ingest.traces import ingest_paths
from warehouse.config import (
    DEFAULT_DENY,
    Config,
    Environment,
    GpuPool,
    Model,
    Slo,
    find_file,
    load_file,
    parse,
    resolve,
)
from warehouse.config_attribution import RegionRule, ResourceRule
from warehouse.config_billing import Budget
from warehouse.config_cost import CostModel, PowerPrice
from warehouse.config_gpu import GpuSource, WorkloadRule
from warehouse.db import Warehouse
from warehouse.errors import ConfigError
from warehouse.load import store_config, stored_config
from warehouse.metrics import metrics

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "hybridlens.toml"
SCENARIO = ROOT / "sample_data" / "scenario.toml"

EVERY_KEY = """
[[environments]]
name = "dc-one"
kind = "onprem"
provider = "onprem"
region = "north"
residency = "eu"
sampling_ratio = 0.25
match = [{ "k8s.cluster.name" = "one", "cloud.region" = "north-1" }, { "host.name" = "h1" }]

[[environments.gpu_pools]]
name = "big"
gpu = "H100-80GB"
count = 8
hosts = ["gpu-*"]

[environments.gpu_pools.cost]
servers = 2
gpus_per_server = 4
purchase_date = 2025-02-28
price_per_server = 120000.5
amortization_years = 4
residual_value = 8000
server_power_w = 750
power_price_per_kwh = 0.18
power_prices = [{ month = "2026-01", price_per_kwh = 0.22 }]
pue = 1.4
fixed_monthly_cost = 2500
carbon_intensity_g_per_kwh = 350
currency = "EUR"

[[environments.gpu_pools]]
gpu = "L4"

[environments.slo]
latency_p95_ms = 1500
availability = 0.999
down_error_ratio = 0.1
uptime_min_requests = 7
uptime_min_expected = 2.5

[[environments]]
name = "cloud-two"

[[models]]
name = "m1"
classification = "restricted"
residency = ["eu", "ch"]
accuracy_floor = 0.8
evaluation = "exact_match"
service = "vision"
model_attribute = "ml.model.name"

[[models]]
name = "m2"

[ingest]
deny_attributes = ["secret.*", "user.email"]
redaction = "redact"
max_attribute_bytes = 100
max_clock_skew_hours = 2.5
settle_minutes = 1
max_span_bytes = 65536

[dashboard]
trace_link = "http://jaeger/trace/{trace_id}"
default_days = 7

[attribution]
environment_keys = ["Env"]
model_keys = ["model", "ml-model"]
cost_center_keys = ["team"]

[[attribution.resources]]
pattern = "re:^i-0abc"
environment = "cloud-two"
model = "m2"
cost_center = "ml"

[[attribution.regions]]
provider = "aws"
region = "us-east-1"
environment = "cloud-two"

[allocation]
key = "tokens"

[gpu]
idle_threshold_percent = 10
sample_cap_minutes = 2
node_label = "kubernetes_node"

[[gpu.workloads]]
workload = "m1"
namespace = "llm"
pod = "m1-*"
host = "gpu-*"

[[sources.gpu]]
url = "http://127.0.0.1:9400/metrics"
path = "/var/log/gpu"
environment = "dc-one"
timeout_seconds = 3
retries = 1

[[sources.billing]]
path = "/var/exports/focus"
format = "focus"
dataset = "amortized"

[billing]
reporting_currency = "EUR"
lag_hours = 48
rates = [{ currency = "USD", rate = 0.92, since = 2026-01-01 }]

[[billing.budgets]]
name = "all"
amount = 90000.5

[[billing.budgets]]
name = "dc-one"
amount = 40000
environment = "dc-one"
since = "2026-10"

[[billing.budgets]]
name = "aws"
amount = 30000
provider = "aws"

[[billing.budgets]]
name = "search"
amount = 5000
cost_center = "search"
"""


def write(folder: Path, text: str, name: str = "hybridlens.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def toml_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key path a TOML document sets, in config_keys()'s spelling."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, sub in value.items():
            path = f"{prefix}{key}"
            found.add(path)
            if isinstance(sub, dict):
                found |= toml_paths(sub, f"{path}.")
            elif isinstance(sub, list) and sub and isinstance(sub[0], dict) and key != "match":
                for item in sub:
                    found |= toml_paths(item, f"{path}[].")
    return found


# -- parsing --------------------------------------------------------------------------------------
def test_every_key_is_parsed(tmp_path: Path) -> None:
    path = write(tmp_path, EVERY_KEY)
    assert toml_paths(tomllib.loads(EVERY_KEY)) == config_keys(), "EVERY_KEY sets every key"
    config = load_file(path)
    assert config.origin == str(path)
    one, two = config.environments
    assert one == Environment(
        name="dc-one",
        kind="onprem",
        provider="onprem",
        region="north",
        residency="eu",
        gpu_pools=(
            GpuPool(
                "big",
                "H100-80GB",
                8,
                ("gpu-*",),
                CostModel(
                    servers=2,
                    gpus_per_server=4,
                    purchase_date="2025-02-28",
                    price_per_server=120000.5,
                    amortization_years=4,
                    residual_value=8000.0,
                    server_power_w=750.0,
                    power_price_per_kwh=0.18,
                    power_prices=(PowerPrice("2026-01", 0.22),),
                    pue=1.4,
                    fixed_monthly_cost=2500.0,
                    carbon_intensity_g_per_kwh=350.0,
                    currency="EUR",
                ),
            ),
            GpuPool("pool-1", "L4", 0),
        ),
        slo=Slo(1500.0, 0.999, 0.1, 7, 2.5),
        sampling_ratio=0.25,
        match=(
            (("cloud.region", "north-1"), ("k8s.cluster.name", "one")),
            (("host.name", "h1"),),
        ),
    )
    assert two == Environment(name="cloud-two")  # every default
    assert two.slo == Slo(None, None, 0.05, 5, 1.0)
    assert config.models == (
        Model("m1", "restricted", ("eu", "ch"), 0.8, "exact_match", "vision", "ml.model.name"),
        Model("m2"),
    )
    assert config.models[1] == Model("m2", "internal", (), None, "accuracy", None, None)
    assert config.ingest.deny_attributes == ("secret.*", "user.email")
    assert (config.ingest.redaction, config.ingest.max_attribute_bytes) == ("redact", 100)
    assert (config.ingest.max_clock_skew_hours, config.ingest.settle_minutes) == (2.5, 1.0)
    assert config.ingest.max_span_bytes == 65536
    assert isinstance(config.ingest.settle_minutes, float)
    assert config.dashboard.trace_link == "http://jaeger/trace/{trace_id}"
    assert config.dashboard.default_days == 7
    assert (config.gpu.idle_threshold_percent, config.gpu.sample_cap_minutes) == (10.0, 2.0)
    assert config.gpu.node_label == "kubernetes_node"
    assert config.gpu.workloads == (WorkloadRule("m1", "llm", "m1-*", "gpu-*"),)
    assert config.sources.gpu == (
        GpuSource("http://127.0.0.1:9400/metrics", "/var/log/gpu", "dc-one", 3.0, 1),
    )
    assert [(b.path, b.format, b.dataset) for b in config.sources.billing] == [
        ("/var/exports/focus", "focus", "amortized")
    ]
    assert config.billing.budgets == (
        Budget("all", 90000.5),
        Budget("dc-one", 40000.0, environment="dc-one", since="2026-10"),
        Budget("aws", 30000.0, provider="aws"),
        Budget("search", 5000.0, cost_center="search"),
    )
    assert [b.scope for b in config.billing.budgets] == [
        None, ("environment", "dc-one"), ("provider", "aws"), ("cost_center", "search"),
    ]  # fmt: skip
    assert config.attribution.environment_keys == ("Env",)
    assert config.attribution.model_keys == ("model", "ml-model")
    assert config.attribution.resources == (ResourceRule("re:^i-0abc", "cloud-two", "m2", "ml"),)
    assert config.attribution.regions == (RegionRule("us-east-1", "cloud-two", "aws"),)
    assert config.model_attributes() == {"vision": "ml.model.name"}
    assert config.environment("dc-one") is one and config.environment("nope") is None
    assert one.matches({"k8s.cluster.name": "one", "cloud.region": "north-1", "x": 1})
    assert one.matches({"host.name": "h1"})
    assert not one.matches({"k8s.cluster.name": "one"})


def test_defaults_with_no_file_at_all() -> None:
    config = parse({}, "nowhere")
    assert config == dataclasses.replace(Config(), origin="nowhere")
    assert config.ingest.deny_attributes == DEFAULT_DENY
    assert (config.ingest.redaction, config.ingest.max_attribute_bytes) == ("drop", 4096)
    assert (config.dashboard.trace_link, config.dashboard.default_days) == ("", 30)
    assert Config().origin == "built-in defaults"


def test_the_example_is_a_valid_template_with_every_key() -> None:
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert config_keys() <= toml_paths(raw), "examples/hybridlens.toml shows every key"
    config = load_file(EXAMPLE)
    assert {e.kind for e in config.environments} == {"onprem", "cloud", "edge"}
    assert {e.provider for e in config.environments} >= {"aws", "azure"}
    scenario = load_file(SCENARIO)
    # a template for your own fleet, not a copy of the demo's
    assert not {e.name for e in config.environments} & {e.name for e in scenario.environments}
    assert not {m.name for m in config.models} & {m.name for m in scenario.models}


# -- mistakes -------------------------------------------------------------------------------------
ENV = '[[environments]]\nname = "e"\n'
MODEL = '[[models]]\nname = "m"\n'
BUDGET = '[[billing.budgets]]\nname = "b"\n'

MISTAKES = {
    # name: (toml, text the message must contain besides the file)
    "unknown top-level key": ("colour = 1\n", "colour: unknown key"),
    "unknown environment key": (ENV + "regoin = 'x'\n", "environments[0].regoin: unknown key"),
    "unknown slo key": (
        ENV + "slo = { availabilty = 0.9 }\n",
        "environments[0].slo.availabilty: unknown key",
    ),
    "unknown gpu pool key": (
        ENV + "gpu_pools = [{ gpus = 3 }]\n",
        "environments[0].gpu_pools[0].gpus: unknown key",
    ),
    "unknown model key": (MODEL + "floor = 0.5\n", "models[0].floor: unknown key"),
    "unknown ingest key": ("[ingest]\ndeny = []\n", "ingest.deny: unknown key"),
    "unknown dashboard key": ("[dashboard]\nlink = 'x'\n", "dashboard.link: unknown key"),
    "name of the wrong type": (
        "[[environments]]\nname = 3\n",
        "environments[0].name: expected str",
    ),
    "number as text": (
        ENV + "slo = { latency_p95_ms = 'fast' }\n",
        "environments[0].slo.latency_p95_ms: expected float",
    ),
    "boolean as a number": (
        ENV + "gpu_pools = [{ count = true }]\n",
        "environments[0].gpu_pools[0].count: expected int",
    ),
    "float where an integer goes": (
        ENV + "slo = { uptime_min_requests = 2.5 }\n",
        "environments[0].slo.uptime_min_requests: expected int",
    ),
    "residency not a list": (MODEL + "residency = 'eu'\n", "models[0].residency: expected list"),
    "residency of numbers": (MODEL + "residency = [1]\n", "models[0].residency: must be a list"),
    "environments not a list": ("environments = 'x'\n", "environments: expected list"),
    "slo not a table": (ENV + "slo = 0.99\n", "environments[0].slo: expected dict"),
    "availability above 1": (
        ENV + "slo = { availability = 1.5 }\n",
        "environments[0].slo.availability: must be a fraction in (0, 1]",
    ),
    "down ratio of 0": (
        ENV + "slo = { down_error_ratio = 0 }\n",
        "environments[0].slo.down_error_ratio: must be a fraction",
    ),
    "negative accuracy floor": (
        MODEL + "accuracy_floor = -0.1\n",
        "models[0].accuracy_floor: must be a fraction",
    ),
    "sampling ratio of 2": (
        ENV + "sampling_ratio = 2\n",
        "environments[0].sampling_ratio: must be a fraction",
    ),
    "zero minimum requests": (
        ENV + "slo = { uptime_min_requests = 0 }\n",
        "environments[0].slo.uptime_min_requests: must be positive",
    ),
    "negative latency target": (
        ENV + "slo = { latency_p95_ms = -5 }\n",
        "environments[0].slo.latency_p95_ms: must be positive",
    ),
    "negative gpu count": (
        ENV + "gpu_pools = [{ count = -1 }]\n",
        "environments[0].gpu_pools[0].count: must be 0 or more",
    ),
    "zero attribute cap": (
        "[ingest]\nmax_attribute_bytes = 0\n",
        "ingest.max_attribute_bytes: must be positive",
    ),
    "zero default days": (
        "[dashboard]\ndefault_days = 0\n",
        "dashboard.default_days: must be positive",
    ),
    "bad kind": (
        ENV + "kind = 'datacenter'\n",
        "environments[0].kind: must be one of onprem, cloud, edge, got 'datacenter'",
    ),
    "bad classification": (
        MODEL + "classification = 'secret'\n",
        "models[0].classification: must be one of",
    ),
    "bad redaction": ("[ingest]\nredaction = 'mask'\n", "ingest.redaction: must be one of"),
    "duplicate environment": (ENV + ENV, "environments: 'e' is defined twice"),
    "duplicate model": (MODEL + MODEL, "models: 'm' is defined twice"),
    "environment without a name": (
        "[[environments]]\nkind = 'edge'\n",
        "environments[0].name is required",
    ),
    "model without a name": ("[[models]]\nevaluation = 'x'\n", "models[0].name is required"),
    "service without model_attribute": (
        MODEL + "service = 'vision'\n",
        "models[0]: service and model_attribute go together",
    ),
    "model_attribute without service": (
        MODEL + "model_attribute = 'ml.model.name'\n",
        "models[0]: service and model_attribute go together",
    ),
    "trace link without {trace_id}": (
        "[dashboard]\ntrace_link = 'http://jaeger/trace/'\n",
        "dashboard.trace_link must contain {trace_id}",
    ),
    "empty match rule": (ENV + "match = [{}]\n", "environments[0].match[0] must be a non-empty"),
    "match rule not a table": (
        ENV + "match = ['k8s.cluster.name']\n",
        "environments[0].match[0] must be a non-empty",
    ),
    "environment not a table": ("environments = ['e']\n", "environments[0]. must be a table"),
    "not TOML": ("[[environments]\nname = 'e'\n", "not valid TOML"),
    "budget of 0": (BUDGET + "amount = 0\n", "billing.budgets[0].amount: must be positive"),
    "negative budget": (BUDGET + "amount = -5\n", "billing.budgets[0].amount: must be positive"),
    "budget as text": (BUDGET + "amount = '1000'\n", "billing.budgets[0].amount: expected float"),
    "budget without an amount": (BUDGET, "billing.budgets[0].amount is required"),
    "budget without a name": (
        "[[billing.budgets]]\namount = 10\n",
        "billing.budgets[0].name is required",
    ),
    "unknown budget key": (
        BUDGET + "amount = 10\nregion = 'eu'\n",
        "billing.budgets[0].region: unknown key",
    ),
    "budget with two scopes": (
        BUDGET + "amount = 10\nprovider = 'aws'\nenvironment = 'e'\n",
        "billing.budgets[0]: budget 'b' is scoped by both environment and provider",
    ),
    "budget since a day": (
        BUDGET + "amount = 10\nsince = '2026-10-01'\n",
        "billing.budgets[0].since: must be a month as YYYY-MM",
    ),
    "budget with an empty scope": (
        BUDGET + "amount = 10\ncost_center = ' '\n",
        "billing.budgets[0].cost_center: must be a name that is not empty",
    ),
    "duplicate budget": (
        BUDGET + "amount = 10\n" + BUDGET + "amount = 20\n",
        "billing.budgets: 'b' is defined twice",
    ),
}


@pytest.mark.parametrize("case", MISTAKES)
def test_a_mistake_names_the_key_and_the_file(tmp_path: Path, case: str) -> None:
    text, expected = MISTAKES[case]
    path = write(tmp_path, text, "fleet.toml")
    with pytest.raises(ConfigError) as info:
        load_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert expected in message, message


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*nope\.toml does not exist"):
        load_file(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="does not exist"):
        resolve(tmp_path / "nope.toml")


# -- resolution order -----------------------------------------------------------------------------
@pytest.fixture
def layers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A working directory and one config per layer, each naming one environment."""
    monkeypatch.delenv("HYBRIDLENS_CONFIG", raising=False)
    monkeypatch.delenv("HYBRIDLENS_WAREHOUSE", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    files = {}
    for layer in ("explicit", "variable", "stored"):
        files[layer] = write(tmp_path, f'[[environments]]\nname = "{layer}"\n', f"{layer}.toml")
    return {
        "cwd": cwd,
        "files": files,
        "warehouse": Warehouse(tmp_path / "w.duckdb"),
        "monkeypatch": monkeypatch,
    }


def names(config: Config) -> list[str]:
    return [e.name for e in config.environments]


def test_resolution_order(layers: dict[str, Any]) -> None:
    wh: Warehouse = layers["warehouse"]
    files: dict[str, Path] = layers["files"]
    mp: pytest.MonkeyPatch = layers["monkeypatch"]

    # 5. built-in defaults: nothing anywhere (and the warehouse is not created by looking)
    config, from_file = resolve(None, wh)
    assert (config, from_file) == (Config(), False)
    assert not wh.path.exists()

    # 4. the config stored by a load
    stored = load_file(files["stored"])
    store_config(wh, stored.origin, stored.to_json())
    config, from_file = resolve(None, wh)
    assert names(config) == ["stored"] and not from_file
    assert config.origin == f"{files['stored']} (stored in {wh.path})"

    # 3. ./hybridlens.toml beats the stored one
    write(layers["cwd"], '[[environments]]\nname = "local"\n')
    config, from_file = resolve(None, wh)
    assert names(config) == ["local"] and from_file
    assert find_file(None) == Path("hybridlens.toml")

    # 2. HYBRIDLENS_CONFIG beats ./hybridlens.toml
    mp.setenv("HYBRIDLENS_CONFIG", str(files["variable"]))
    assert names(resolve(None, wh)[0]) == ["variable"]

    # 1. --config beats everything
    config, from_file = resolve(files["explicit"], wh)
    assert names(config) == ["explicit"] and from_file

    # and without a warehouse to look in, the stored layer is skipped
    mp.delenv("HYBRIDLENS_CONFIG")
    (layers["cwd"] / "hybridlens.toml").unlink()
    assert resolve(None, None) == (Config(), False)


def test_a_load_given_a_config_stores_it_and_later_commands_see_it(
    layers: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wh: Warehouse = layers["warehouse"]
    data = tmp_path / "spans.jsonl"
    data.write_bytes(
        jsonl(traces_request({"service.name": "api", "k8s.cluster.name": "c1"}, [SpanSpec()]))
    )
    config = write(
        tmp_path,
        '[[environments]]\nname = "mapped"\nmatch = [{ "k8s.cluster.name" = "c1" }]\n',
        "given.toml",
    )
    assert (
        main(["ingest", "traces", str(data), "--warehouse", str(wh.path), "--config", str(config)])
        == 0
    )
    origin, _ = stored_config(wh) or ("", "")
    assert origin == str(config)
    # a later command with no config of its own: the stored one applies
    assert names(resolve(None, wh)[0]) == ["mapped"]
    assert main(["metrics", "--warehouse", str(wh.path), "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].startswith("mapped,api,1,")
    # an identical config is not stored twice; a changed one is, and becomes the one used
    store_config(wh, str(config), load_file(config).to_json())
    with wh.read() as con:
        assert con.execute("SELECT count(*) FROM config").fetchone() == (1,)
    other = load_file(layers["files"]["stored"])
    store_config(wh, other.origin, other.to_json())
    assert names(resolve(None, wh)[0]) == ["stored"]


@pytest.mark.parametrize("source", ["every key", "example", "scenario", "defaults"])
def test_the_stored_config_round_trips(tmp_path: Path, source: str) -> None:
    config = {
        "every key": lambda: load_file(write(tmp_path, EVERY_KEY)),
        "example": lambda: load_file(EXAMPLE),
        "scenario": lambda: load_file(SCENARIO),
        "defaults": Config,
    }[source]()
    wh = Warehouse(tmp_path / "w.duckdb")
    store_config(wh, config.origin, config.to_json())
    _, body = stored_config(wh) or ("", "")
    back = Config.from_json(body, "stored")
    assert back == dataclasses.replace(config, origin="stored")
    assert back.to_json() == config.to_json()


def test_a_stored_config_is_validated_again(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    store_config(wh, "old.toml", '{"environments": [{"name": "e", "colour": "red"}]}')
    with pytest.raises(ConfigError, match=r"old\.toml \(stored in .*\): environments\[0\]\.colour"):
        resolve(None, wh)


def test_environments_in_data_but_not_in_config_are_kept(tmp_path: Path) -> None:
    config = load_file(
        write(
            tmp_path, '[[environments]]\nname = "known"\nmatch = [{ "k8s.cluster.name" = "k" }]\n'
        )
    )
    spans = [
        ({"service.name": "a", "k8s.cluster.name": "k"}, "m1"),
        ({"service.name": "a", "deployment.environment.name": "mystery"}, "m1"),
        ({"service.name": "b", "deployment.environment": "older-attribute"}, "m2"),
        ({"service.name": "c"}, "m3"),
    ]
    lines = [
        jsonl(traces_request(res, [SpanSpec(attributes={"gen_ai.request.model": m})]))
        for res, m in spans
    ]
    (tmp_path / "spans.jsonl").write_bytes(b"".join(lines))
    wh = Warehouse(tmp_path / "w.duckdb")
    assert ingest_paths(wh, [tmp_path / "spans.jsonl"], config).ok
    frame = metrics(wh, config, by=("environment",))
    assert frame["environment"].to_list() == ["known", "mystery", "older-attribute", "unknown"]
    assert frame["requests"].to_list() == [1, 1, 1, 1]
    assert config.environment("mystery") is None
