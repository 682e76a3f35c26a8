"""Cost attribution: each provider's rows find their environment, model and cost center by
tags (any case, AWS's prefixes), inherited labels, resource patterns, GPU hosts, regions and
the cost model's own rows, in the documented order; the rest is `unallocated`, listed in
the untagged-spend table, and never dropped (checked against the ledger's own sum)."""

from __future__ import annotations

import csv
import json
import tempfile
import tomllib
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from aws_cur_factory import cur2_rows, delivery
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from otlp_factory import attr

from hybridlens.ingest_billing import ingest_billing
from hybridlens.ingest_gpu import GpuInput, ingest_gpu
from warehouse.attribution import HOWS, attributed, resource_matches, untagged
from warehouse.config import Config, parse
from warehouse.config_attribution import compile_pattern
from warehouse.db import Warehouse
from warehouse.errors import ConfigError

FOCUS_HEAD = tuple(
    [
        "BilledCost",
        "BillingAccountId",
        "BillingAccountName",
        "BillingCurrency",
        "BillingPeriodEnd",
        "BillingPeriodStart",
        "ChargeCategory",
        "ChargeClass",
        "ChargeDescription",
        "ChargePeriodEnd",
        "ChargePeriodStart",
        "ContractedCost",
        "EffectiveCost",
        "InvoiceIssuerName",
        "ListCost",
        "PricingQuantity",
        "PricingUnit",
        "ProviderName",
        "PublisherName",
        "RegionId",
        "ResourceId",
        "ResourceName",
        "ServiceCategory",
        "ServiceName",
        "Tags",
    ]
)
DAY = "2026-10-02T00:00:00Z"
RANGE = (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))


