"""Cost allocation: each day's ledger rows split to models by the stated key (GPU time
held, else requests, or tokens), rounded by largest remainder so the allocation sums
exactly to the ledger, rebuilt whenever billing, spans, GPU samples or the config change;
what cannot be placed is `unallocated` or the environment's own (idle, unmapped, no usage),
never dropped. A hypothesis property checks the totals over missing tags, days without
GPU time, credits and negative corrections."""

from __future__ import annotations

import csv
import json
import tempfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from otlp_factory import NS, SpanSpec, jsonl, traces_request

from hybridlens.ingest_billing import ingest_billing
from ingest.traces import ingest_paths
from warehouse.allocation import PLACES, split
from warehouse.config import Config, parse
from warehouse.db import Warehouse
from warehouse.load import store_config

HEAD = [
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost",
    "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity", "PricingUnit",
    "ProviderName", "PublisherName", "ResourceId", "ServiceCategory", "ServiceName", "Tags",
]  # fmt: skip
ENV = "aws-prod"
TAGS = [None, {"environment": ENV}, {"environment": ENV, "model": "mx"}, {"team": "ml"}]


# -- the split itself -----------------------------------------------------------------------------
def test_largest_remainder_sums_exactly_and_gives_leftover_units_to_the_largest() -> None:
    shares = split(Decimal("1.000000000000"), {"a": 1, "b": 1, "c": 1})
    assert sum(shares.values()) == Decimal("1")
    # 1e12 units / 3: each gets 333333333333, the one unit left goes to the first by name
    assert shares == {
        "a": Decimal("0.333333333334"),
        "b": Decimal("0.333333333333"),
        "c": Decimal("0.333333333333"),
    }
    assert split(Decimal("10"), {"x": 3.0, "y": 1.0}) == {"x": Decimal("7.5"), "y": Decimal("2.5")}


def test_a_credit_splits_like_a_charge_and_zero_weights_get_nothing() -> None:
    shares = split(Decimal("-0.000000000005"), {"a": 1, "b": 1, "none": 0})
    assert set(shares) == {"a", "b"}
    assert sum(shares.values()) == Decimal("-0.000000000005")
    assert sorted(shares.values()) == [Decimal("-3e-12"), Decimal("-2e-12")]
    with pytest.raises(ValueError, match="every weight is 0"):
        split(Decimal("1"), {"a": 0})


@settings(max_examples=300, deadline=None)
@given(
    units=st.integers(min_value=-(10**20), max_value=10**20),
    weights=st.lists(
        st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=8,
    ).filter(lambda ws: any(w > 0 for w in ws)),
)
def test_split_always_sums_to_the_amount_and_each_share_is_within_one_unit(
    units: int, weights: list[float]
) -> None:
    amount = Decimal(units) * PLACES
    keyed = {f"m{i}": w for i, w in enumerate(weights)}
    shares = split(amount, keyed)
    assert sum(shares.values()) == amount
    total = sum(Decimal(str(w)) for w in weights)
    for key, share in shares.items():
        exact = amount * Decimal(str(keyed[key])) / total
        assert abs(share - exact) < PLACES


