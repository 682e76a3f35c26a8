"""The pure pieces of the dashboard: label formatting, SLO verdicts, down periods, links."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from dashboard import formatting, gpu_figures, overview_figures, tables
from warehouse import definitions, slo


@pytest.mark.parametrize("bad", [None, math.nan, math.inf, -math.inf, "x", True])
def test_missing_values_are_a_dash_never_nan_or_none(bad: object) -> None:
    for fmt in (formatting.fmt_count, formatting.fmt_pct, formatting.fmt_ms, formatting.fmt_pp):
        assert fmt(bad) == formatting.DASH
    assert formatting.fmt_interval(bad, 0.5) == formatting.DASH


def test_labels_carry_their_units() -> None:
    assert formatting.fmt_pct(0.996174) == "99.62%"
    assert formatting.fmt_ms(48.21) == "48.2 ms"
    assert formatting.fmt_ms(4793.7) == "4,794 ms"
    assert formatting.fmt_ms(4793.7, unit=False) == "4,794"
    assert formatting.fmt_interval(0.9026, 0.9365) == "90.3% – 93.7%"
    assert formatting.fmt_pp(0.0038) == "+0.38 pp"
    assert formatting.fmt_count(178213.4) == "178,213"


def _targets(**slos: tuple[float | None, float | None]) -> pl.DataFrame:
    rows = [(env, True, "cloud", "", "", "", p95, avail) for env, (p95, avail) in slos.items()]
    return pl.DataFrame(rows, schema=slo.TARGET_SCHEMA, orient="row")


def _row(env: str, model: str = "m", **values: float | None) -> dict[str, object]:
    base: dict[str, object] = {
        "environment": env,
        "model": model,
        "latency_p95_ms": 100.0,
        "availability": 0.999,
        "uptime": 0.5,  # informs, never judges
        "accuracy": None,
        "accuracy_lo": None,
        "accuracy_hi": None,
        "accuracy_n": 0,
    }
    return base | values


def test_slo_verdicts_and_worst_first_order() -> None:
    frame = pl.DataFrame(
        [
            _row("ok"),
            _row("slow", latency_p95_ms=130.0),
            _row("slow_and_flaky", latency_p95_ms=101.0, availability=0.98),
            _row("unknown"),
            _row("ok", model="acc", accuracy=0.80, accuracy_lo=0.70, accuracy_hi=0.90),
            _row("ok", model="bad", accuracy=0.70, accuracy_lo=0.65, accuracy_hi=0.75),
        ]
    )
    targets = _targets(ok=(120.0, 0.99), slow=(120.0, 0.99), slow_and_flaky=(100.0, 0.99))
    floors = pl.DataFrame([("acc", 0.85), ("bad", 0.85)], schema=slo.FLOOR_SCHEMA, orient="row")
    out = slo.worst_first(slo.evaluate(frame, targets, floors), ["environment", "model"])
    got = [
        (r["environment"], r["model"], r["status"], r["breaches"])
        for r in out.iter_rows(named=True)
    ]
    assert got == [
        ("slow_and_flaky", "m", slo.BREACH, "p95 latency, availability"),
        ("ok", "bad", slo.BREACH, "accuracy"),  # 18% under its floor
        ("slow", "m", slo.BREACH, "p95 latency"),  # 8% over its SLO
        ("ok", "acc", slo.AT_RISK, ""),  # mean below the floor, interval reaches it
        ("ok", "m", slo.MET, ""),
        ("unknown", "m", slo.NO_SLO, ""),
    ]
    assert out.filter(pl.col("environment") == "unknown")["configured"].to_list() == [False]


def test_down_minutes_merge_into_periods() -> None:
    t0 = datetime(2026, 11, 16, 9, 45, tzinfo=UTC)
    minutes = [t0 + timedelta(minutes=m) for m in (0, 1, 2, 20, 100)]
    down = pl.DataFrame(
        {
            "environment": ["gcp"] * 5,
            "minute": minutes,
            "requests": [10.0, 9.0, 0.0, 8.0, 6.0],
            "errors": [9.0, 9.0, 0.0, 8.0, 6.0],
            "expected": [7.0] * 5,
            "cause": ["errors", "errors", "no traffic", "errors", "errors"],
        }
    )
    periods = definitions.down_periods(down)
    assert periods["down_minutes"].to_list() == [4, 1]
    first = periods.row(0, named=True)
    assert first["start"] == t0 and first["end"] == t0 + timedelta(minutes=21)
    assert (first["error_minutes"], first["silent_minutes"]) == (3, 1)
    assert definitions.down_periods(down.clear()).is_empty()


def test_trace_links_keep_the_id_an_id() -> None:
    template = "http://localhost:16686/trace/{trace_id}"
    assert tables.trace_url(template, "abc123") == "http://localhost:16686/trace/abc123"
    hostile = tables.trace_url(template, "x/../../?q=<script>")
    assert hostile.startswith("http://localhost:16686/trace/x%2F..%2F..%2F%3Fq%3D%3Cscript%3E")
    match = re.match(tables.trace_display_pattern(template), tables.trace_url(template, "ab12"))
    assert match and match.group(1) == "ab12"


def test_empty_frames_give_titled_figures_that_say_why() -> None:
    empty = pl.DataFrame(
        schema={"environment": pl.String, "model": pl.String, "period": pl.Datetime("us", "UTC")}
    )
    fig = overview_figures.requests_figure(empty, {}, "day")
    assert fig.layout.title.text.startswith("Requests per day")
    assert fig.layout.annotations[0].text == "No requests in the selected range"


@pytest.mark.parametrize("days", [1, 3, 10**9])
def test_a_huge_default_days_still_gives_a_range_inside_the_data(
    days: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashboard import data

    monkeypatch.setattr(data, "default_days", lambda: days)
    snap = data.Snapshot(
        "w.duckdb",
        "ok",
        first=datetime(2026, 11, 1, 8, tzinfo=UTC),
        last=datetime(2026, 11, 10, 17, tzinfo=UTC),
        requests=1,
    )
    first, last = data.default_range(snap)
    assert last == snap.last_day
    want = {1: snap.last_day, 3: datetime(2026, 11, 8).date()}.get(days, snap.first_day)
    assert first == want


@pytest.mark.parametrize(
    "name",
    [
        "[pay here](https://evil.example)",
        "<img src=x onerror=alert(1)>",
        "**AWS**\n# big",
        "a`b`\\",
    ],
)
def test_names_in_markdown_are_inert(name: str) -> None:
    text = formatting.md_text(name)
    # every ASCII punctuation mark is escaped, so markdown reads each one as itself
    assert not re.search(r"(?<!\\)[\[\]()<>*#`]", text.replace("\\\\", "")), text
    assert "\n" not in text
    assert re.sub(r"\\(.)", r"\1", text) == " ".join(name.split())


def test_ms_changes_are_signed() -> None:
    assert formatting.fmt_ms_change(386.2) == "+386 ms"
    assert formatting.fmt_ms_change(-1150.0, unit=False) == "-1,150"
    assert formatting.fmt_ms_change(None) == formatting.DASH


@pytest.mark.parametrize("rows", [1, 2, 5])
def test_stacked_rows_lay_out_as_make_subplots_does(rows: int) -> None:
    from plotly.subplots import make_subplots

    from dashboard.figure_parts import assembled, stacked_rows

    titles = [f"model {i}" for i in range(rows)]
    spacing = min(0.08, 0.5 / rows)
    ours = assembled(stacked_rows(titles, spacing, x_range=[0, 1])).to_dict()["layout"]
    theirs = make_subplots(
        rows=rows, cols=1, shared_xaxes=True, vertical_spacing=spacing, subplot_titles=titles
    ).to_dict()["layout"]
    for key, axis in theirs.items():
        if key.startswith(("xaxis", "yaxis")):
            mine = {k: v for k, v in ours[key].items() if k != "range"}
            assert mine.keys() == axis.keys(), key
            for k, v in axis.items():
                assert mine[k] == (pytest.approx(v) if k == "domain" else v), (key, k)
    assert [(a["text"], pytest.approx(a["y"])) for a in ours["annotations"]] == [
        (a["text"], a["y"]) for a in theirs["annotations"]
    ]


def test_the_latency_figure_is_a_valid_plotly_figure() -> None:
    """The figure is assembled without plotly's validation for speed; validating it here in
    full catches a misspelt property or a bad value."""
    import plotly.graph_objects as go

    from dashboard.environment_figures import latency_figure

    t0 = datetime(2026, 11, 16, tzinfo=UTC)
    periods = [t0 + timedelta(hours=h) for h in range(48)]
    series = pl.DataFrame(
        {
            "model": ["chat"] * 48 + ["embed"] * 48,
            "period": periods * 2,
            "latency_p50_ms": [100.0 + h for h in range(96)],
            "latency_p95_ms": [300.0 + h for h in range(96)],
            "latency_p99_ms": [900.0 + h for h in range(96)],
            "requests": [50] * 96,
        }
    )
    down = pl.DataFrame(
        {
            "environment": ["gcp"] * 4,
            "minute": [t0 + timedelta(hours=5, minutes=m) for m in range(4)],
            "requests": [10.0] * 4,
            "errors": [9.0] * 4,
            "expected": [7.0] * 4,
            "cause": ["errors"] * 4,
        }
    )
    changes = pl.DataFrame(
        {
            "model": ["chat", "chat"],
            "version": ["1", "2"],
            "first_seen": [t0 - timedelta(days=3), t0 + timedelta(hours=20)],
        }
    )
    fig = latency_figure(
        series,
        models=["chat", "embed"],
        slo_ms=350.0,
        incidents=definitions.down_periods(down),
        changes=changes,
        start=t0,
        end=t0 + timedelta(days=2),
        grain="hour",
    )
    checked = go.Figure(fig.to_dict())  # raises ValueError on any invalid property
    assert len(checked.data) == 6
    assert {s.type for s in checked.layout.shapes} == {"rect", "line"}
    assert [a.text for a in checked.layout.annotations][:2] == [
        "chat · p95 SLO 350 ms",
        "embed · p95 SLO 350 ms",
    ]
    assert any(a.text == "→ v2" for a in checked.layout.annotations)
    assert checked.layout.xaxis2.title.text == "time (UTC)"
    assert checked.layout.yaxis.range is not None


def test_the_gpu_pages_half_width_charts_keep_their_legends_off_their_titles() -> None:
    """Side by side, four environments wrap the legend: above the plot it covered the title."""
    from dashboard.gpu_figures import energy_figure, hours_by_state_figure

    envs = ["dc-frankfurt", "aws-us-east-1", "gcp-europe-west4", "edge-munich"]
    daily = pl.DataFrame(
        {
            "day": [datetime(2026, 11, 2, tzinfo=UTC)] * 4,
            "environment": envs,
            "busy_gpu_hours": [1.0] * 4,
            "idle_held_gpu_hours": [1.0] * 4,
            "idle_free_gpu_hours": [1.0] * 4,
            "energy_kwh": [2.0] * 4,
        }
    )
    figures = [energy_figure(daily, {}), hours_by_state_figure(daily, {})]
    for fig in figures:
        assert (fig.layout.legend.yanchor, fig.layout.legend.y) == ("top", -0.2)
    assert figures[0].layout.height == figures[1].layout.height  # the plots line up


@pytest.mark.parametrize(
    ("grain", "step"), [("day", timedelta(days=1)), ("hour", timedelta(hours=1))]
)
def test_a_heatmap_of_one_period_spans_that_period(grain: str, step: timedelta) -> None:
    """One sample's heatmap was a cell a millisecond wide, under ticks like 23:59:59.9996
    (a GPU-only warehouse, seen in Chromium); several periods keep one x per period."""
    day = datetime(2026, 12, 2)
    gpu = {"environment": "e", "host": "h", "gpu_uuid": "GPU-1", "mig_instance": "",
           "util_mean": 40.0, "sm_active_mean": 0.3}  # fmt: skip
    one = gpu_figures.utilization_heatmap(pl.DataFrame([gpu | {"period": day}]), grain)
    assert list(one.data[0].x) == [day, day + step]
    two = gpu_figures.utilization_heatmap(
        pl.DataFrame([gpu | {"period": day}, gpu | {"period": day + step}]), grain
    )
    assert list(two.data[0].x) == [day, day + step] and len(two.data[0].z[0]) == 2