def focus_file(path: Path, items: list[dict[str, Any]]) -> Path:
    """A FOCUS 1.2 file of one day's line items: `cost`, `provider`, `region`, `resource`,
    `name` and `tags` (a dict, written as JSON) per item."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(FOCUS_HEAD)
        for item in items:
            cost = item.get("cost", "1.00")
            tags = item.get("tags")
            provider = item.get("provider", "AWS")
            out.writerow([cost, "acct", "Acct", "USD", "2026-11-01T00:00:00Z",
                          "2026-10-01T00:00:00Z", "Usage", "", "x", "2026-10-03T00:00:00Z", DAY,
                          cost, cost, provider, cost, "1", "Hours", provider, provider,
                          item.get("region", ""), item.get("resource", ""),
                          item.get("name", ""), "Compute", "Compute",
                          "" if tags is None else json.dumps(tags)])  # fmt: skip
    return path


def load(wh: Warehouse, *paths: Path, **kw: Any) -> None:
    report = ingest_billing(wh, list(paths), Config(), **kw)
    assert report.ok, report.failures


def by_resource(frame: Any) -> dict[str, tuple[str, str, str, str]]:
    return {
        r["ResourceId"]: (r["environment"], r["model"], r["cost_center"], r["how"])
        for r in frame.iter_rows(named=True)
    }


def ledger_total(wh: Warehouse, lo: datetime = RANGE[0], hi: datetime = RANGE[1]) -> Any:
    with wh.read() as con:
        return con.execute(
            "SELECT count(*), sum(EffectiveCost) FROM billing WHERE "
            "coalesce(ChargePeriodStart, BillingPeriodStart) >= $lo "
            "AND coalesce(ChargePeriodStart, BillingPeriodStart) < $hi",
            {"lo": lo, "hi": hi},
        ).fetchone()


def insert_rollup(
    wh: Warehouse,
    rows: list[tuple[str, str, str | None, str | None, float]],
    hour: int = 5,
    host_id: str | None = None,
) -> None:
    """GPU use in one hour of 2 October: (host, environment, pool, workload, gpu_hours)."""
    with wh.write() as con:
        for host, env, pool, workload, hours in rows:
            con.execute(
                "INSERT INTO rollup_gpu_hours (hour, environment, pool, host, gpu_uuid, "
                "mig_instance, gpu_share, workload, samples, gpu_hours, state, host_id) VALUES "
                "(TIMESTAMPTZ '2026-10-02 00:00:00+00' + to_hours(?), ?, ?, ?, 'GPU-1', '', 1, "
                "?, 60, ?, 'busy', ?)",
                [hour, env, pool, host, workload, hours, host_id],
            )


def test_a_gpu_host_is_found_by_its_name_or_first_label_and_counted_once(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    load(warehouse, focus_file(tmp_path / "g.csv", [
        {"resource": "gpu-7.example.internal", "name": "gpu-7"},
        {"resource": "//compute/projects/p/instances/gpu-8"},
        {"resource": "gpu-9"},  # used only after its charge period ends: not this host
    ]))  # fmt: skip
    # the full name matches the row twice (as its id and its first label as its name): one
    # count, or x (3 h) would outweigh z (4 h)
    insert_rollup(warehouse, [("gpu-7.example.internal", "A", None, "x", 3.0),
                              ("GPU-7", "B", None, "z", 4.0),
                              ("gpu-8.c.p.internal", "C", None, None, 1.0)])  # fmt: skip
    insert_rollup(warehouse, [("gpu-9", "D", None, "w", 1.0)], hour=30)
    found = by_resource(attributed(warehouse, Config(), *RANGE))
    assert found["gpu-7.example.internal"] == ("B", "z", "unallocated", "gpu-host")
    assert found["//compute/projects/p/instances/gpu-8"] == (
        "C",
        "unallocated",
        "unallocated",
        "gpu-host",
    )
    assert found["gpu-9"] == ("unallocated",) * 4


def test_an_aws_gpu_host_is_found_by_its_instance_id_for_the_hours_it_had_it(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    arn = "arn:aws:ec2:us-east-1:123456789012:instance/i-0bbb"
    load(warehouse, focus_file(tmp_path / "ec2.csv", [
        {"resource": "i-0aaa"}, {"resource": arn}, {"resource": "i-0ccc"},
        {"resource": "i-0ddd"},  # an instance no GPU sample names
    ]))  # fmt: skip
    # one private address, so one name, held by two instances in turn: each instance's row
    # counts only its own hours (by name alone, i-0aaa would follow y's longer 5 hours)
    name = "ip-10-0-1-23.ec2.internal"
    insert_rollup(warehouse, [(name, "A", None, "x", 3.0)], host_id="i-0aaa")
    insert_rollup(warehouse, [(name, "B", None, "y", 5.0)], hour=7, host_id="i-0BBB")
    # a Kubernetes node's providerID names the instance by its last part
    node = "ip-10-0-9-9.ec2.internal"
    insert_rollup(warehouse, [(node, "C", None, "z", 1.0)], host_id="aws:///us-east-1a/i-0ccc")
    found = by_resource(attributed(warehouse, Config(), *RANGE))
    assert found["i-0aaa"] == ("A", "x", "unallocated", "gpu-host")
    assert found[arn] == ("B", "y", "unallocated", "gpu-host")
    assert found["i-0ccc"] == ("C", "z", "unallocated", "gpu-host")
    assert found["i-0ddd"] == ("unallocated",) * 4


def test_otlp_gpu_metrics_with_host_id_tie_a_cur_line_item_to_their_host(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """End to end: a Collector's `ec2` detector sets `host.id`; CUR 2.0 names the instance."""
    t0 = int(datetime(2026, 10, 6, 5, tzinfo=UTC).timestamp())
    gpu = [attr("hw.id", "GPU-1"), attr("hw.type", "gpu"), attr("hw.model", "NVIDIA A10G")]
    points = [
        {"timeUnixNano": str((t0 + 60 * m) * 10**9), "asDouble": 0.8, "attributes": gpu}
        for m in range(60)
    ]
    resource = [attr("host.name", "ip-10-0-1-23.ec2.internal"), attr("host.id", "i-0example1"),
                attr("deployment.environment.name", "aws-us-east-1"),
                attr("k8s.pod.name", "vllm-mistral-0")]  # fmt: skip
    metric = {"name": "hw.gpu.utilization", "gauge": {"dataPoints": points}}
    doc = {
        "resourceMetrics": [
            {"resource": {"attributes": resource}, "scopeMetrics": [{"metrics": [metric]}]}
        ]
    }
    metrics = tmp_path / "gpu-metrics.json"
    metrics.write_text(json.dumps(doc), encoding="utf-8")
    assert ingest_gpu(warehouse, [GpuInput(str(metrics))], Config()).report.ok
    untagged_items = [{**row, "resource_tags": "{}"} for row in cur2_rows()]
    delivery(tmp_path / "cur2", [untagged_items])
    load(warehouse, tmp_path / "cur2" / "exp")
    with warehouse.read() as con:
        [(workload, sample_id)] = con.execute(
            "SELECT DISTINCT workload, host_id FROM gpu_samples"
        ).fetchall()
        assert con.execute("SELECT DISTINCT host_id FROM rollup_gpu_hours").fetchall() == [
            ("i-0example1",)
        ]
    assert sample_id == "i-0example1" and workload
    found = by_resource(attributed(warehouse, Config()))
    assert found["i-0example1"] == ("aws-us-east-1", workload, "unallocated", "gpu-host")
    assert found["i-0example2"] == ("unallocated",) * 4


