"""What the demo's clouds charge for, day by day, before any export format is chosen.

Why one place: the AWS CUR and the Google Cloud FOCUS writers must bill the same fleet the
traces and the GPU telemetry describe, so both read from here which GPUs each cloud pool
runs on which host and which deployment holds them (``gpu_inventory``), how many requests
each environment served that day (``traffic.expected_rates``, the rates the traces were
drawn from), and on which day of the range the commitment is bought and the cost anomaly
happens (fractions of the range, like the incidents, so a three-day run has them too).

Money is `Decimal` throughout and written with ten decimals, as the exports do: a test
compares the ledger's sums with the summary's exactly, so nothing here is a float.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sample_data.gpu_inventory import inventory
from sample_data.plan import Plan
from sample_data.traffic import expected_rates
from sample_data.traffic_shape import DAY_NS, MIN_PER_DAY, NS_PER_S

PLACES = Decimal("0.0000000001")
PURCHASE_AT = 1 / 3  # the commitments are bought on the day at this fraction of the range
ANOMALY_AT = 0.75  # and the data-transfer spike happens on this one
ANOMALY_FACTOR = 8
# Who owns each model's spend (the `team` tag); GPUs no deployment holds are the platform's.
TEAMS = {
    "llama-3.1-70b-instruct": "genai-platform",
    "mistral-7b-instruct": "assistant",
    "fraud-classifier": "risk",
    "bge-large-en-v1.5": "search",
    "yolov8-l": "vision",
}
PLATFORM_TEAM = "ml-infra"


def money(x: Decimal) -> str:
    """Ten decimals, as CUR and the FOCUS exports write amounts."""
    return format(x.quantize(PLACES), "f")


def q(x: Decimal) -> Decimal:
    return x.quantize(PLACES)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def month_of(t: datetime) -> str:
    return t.strftime("%Y-%m")


def month_bounds(month: str) -> tuple[datetime, datetime]:
    start = datetime.strptime(month + "-01", "%Y-%m-%d").replace(tzinfo=UTC)
    nxt = (start + timedelta(days=32)).replace(day=1)
    return start, nxt


def month_hours(month: str) -> Decimal:
    start, end = month_bounds(month)
    return Decimal(int((end - start).total_seconds()) // 3600)


@dataclass(frozen=True)
class Holder:
    """The GPUs of one host that one deployment holds (`model` empty: nobody's, spare)."""

    host: str
    model: str
    gpus: int

    def tags(self, env: str) -> dict[str, str]:
        """The instance's tags: its environment, the model it serves and the owning team."""
        if not self.model:
            return {"environment": env, "team": PLATFORM_TEAM}
        return {"environment": env, "model": self.model, "team": TEAMS[self.model]}


@dataclass(frozen=True)
class Day:
    """One 24-hour slice of the range as the bills see it."""

    index: int
    start: datetime
    end: datetime
    requests: dict[str, int]  # environment -> expected requests that day

    @property
    def month(self) -> str:
        return month_of(self.start)

    @property
    def date(self) -> str:
        return self.start.strftime("%Y-%m-%d")


@dataclass
class CloudFacts:
    """The fleet as the clouds bill it: hosts of each cloud pool and their holders."""

    plan: Plan
    hosts: dict[str, list[str]] = field(default_factory=dict)  # env -> hosts, pool order
    holders: dict[str, list[Holder]] = field(default_factory=dict)  # host -> holders
    gpus_per_host: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        counts: dict[str, Counter[str]] = {}
        for gpu in inventory(self.plan.fleet):
            if self.plan.fleet.environment(gpu.env).kind != "cloud":
                continue
            hosts = self.hosts.setdefault(gpu.env, [])
            if gpu.host not in hosts:
                hosts.append(gpu.host)
            model = gpu.deployment.model if gpu.deployment else ""
            counts.setdefault(gpu.host, Counter())[model] += 1
        for host, by_model in counts.items():
            self.gpus_per_host[host] = sum(by_model.values())
            self.holders[host] = [Holder(host, m, n) for m, n in by_model.items()]

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(self.plan.start_ns // NS_PER_S, UTC)

    @property
    def end(self) -> datetime:
        return datetime.fromtimestamp(self.plan.end_ns // NS_PER_S, UTC)

    def cloud(self, provider: str) -> str:
        """The environment of the fleet on `provider` (the demo has one per cloud)."""
        return next(e.name for e in self.plan.fleet.environments if e.provider == provider)

    def pool_gpu(self, env: str) -> str:
        return next(p.gpu for p in self.plan.fleet.pools_of(env))

    def days(self) -> list[Day]:
        out = []
        plan = self.plan
        for i in range(plan.days):
            day_ns = plan.start_ns + i * DAY_NS
            requests: Counter[str] = Counter()
            for dp in plan.deployments:
                rates = expected_rates(dp, plan, day_ns, MIN_PER_DAY)
                requests[dp.dep.env] += round(float(rates.sum()))
            start = datetime.fromtimestamp(day_ns / NS_PER_S, UTC)
            out.append(Day(i, start, start + timedelta(days=1), dict(requests)))
        return out

    def day_at(self, fraction: float) -> int:
        return min(self.plan.days - 1, int(fraction * self.plan.days))


@dataclass
class Row:
    """One line item of an export: its cells as written, and the BilledCost and
    EffectiveCost it states (the generator's own account, which the tests compare with the
    ledger's), the month it is billed in and what it is for."""

    cells: dict[str, str]
    billed: Decimal
    effective: Decimal
    month: str
    service: str
    day: str
    kind: str  # usage, covered, unused, purchase, credit
    tagged: bool


def totals(rows: list[Row]) -> dict[str, dict[str, str | int]]:
    """Per month: BilledCost and EffectiveCost as decimal strings, and the line items."""
    billed: dict[str, Decimal] = defaultdict(Decimal)
    effective: dict[str, Decimal] = defaultdict(Decimal)
    count: Counter[str] = Counter()
    for r in rows:
        billed[r.month] += r.billed
        effective[r.month] += r.effective
        count[r.month] += 1
    return {
        m: {"billed_cost": money(billed[m]), "effective_cost": money(effective[m]),
            "line_items": count[m]}
        for m in sorted(count)
    }  # fmt: skip
