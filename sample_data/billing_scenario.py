"""The demo's cloud bills: every month of the range for each cloud environment, in the
format that cloud really delivers, and a restatement of the first month as a second
delivery; with the ground truth (totals, anomaly, commitment, files) for ``scenario.json``.

Why a second delivery: providers restate closed months (a line billed twice removed, a
meter corrected, a late line added), and the ledger must end with the restated totals
after loading every delivery in order. The AWS month is restated as a second "create new"
export run with a newer manifest (`ingest/billing/cur_manifest.py` picks the newest of a
period's manifests, so even the first delivery's call reads the newest run once it is on
disk); the Google Cloud month as a newer FOCUS file of the same account and month, which
replaces the earlier file's unit when loaded after it.

Layout under `billing/`: `aws/hybridlens-cur2/{data,metadata}/BILLING_PERIOD=YYYY-MM/<run>/`
and `gcp/focus/YYYY-MM/focus-<version>-<delivery date>.csv`. Files carry their delivery
time as modification time (the CUR reader orders runs by it); their bytes depend only on
the scenario's arguments.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from statistics import median
from typing import Any

from sample_data import billing_cur, billing_focus
from sample_data.billing_items import (
    ANOMALY_AT,
    ANOMALY_FACTOR,
    PURCHASE_AT,
    CloudFacts,
    Day,
    Row,
    iso,
    money,
    month_bounds,
    totals,
)
from sample_data.ids import short_hash
from sample_data.plan import Plan


def _aws(facts: CloudFacts, days: list[Day], restated_month: str, *, restated: bool) -> list[Row]:
    covered, anomaly = facts.day_at(PURCHASE_AT), facts.day_at(ANOMALY_AT)
    out: list[Row] = []
    for day in days:
        flag = restated if day.month == restated_month else None
        charges = billing_cur.charges(
            facts, day, covered_from=covered, anomaly_day=anomaly, restated=flag
        )
        out += billing_cur.rows(charges, day)
    return out


def _gcp(facts: CloudFacts, days: list[Day], restated_month: str, *, restated: bool) -> list[Row]:
    covered = facts.day_at(PURCHASE_AT)
    out: list[Row] = []
    for day in days:
        flag = restated if day.month == restated_month else None
        out += billing_focus.rows(facts, day, covered_from=covered, restated=flag)
    return out


class BillingWriter:
    """Writes the bills of a plan's range under `outdir/billing/` and describes them."""

    def __init__(self, outdir: Path, plan: Plan) -> None:
        self.outdir = outdir
        self.facts = CloudFacts(plan)
        self.days = self.facts.days()
        self.months = list(dict.fromkeys(d.month for d in self.days))
        self.files: list[Path] = []
        self.nbytes = 0

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.outdir).as_posix()

    def _delivered(self, month: str) -> Any:
        return min(month_bounds(month)[1], self.facts.end)

    def write(self) -> dict[str, Any]:
        """Write every file; the summary for ``scenario.json``'s `billing`."""
        facts, restated_month, last = self.facts, self.months[0], self.months[-1]
        late = facts.end + timedelta(days=1)  # the restatement comes after every export
        aws_env, gcp_env = facts.cloud("aws"), facts.cloud("gcp")
        by_month: dict[str, list[Day]] = defaultdict(list)
        for day in self.days:
            by_month[day.month].append(day)
        exports: list[Path] = []
        restatement: list[Path] = []
        final: dict[str, list[Row]] = {aws_env: [], gcp_env: []}
        before: dict[str, list[Row]] = {}
        aws_root = self.outdir / "billing" / "aws"
        gcp_root = self.outdir / "billing" / "gcp" / "focus"
        versions: dict[str, str] = {}
        for month in self.months:
            days = by_month[month]
            aws_rows = _aws(facts, days, restated_month, restated=False)
            gcp_rows = _gcp(facts, days, restated_month, restated=False)
            run = _run_id(month, "export")
            exports += billing_cur.write_run(aws_root, month, run, aws_rows, self._delivered(month))
            version = "1.4" if month == last and last != restated_month else "1.2"
            versions[month] = version
            name = f"focus-{version}-{self._delivered(month):%Y-%m-%d}.csv"
            exports.append(
                billing_focus.write(
                    gcp_root / month / name, version, gcp_rows, self._delivered(month)
                )
            )
            if month == restated_month:
                before = {aws_env: aws_rows, gcp_env: gcp_rows}
                aws_rows = _aws(facts, days, restated_month, restated=True)
                gcp_rows = _gcp(facts, days, restated_month, restated=True)
                run = _run_id(month, "restatement")
                restatement += billing_cur.write_run(aws_root, month, run, aws_rows, late)
                version = "1.4" if last == restated_month else "1.2"
                name = f"focus-{version}-{late:%Y-%m-%d}.csv"
                restatement.append(
                    billing_focus.write(gcp_root / month / name, version, gcp_rows, late)
                )
                versions[f"{month} restated"] = version
            final[aws_env] += aws_rows
            final[gcp_env] += gcp_rows
        self.files = exports + restatement
        self.nbytes = sum(p.stat().st_size for p in self.files)
        return self._summary(final, before, restated_month, versions, exports, restatement, late)

    def _summary(
        self,
        final: dict[str, list[Row]],
        before: dict[str, list[Row]],
        restated_month: str,
        versions: dict[str, str],
        exports: list[Path],
        restatement: list[Path],
        late: Any,
    ) -> dict[str, Any]:
        facts = self.facts
        aws_env, gcp_env = facts.cloud("aws"), facts.cloud("gcp")
        purchase_day = self.days[facts.day_at(PURCHASE_AT)].date
        clouds = {
            aws_env: {"provider": "AWS", "format": "aws-cur-2.0", "account": billing_cur.PAYER,
                      "currency": "USD", "months": totals(final[aws_env])},
            gcp_env: {"provider": billing_focus.PROVIDER, "account": billing_focus.ACCOUNT,
                      "currency": "USD", "months": totals(final[gcp_env]),
                      "format": {m: f"focus-{v}" for m, v in versions.items()}},
        }  # fmt: skip
        restated = {
            "month": restated_month,
            "delivered": iso(late),
            "changes": "a line billed twice removed, a snapshot's size corrected, a late line "
            "added (CloudWatch on AWS, Cloud Logging on Google Cloud)",
            "before": {env: totals(rows)[restated_month] for env, rows in before.items()},
            "after": {env: totals(rows)[restated_month] for env, rows in final.items()},
        }
        commitments = {
            aws_env: {"id": billing_cur.SP_ARN, "type": "Savings Plan", "purchased": purchase_day,
                      "upfront": money(billing_cur.SP_COMMITMENT * billing_cur.SP_TERM_HOURS),
                      "covers": facts.hosts[aws_env][0]},
            gcp_env: {"id": billing_focus.CUD_ID, "type": "Committed Use Discount",
                      "purchased": purchase_day, "gpus": billing_focus.COMMITTED_GPUS,
                      "upfront": money(Decimal(billing_focus.COMMITTED_GPUS
                                               * billing_focus.TERM_HOURS)
                                       * billing_focus.GPUS[facts.pool_gpu(gcp_env)][2]),
                      "covers": facts.hosts[gcp_env][0]},
        }  # fmt: skip
        credits: dict[str, dict[str, str]] = {}
        for env, rows in final.items():
            sums: dict[str, Decimal] = defaultdict(Decimal)
            for r in rows:
                if r.kind == "credit":
                    sums[r.month] += r.billed
            credits[env] = {m: money(v) for m, v in sorted(sums.items())}
        return {
            "clouds": clouds,
            "restated": restated,
            "commitments": commitments,
            "credits": credits,
            "untagged": {env: sum(1 for r in rows if not r.tagged) for env, rows in final.items()},
            "anomaly": self._anomaly(final[aws_env], aws_env),
            "deliveries": [
                {"name": "exports", "files": [self._rel(p) for p in exports]},
                {
                    "name": "restatement",
                    "delivered": iso(late),
                    "files": [self._rel(p) for p in restatement],
                },
            ],
            "files": [self._rel(p) for p in self.files],
        }

    def _anomaly(self, rows: list[Row], env: str) -> dict[str, Any]:
        """The injected spike: its day and service, that day's EffectiveCost and the median
        of the service's other days (what a detector compares against)."""
        day = self.days[self.facts.day_at(ANOMALY_AT)].date
        service = billing_cur.DT
        per_day: dict[str, Decimal] = defaultdict(Decimal)
        for r in rows:
            if r.service == service:
                per_day[r.day] += r.effective
        others = [v for d, v in per_day.items() if d != day]
        return {
            "day": day,
            "service": service,
            "environment": env,
            "provider": "AWS",
            "factor": ANOMALY_FACTOR,
            "effective_cost": money(per_day[day]),
            "usual_effective_cost": money(Decimal(median(others))) if others else None,
        }


def _run_id(month: str, what: str) -> str:
    h = short_hash("run", month, what, n=32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