CONFIG = """
[[environments]]
name = "Prod"
[[environments]]
name = "aws-oregon"
provider = "aws"
region = "us-west-2"
[[environments]]
name = "aws-ohio-a"
provider = "aws"
region = "us-east-2"
[[environments]]
name = "aws-ohio-b"
provider = "aws"
region = "us-east-2"
[[models]]
name = "Llama-70B"

[[attribution.resources]]
pattern = "arn:aws:sagemaker:*:endpoint/LLAMA-*"
environment = "Prod"
model = "llama-70b"
[[attribution.resources]]
pattern = "re:/resourcegroups/rg-search/"
cost_center = "search"
[[attribution.regions]]
provider = "aws"
region = "eu-west-1"
environment = "aws-ireland"
"""


def config(text: str = CONFIG) -> Config:
    return parse(tomllib.loads(text), "attribution.toml")


def test_focus_rows_by_tags_resources_gpu_hosts_regions_and_the_unallocated_rest(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    load(warehouse, focus_file(tmp_path / "f.csv", [
        {"resource": "tagged", "tags": {"Environment": "PROD", "user:Model": "LLAMA-70b",
                                        "resourceTags/user:Team": "ml", "aws:team": "no"}},
        {"resource": "arn:aws:sagemaker:us-east-1:1:endpoint/llama-a", "region": "eu-west-1"},
        {"resource": "arn:aws:ec2:us-east-1:1:instance/i-0gpu1", "region": "us-west-2"},
        {"resource": "ireland", "region": "EU-WEST-1"},
        {"resource": "oregon", "region": "us-west-2", "tags": {"team": "web"}},
        {"resource": "ohio", "region": "us-east-2", "cost": "7.5"},
        {"resource": "other-cloud", "provider": "ExampleCloud", "tags": {"user:team": "x"}},
        {"resource": "", "cost": "2.25"},
    ]))  # fmt: skip
    insert_rollup(warehouse, [("I-0GPU1", "gpu-env", None, "mistral-7b", 3.0),
                              ("i-0gpu1", "other-env", None, None, 1.0)])  # fmt: skip
    frame = attributed(warehouse, config(), *RANGE)
    found = by_resource(frame)
    none = ("unallocated",) * 4
    sagemaker, ec2 = (
        "arn:aws:sagemaker:us-east-1:1:endpoint/llama-a",
        "arn:aws:ec2:us-east-1:1:instance/i-0gpu1",
    )
    assert found == {
        # a tag names a configured environment or model in another case: its own spelling
        "tagged": ("Prod", "Llama-70B", "ml", "tag"),
        # a resource rule beats the region; its model is lowered to the configured spelling
        sagemaker: ("Prod", "Llama-70B", "unallocated", "resource"),
        # the GPU host behind the instance beats its region: most GPU-hours win
        ec2: ("gpu-env", "mistral-7b", "unallocated", "gpu-host"),
        "ireland": ("aws-ireland", "unallocated", "unallocated", "region"),
        "oregon": ("aws-oregon", "unallocated", "web", "tag"),
        # two environments claim us-east-2: the region decides nothing
        "ohio": none,
        # AWS's prefixes are stripped from AWS rows only
        "other-cloud": none,
        None: none,
    }  # fmt: skip
    oregon = frame.filter(frame["ResourceId"] == "oregon").row(0, named=True)
    assert (oregon["environment_how"], oregon["cost_center_how"]) == ("region", "tag")
    count, total = ledger_total(warehouse)
    assert (frame.height, frame["EffectiveCost"].sum()) == (count, total) == (8, Decimal("15.75"))
    table = untagged(warehouse, config(), *RANGE)
    biggest = [
        (r["ResourceId"], r["EffectiveCost"], r["rows"]) for r in table.iter_rows(named=True)
    ]
    assert biggest == [
        ("ohio", Decimal("7.5"), 1), (None, Decimal("2.25"), 1), ("other-cloud", Decimal(1), 1)
    ]  # fmt: skip
    no_center = untagged(warehouse, config(), *RANGE, dimension="cost_center", limit=2)
    assert no_center["ResourceId"].to_list() == ["ohio", None]
    # from rows a page has already placed, the same tables
    for dimension in (None, "cost_center", "model"):
        again = untagged(warehouse, config(), *RANGE, dimension=dimension, rows=frame)
        assert again.equals(untagged(warehouse, config(), *RANGE, dimension=dimension))
    with pytest.raises(ValueError, match="dimension must be one of"):
        untagged(warehouse, config(), dimension="team")


def test_one_tag_set_on_many_rows_is_read_as_each_row_alone_would_be(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """Tags are taken apart once per distinct tag set: the same set on rows of two providers
    still loses AWS's prefixes on the AWS rows only, the first key of each list wins over a
    later one whatever the order in the JSON, and a key written in two cases wins by its raw
    spelling, as it did per row."""
    shared = {"env": "late", "user:team": "ml", "Environment": "first", "environment": "second"}
    load(warehouse, focus_file(tmp_path / "f.csv", [
        *({"resource": f"aws-{i}", "tags": shared} for i in range(3)),
        *({"resource": f"x-{i}", "provider": "ExampleCloud", "tags": shared} for i in range(2)),
        {"resource": "env-only", "tags": {"env": "late", "team": "web"}},
    ]))  # fmt: skip
    found = by_resource(attributed(warehouse, Config(), *RANGE))
    assert found == {
        **{f"aws-{i}": ("first", "unallocated", "ml", "tag") for i in range(3)},
        **{f"x-{i}": ("first", "unallocated", "unallocated", "tag") for i in range(2)},
        "env-only": ("late", "unallocated", "web", "tag"),
    }


def test_the_public_focus_sample_is_attributed_by_its_environment_tag(
    warehouse: Warehouse, fixtures_dir: Path
) -> None:
    sample = fixtures_dir / "billing" / "focus-1.0-sample-excerpt.csv"
    load(warehouse, sample)
    with sample.open(encoding="utf-8-sig", newline="") as fh:
        tags = [
            json.loads(r["Tags"]) if r["Tags"] not in ("", "NULL") else {}
            for r in csv.DictReader(fh)
        ]

    def environment(tags: dict[str, str]) -> str:
        lowered = {k.lower(): v for k, v in sorted(tags.items())}  # no AWS prefixes in it
        return next((lowered[k] for k in ("environment", "env") if lowered.get(k)), "unallocated")

    expected = Counter(environment(t) for t in tags)
    assert expected["unallocated"] < len(tags) / 2
    frame = attributed(warehouse, Config())
    assert Counter(frame["environment"].to_list()) == expected
    assert set(frame["how"].unique()) <= {"tag", "unallocated"}
    assert (
        frame["EffectiveCost"].sum()
        == ledger_total(
            warehouse, datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)
        )[1]
    )


def test_aws_cur_tags_legacy_and_cur2_lose_their_prefixes(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    legacy = tmp_path / "legacy.csv"
    legacy.write_text(
        "identity/LineItemId,bill/PayerAccountId,bill/BillingPeriodStartDate,"
        "bill/BillingPeriodEndDate,lineItem/UsageAccountId,lineItem/LineItemType,"
        "lineItem/UsageStartDate,lineItem/UsageEndDate,lineItem/ProductCode,"
        "lineItem/CurrencyCode,lineItem/UnblendedCost,lineItem/ResourceId,"
        "resourceTags/user:Cost-Center,resourceTags/aws:createdBy\n"
        "a,111,2026-09-01T00:00:00Z,2026-10-01T00:00:00Z,111,Usage,2026-09-02T00:00:00Z,"
        "2026-09-02T01:00:00Z,AmazonEC2,USD,1.5,i-legacy,CC-17,root\n",
        encoding="utf-8",
    )
    load(warehouse, legacy)
    delivery(tmp_path / "cur2", [cur2_rows()])
    load(warehouse, tmp_path / "cur2" / "exp")
    frame = attributed(warehouse, Config())
    found = by_resource(frame)
    assert found["i-legacy"] == ("unallocated", "unallocated", "CC-17", "tag")
    cur2 = frame.filter(frame["ResourceId"].str.starts_with("i-0example"))
    assert set(zip(cur2["model"], cur2["cost_center"], cur2["how"], strict=True)) == {
        ("llama-70b", "ml", "tag")
    }


GCP_HEAD = ("billing_account_id,service.id,service.description,sku.id,sku.description,"
            "usage_start_time,usage_end_time,project.id,project.name,project.labels,labels,"
            "cost,currency,invoice.month,cost_type,resource.name,resource.global_name")  # fmt: skip


def test_gcp_project_labels_are_inherited_below_the_rows_own_labels(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    project = json.dumps(
        [{"key": "Environment", "value": "staging"}, {"key": "team", "value": "research"}]
    )
    own = json.dumps([{"key": "team", "value": "vision"}, {"key": "model", "value": "gemma"}])
    line = ("ACCT,s,Compute Engine,k,GPU,2026-10-02T00:00:00Z,2026-10-02T01:00:00Z,p1,P,{p},{o},"
            "{c},USD,202610,regular,vm,//compute/{r}\n")  # fmt: skip
    path = tmp_path / "gcp.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(GCP_HEAD + "\n")
        # the export's project labels are not checked on load: anything but a list is none
        odd = '[1, "x", {"key": "env", "value": "ok"}]'
        cases = [(project, own, "a"), (project, "[]", "b"), ("not json", "[]", "c"),
                 ('{"key": "env"}', "[]", "d"), (odd, "[]", "e")]  # fmt: skip
        for n, (labels_of_project, labels, resource) in enumerate(cases, 2):
            cost = str(n)
            fields = [labels_of_project, labels]
            quoted = ['"' + f.replace('"', '""') + '"' for f in fields]
            fh.write(line.format(p=quoted[0], o=quoted[1], c=cost, r=resource))
    load(warehouse, path)
    found = by_resource(attributed(warehouse, Config()))
    assert found["//compute/a"] == ("staging", "gemma", "vision", "tag")
    assert found["//compute/b"] == ("staging", "unallocated", "research", "inherited")
    assert found["//compute/c"] == found["//compute/d"] == ("unallocated",) * 4
    assert found["//compute/e"] == ("ok", "unallocated", "unallocated", "inherited")


def test_gcp_project_labels_in_a_json_lines_export(warehouse: Warehouse, tmp_path: Path) -> None:
    record = {
        "billing_account_id": "ACCT", "service": {"id": "s", "description": "Compute Engine"},
        "sku": {"id": "k", "description": "GPU"}, "usage_start_time": "2026-10-02T00:00:00Z",
        "usage_end_time": "2026-10-02T01:00:00Z",
        "project": {"id": "p1", "name": "P", "labels": [{"key": "env", "value": "lab"}]},
        "labels": [], "cost": 4.5, "currency": "USD", "invoice": {"month": "202610"},
        "cost_type": "regular", "resource": {"name": "vm", "global_name": "//compute/j"},
    }  # fmt: skip
    path = tmp_path / "gcp.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    load(warehouse, path)
    assert by_resource(attributed(warehouse, Config()))["//compute/j"][0] == "lab"


def test_azure_resource_groups_and_cost_centers_are_inherited(
    warehouse: Warehouse, fixtures_dir: Path
) -> None:
    sample = fixtures_dir / "billing" / "azure-EA_ActualCost_Small.csv"
    load(warehouse, sample)
    with sample.open(encoding="utf-8-sig", newline="") as fh:
        records = list(csv.DictReader(fh))
    expected = Counter((r["ResourceGroup"] or r["CostCenter"] or "unallocated") for r in records)
    keys = config('[attribution]\ncost_center_keys = ["resource_group", "cost_center"]\n')
    frame = attributed(warehouse, keys)
    assert Counter(frame["cost_center"].to_list()) == expected
    assert set(frame.filter(frame["cost_center"] != "unallocated")["cost_center_how"]) <= {
        "inherited",
        "tag",
    }
    # a resource rule matches the resource group in an id of any case
    rule = config(
        '[[attribution.resources]]\npattern = "re:/resourcegroups/ftk-micflan-"\nmodel = "finops"\n'
    )
    wanted = [r for r in records if "/resourcegroups/ftk-micflan-" in r["ResourceId"].lower()]
    matched = attributed(warehouse, rule).filter(pl.col("model") == "finops")
    assert matched.height == len(wanted) == 2
    assert set(matched["model_how"]) == {"resource"}
    # (its cost center stays the inherited one: inherited comes before resource)
    assert set(matched["cost_center_how"]) == {"inherited"}


def test_modelled_rows_keep_their_environment_and_take_their_pools_main_workload(
    warehouse: Warehouse,
) -> None:
    with warehouse.write() as con:
        con.execute(
            "INSERT INTO billing (BilledCost, BillingAccountId, BillingCurrency, "
            "BillingPeriodStart, ChargePeriodStart, ChargePeriodEnd, EffectiveCost, "
            "ProviderName, ResourceId, RegionId, x_ReplaceUnit, x_Modelled, x_Environment, x_Pool) "
            "VALUES (0, 'dc', 'EUR', TIMESTAMPTZ '2026-10-01 00:00:00+00', "
            "TIMESTAMPTZ '2026-10-02 00:00:00+00', TIMESTAMPTZ '2026-10-03 00:00:00+00', 42.5, "
            "'on-prem:dc', 'on-prem%3Adc/h100', 'eu-west-1', 'modelled/dc/2026-10-02', true, "
            "'dc', 'h100')"
        )
    # e5 holds the pool for longer in all (6 GPU-hours over 3 hours) than qwen in its one
    insert_rollup(warehouse, [("h1", "dc", "h100", "qwen", 5.0), ("h2", "dc", "h100", "e5", 2.0),
                              ("h3", "dc", "a100", "other", 9.0)])  # fmt: skip
    for hour in (6, 7):
        insert_rollup(warehouse, [("h2", "dc", "h100", "e5", 2.0)], hour=hour)
    row = attributed(warehouse, config(), *RANGE).row(0, named=True)
    assert (row["environment"], row["model"], row["how"]) == ("dc", "e5", "modelled")
    assert (row["environment_how"], row["model_how"], row["cost_center_how"]) == (
        "modelled", "modelled", "unallocated",
    )  # fmt: skip


HOSTILE = [
    "'; DROP TABLE billing; --",
    "<script>alert(1)</script>",
    "$lo",
    "x" * 200_000,
    'Robert"); DELETE FROM billing WHERE ("1" = "1',
]


def test_hostile_tag_values_and_keys_are_stored_and_matched_as_text(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    items = [{"resource": f"r{i}", "tags": {"environment": v, "mo\"del.$[*]": v, "team": v}}
             for i, v in enumerate(HOSTILE)]  # fmt: skip
    load(warehouse, focus_file(tmp_path / "h.csv", items))
    odd_keys = config('[attribution]\nmodel_keys = ["mo\\"del.$[*]"]\n')
    frame = attributed(warehouse, odd_keys, *RANGE)
    assert frame.sort("ResourceId")["environment"].to_list() == HOSTILE
    assert frame.sort("ResourceId")["model"].to_list() == HOSTILE
    assert frame.sort("ResourceId")["cost_center"].to_list() == HOSTILE
    assert ledger_total(warehouse)[0] == len(HOSTILE)  # the table is still there


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"resources": [{"pattern": "re:(unclosed", "model": "m"}]},
         r"^a\.toml: attribution\.resources\[0\]\.pattern: not a valid regular expression"),
        ({"resources": [{"pattern": "i-*"}]},
         r"^a\.toml: attribution\.resources\[0\]: a resource rule must give at least one"),
        ({"resources": [{"pattern": "re:", "model": "m"}]},
         r"^a\.toml: attribution\.resources\[0\]\.pattern: must not be empty"),
        ({"resources": [{"pattern": "i-*", "model": "m", "modle": "x"}]},
         r"^a\.toml: attribution\.resources\[0\]\.modle: unknown key"),
        ({"cost_center_keys": ["user:team"]},
         r"^a\.toml: attribution\.cost_center_keys: write the tag key without AWS's prefix"),
        ({"environment_keys": [" "]}, r"^a\.toml: attribution\.environment_keys: a tag key"),
        ({"regions": [{"region": "us-east-1"}]},
         r"^a\.toml: attribution\.regions\[0\]\.environment is required"),
        ({"colour": 1}, r"^a\.toml: attribution\.colour: unknown key"),
    ],
)  # fmt: skip
def test_a_bad_attribution_config_fails_naming_the_key(
    section: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse({"attribution": section}, "a.toml")


# -- nothing is ever dropped -----------------------------------------------------------------------
WORDS = st.sampled_from(["prod", "Prod", "dev", "team", "ml", "i-1", "us-east-1", "", "x*"])
TAGS = st.dictionaries(
    st.sampled_from(
        [
            "environment",
            "Env",
            "user:model",
            "resourceTags/user:team",
            "aws:env",
            "cost_center",
            "odd",
        ]
    ),
    WORDS | st.text(max_size=5),
    max_size=4,
)
ITEMS = st.lists(
    st.fixed_dictionaries({
        "provider": st.sampled_from(["AWS", "Microsoft", "Google Cloud", "ExampleCloud"]),
        "region": st.sampled_from(["", "us-east-1", "EU-west-1"]),
        "resource": st.sampled_from(["", "i-1", "i-2", "arn:x/i-3", "/resourcegroups/rg/vm"]),
        "cost": st.decimals(-1000, 1000, places=3).map(str),
        "tags": st.none() | TAGS,
    }),
    min_size=1, max_size=12,
)  # fmt: skip
RULES = st.lists(
    st.fixed_dictionaries({"pattern": st.sampled_from(["i-*", "re:rg", "*3", "re:^/"]),
                           "environment": WORDS, "cost_center": st.just("cc")}),
    max_size=3,
)  # fmt: skip
REGIONS = st.lists(
    st.fixed_dictionaries({"region": st.sampled_from(["us-east-1", "eu-west-1"]),
                           "environment": st.sampled_from(["a", "b"]),
                           "provider": st.sampled_from(["", "aws", "azure", "gcp"])}),
    max_size=2,
)  # fmt: skip


def test_every_row_is_attributed_once_and_the_costs_add_up_to_the_ledgers() -> None:
    with tempfile.TemporaryDirectory() as folder:
        wh = Warehouse(Path(folder) / "w.duckdb")

        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
        @given(ITEMS, RULES, REGIONS)
        def check(items: list[dict[str, Any]], rules: list[Any], regions: list[Any]) -> None:
            with wh.write() as con:
                con.execute("DELETE FROM billing")
            load(wh, focus_file(Path(folder) / "p.csv", items))
            cfg = parse({"attribution": {"resources": rules, "regions": regions}}, "p.toml")
            frame = attributed(wh, cfg, *RANGE)
            count, total = ledger_total(wh)
            assert frame.height == count == len(items)
            assert frame["EffectiveCost"].sum() == total
            assert set(frame["how"]) <= set(HOWS)
            assert frame["environment"].null_count() == 0
            spent = untagged(wh, cfg, *RANGE, limit=100)
            assert (
                spent["EffectiveCost"].sum()
                == frame.filter(frame["how"] == "unallocated")["EffectiveCost"].sum()
            )

        check()


PATTERNS = st.sampled_from(
    ["i-*", "I-1*", "*", "*/rg-?/*", "[a-c]*", "re:^i-", "re:(?P<r1>rg)", "re:1$", "*x*y"]
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(PATTERNS, max_size=5),
    st.lists(st.sampled_from(["i-1", "I-2x", "/rg-a/vm", "b", "axy", "zz", ""]), max_size=6),
)
def test_resource_rules_match_in_order_as_each_pattern_alone_would(
    patterns: list[str], ids: list[str]
) -> None:
    """Runs of globs are matched as one alternation: the same first rule as one by one."""
    rules = [{"pattern": p, "model": f"rule-{i}"} for i, p in enumerate(patterns)]
    cfg = parse({"attribution": {"resources": rules}}, "r.toml")
    got = {m["resource_id"]: m["model"] for m in resource_matches(ids, cfg)}
    compiled = [(compile_pattern(r.pattern), r.model) for r in cfg.attribution.resources]
    naive = {rid: next((m for p, m in compiled if p.search(rid)), None) for rid in ids}
    assert got == {rid: m for rid, m in naive.items() if m is not None}