# -- a small ledger -------------------------------------------------------------------------------
def bill(path: Path, items: list[dict[str, Any]]) -> Path:
    """A FOCUS 1.2 file: per item its `day` (of October 2026), `cost` and `tags` (a dict)."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEAD)
        for i, item in enumerate(items):
            day, cost = item["day"], item.get("cost", "1.00")
            tags = item.get("tags")
            out.writerow([cost, "acct", "Acct", "USD", "2026-11-01T00:00:00Z",
                          "2026-10-01T00:00:00Z", item.get("category", "Usage"), "", "x",
                          f"2026-10-{day + 1:02d}T00:00:00Z", f"2026-10-{day:02d}T00:00:00Z",
                          cost, cost, "AWS", cost, "1", "Hours", "AWS", "AWS",
                          item.get("resource", f"r-{i}"), "Compute", "Compute",
                          "" if tags is None else json.dumps(tags)])  # fmt: skip
    return path


def gpu_hours(wh: Warehouse, day: int, rows: list[tuple[str | None, float, str]]) -> None:
    """GPU use on one October day of ENV: (workload, gpu_hours, state)."""
    with wh.write() as con:
        for i, (workload, hours, state) in enumerate(rows):
            con.execute(
                "INSERT INTO rollup_gpu_hours (hour, environment, pool, host, gpu_uuid, "
                "mig_instance, gpu_share, workload, samples, gpu_hours, state) VALUES "
                "(make_timestamptz(2026, 10, ?, 5, 0, 0, 'UTC'), ?, 'p', 'h', ?, '', 1, ?, 60, "
                "?, ?)",
                [day, ENV, f"GPU-{i}", workload, hours, state],
            )


def requests(wh: Warehouse, day: int, rows: list[tuple[str, float, int]]) -> None:
    """Traffic on one October day of ENV: (model, requests, tokens)."""
    with wh.write() as con:
        for model, n, tokens in rows:
            con.execute(
                "INSERT INTO rollup_hourly (hour, environment, model, version, requests, "
                "requests_raw, errors, input_tokens, output_tokens) VALUES "
                "(make_timestamptz(2026, 10, ?, 7, 0, 0, 'UTC'), ?, ?, 'v1', ?, ?, 0, ?, 0)",
                [day, ENV, model, n, int(n), tokens],
            )


def allocation(wh: Warehouse) -> dict[tuple[Any, ...], Decimal]:
    with wh.read() as con:
        rows = con.execute(
            "SELECT day, environment, model, method, sum(cost) FROM cost_allocation "
            "GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    return {(d, env, model, method): cost for d, env, model, method, cost in rows}


def totals(wh: Warehouse) -> tuple[Any, Any]:
    with wh.read() as con:
        ledger = con.execute("SELECT sum(EffectiveCost) FROM billing").fetchone()
        allocated = con.execute("SELECT sum(cost) FROM cost_allocation").fetchone()
    assert ledger is not None and allocated is not None
    return ledger[0], allocated[0]


def config(key: str = "gpu-seconds") -> Config:
    return parse({"allocation": {"key": key}}, "tests/test_allocation.py")


def load(wh: Warehouse, path: Path, cfg: Config | None = None) -> None:
    cfg = cfg or config()
    store_config(wh, cfg.origin, cfg.to_json())
    assert ingest_billing(wh, [path], cfg).ok


@pytest.fixture
def ledger(warehouse: Warehouse, tmp_path: Path) -> Warehouse:
    env = {"environment": ENV}
    gpu_hours(warehouse, 2, [("m1", 3.0, "busy"), ("m2", 0.5, "idle-held"),
                             ("m2", 0.5, "busy"), (None, 9.0, "idle-free")])  # fmt: skip
    requests(warehouse, 2, [("m1", 100, 10), ("m2", 1, 10)])
    requests(warehouse, 3, [("m1", 1, 1000), ("m2", 2, 3000)])
    load(warehouse, bill(tmp_path / "b.csv", [
        {"day": 2, "cost": "1.00", "tags": env},
        {"day": 2, "cost": "-0.30", "tags": env, "category": "Credit"},
        {"day": 2, "cost": "5", "tags": {**env, "model": "m9"}},
        {"day": 3, "cost": "1.00", "tags": env},
        {"day": 4, "cost": "2.00", "tags": env},
        {"day": 4, "cost": "0.40"},
    ]))  # fmt: skip
    return warehouse


def test_shared_cost_follows_gpu_time_held_then_requests_then_stays(ledger: Warehouse) -> None:
    got = allocation(ledger)
    d2, d3, d4 = date(2026, 10, 2), date(2026, 10, 3), date(2026, 10, 4)
    # day 2: 0.70 net by GPU-hours held (busy or idle-held) with a workload: 3 : 1
    assert got[(d2, ENV, "m1", "gpu-seconds")] == Decimal("0.525")
    assert got[(d2, ENV, "m2", "gpu-seconds")] == Decimal("0.175")
    assert got[(d2, ENV, "m9", "tag")] == Decimal("5")  # a model tag takes the row whole
    # day 3: no GPU time, so requests 1 : 2; the last unit to the largest remainder
    assert got[(d3, ENV, "m1", "requests")] == Decimal("0.333333333333")
    assert got[(d3, ENV, "m2", "requests")] == Decimal("0.666666666667")
    # day 4: no usage at all: the environment keeps it; the untagged row is unallocated
    assert got[(d4, ENV, "unallocated", "no-usage")] == Decimal("2")
    assert got[(d4, "unallocated", "unallocated", "unallocated")] == Decimal("0.4")
    ledger_sum, allocated = totals(ledger)
    assert allocated == ledger_sum == Decimal("9.1")


def test_the_configured_key_tokens_splits_by_tokens(ledger: Warehouse) -> None:
    cfg = config("tokens")
    store_config(ledger, cfg.origin, cfg.to_json())  # a config change rebuilds every day
    got = allocation(ledger)
    d2, d3 = date(2026, 10, 2), date(2026, 10, 3)
    assert got[(d2, ENV, "m1", "tokens")] == got[(d2, ENV, "m2", "tokens")] == Decimal("0.35")
    assert got[(d3, ENV, "m1", "tokens")] == Decimal("0.25")
    assert totals(ledger)[1] == Decimal("9.1")


def test_a_restated_delivery_moves_the_allocation_with_it(
    ledger: Warehouse, tmp_path: Path
) -> None:
    load(
        ledger, bill(tmp_path / "b.csv", [{"day": 3, "cost": "3.00", "tags": {"environment": ENV}}])
    )
    got = allocation(ledger)
    assert {k[0].day for k in got} == {3}  # the replaced days 2 and 4 hold nothing now
    assert got[(date(2026, 10, 3), ENV, "m2", "requests")] == Decimal("2")
    assert totals(ledger) == (Decimal("3"), Decimal("3"))


def test_new_spans_rebuild_the_day_they_fall_on(warehouse: Warehouse, tmp_path: Path) -> None:
    day = datetime.fromtimestamp(1_793_000_000, UTC)  # the OTLP factory's day
    load(warehouse, bill(tmp_path / "b.csv", [{"day": day.day, "tags": {"environment": ENV}}]))
    assert set(allocation(warehouse).values()) == {Decimal("1")}
    spans = [SpanSpec(start_ns=1_793_000_000 * NS + i * NS,
                      attributes={"gen_ai.request.model": model, "gen_ai.operation.name": "chat"})
             for i, model in enumerate(["m1", "m1", "m1", "m2"])]  # fmt: skip
    path = tmp_path / "t.jsonl"
    resource = {"service.name": "s", "deployment.environment.name": ENV}
    path.write_bytes(jsonl(traces_request(resource, spans)))
    assert ingest_paths(warehouse, [path], config()).ok
    got = {k[2]: v for k, v in allocation(warehouse).items()}
    assert got == {"m1": Decimal("0.75"), "m2": Decimal("0.25")}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(
        st.tuples(
            st.integers(2, 4),  # day
            st.decimals(min_value=-50, max_value=500, places=6, allow_nan=False),
            st.sampled_from(TAGS),
        ),
        min_size=1,
        max_size=8,
    ),
    gpu_days=st.sets(st.integers(2, 4)),
    request_days=st.sets(st.integers(2, 4)),
)
def test_the_allocated_total_always_equals_the_ledger_total(
    items: list[tuple[int, Decimal, dict[str, str] | None]],
    gpu_days: set[int],
    request_days: set[int],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(Path(tmp) / "w.duckdb")
        for day in sorted(gpu_days):
            gpu_hours(wh, day, [("m1", 1.0 / 3, "busy"), ("m2", 2.0, "idle-held")])
        for day in sorted(request_days):
            requests(wh, day, [("m1", 7, 1), ("m3", 3, 1)])
        rows = [{"day": d, "cost": str(c), "tags": t} for d, c, t in items]
        load(wh, bill(Path(tmp) / "b.csv", rows))
        with wh.read() as con:
            per_day = con.execute(
                "SELECT day, sum(cost) FROM cost_allocation GROUP BY day ORDER BY day"
            ).fetchall()
            ledger = con.execute(
                "SELECT CAST(ChargePeriodStart AT TIME ZONE 'UTC' AS DATE) AS day, "
                "sum(EffectiveCost) FROM billing GROUP BY day ORDER BY day"
            ).fetchall()
        assert per_day == ledger
