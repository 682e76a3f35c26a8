"""The label-block shortcut gives exactly what `prometheus_client` gives, errors included."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from ingest.gpu.exposition import _TOKEN, metric_families

CASES = Path(__file__).parent / "cases" / "gpu"


def outcome(parse: Callable[[str], Iterable[Metric]], text: str) -> Any:
    """Everything a parse yields, or the kind of error it stops with."""
    try:
        return [
            (
                f.name,
                f.type,
                f.documentation,
                [(s.name, s.labels, repr(s.value), s.timestamp) for s in f.samples],
            )
            for f in parse(text)
        ]
    except Exception as exc:  # the library raises ValueError, and at times others
        return type(exc).__name__


def assert_same(text: str) -> None:
    assert outcome(metric_families, text) == outcome(text_string_to_metric_families, text)


label_names = st.sampled_from(["gpu", "UUID", "modelName", "Hostname", "pod", "le", "pod", "1x"])
# Mostly values a real exporter writes (braces, commas, unicode), some it must escape
label_values = st.one_of(
    st.text(alphabet=st.sampled_from(list("abc019 {},=#.-/é😀")), max_size=12),
    st.lists(st.sampled_from([*'ab {}",=\\\n\t', '\\"', "\\\\", "\\n"]), max_size=8).map("".join),
)
blocks = st.lists(st.tuples(label_names, label_values), max_size=4).map(
    lambda pairs: "{" + ",".join(f'{k}="{v}"' for k, v in pairs) + "}"
)
names = st.sampled_from(["DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "up"])
numbers = st.sampled_from(["1", "0.5", "-2e3", "NaN", "+Inf", "1", "42", "7", "x"])
stamps = st.sampled_from(["", "", "", " 1764496800000", " 1764496800", " nope"])
samples = st.builds(
    lambda n, b, v, t, gap: f"{n}{gap}{b} {v}{t}", names, blocks, numbers, stamps,
    st.sampled_from(["", "", "", "", " "]),  # the library refuses a space before the brace
)  # fmt: skip
comments = st.builds(
    lambda kind, n, rest: f"# {kind} {n} {rest}",
    st.sampled_from(["HELP", "TYPE"]),
    names,
    st.sampled_from(["gauge", "counter", "untyped", "a {b} c", ""]),
)
lines = st.one_of(samples, samples, samples, comments, st.sampled_from(["", "garbage {", "}"]))


@settings(max_examples=400, deadline=None)
@given(st.lists(lines, max_size=6))
def test_any_exposition_parses_as_the_library_parses_it(chosen: list[str]) -> None:
    assert_same("\n".join(chosen) + "\n")


clean_blocks = st.dictionaries(
    st.sampled_from(["gpu", "UUID", "modelName", "Hostname", "pod", "GPU_I_ID"]),
    st.text(alphabet=st.sampled_from(list("abc019 {},=#.-/é😀")), max_size=12),
    max_size=5,
).map(lambda labels: "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}")
clean_samples = st.builds(
    lambda n, b, v: f"{n}{b} {v}", names, clean_blocks, st.sampled_from(["1", "0.5", "NaN"])
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(clean_samples, comments.filter(lambda c: "{" not in c)), max_size=10))
def test_a_well_formed_exposition_parses_as_the_library_parses_it(chosen: list[str]) -> None:
    text = "\n".join(chosen) + "\n"
    assert_same(text)


def test_the_case_scrapes_parse_as_the_library_parses_them() -> None:
    for path in sorted(CASES.glob("*.prom")):
        text = path.read_text(encoding="utf-8")
        assert outcome(metric_families, text) != "ValueError" or "bad" in path.name
        assert_same(text)


def test_the_shared_scrapes_parse_as_the_library_parses_them(fixtures_dir: Path) -> None:
    found = [p for p in sorted((fixtures_dir / "gpu").iterdir()) if p.suffix in (".txt", ".prom")]
    assert found
    for path in found:
        assert_same(path.read_text(encoding="utf-8"))


def test_a_text_that_names_the_token_is_parsed_without_the_shortcut() -> None:
    text = f'm{{{_TOKEN}="0"}} 1\nm{{gpu="0",UUID="GPU-1"}} 2\n'
    assert_same(text)
    got = [s.labels for family in metric_families(text) for s in family.samples]
    assert got == [{_TOKEN: "0"}, {"gpu": "0", "UUID": "GPU-1"}]


def test_blocks_repeated_across_scrapes_give_each_sample_its_own_dict() -> None:
    text = 'm{gpu="0"} 1\nn{gpu="0"} 2\n'
    first, second = metric_families(text)
    first.samples[0].labels["extra"] = "x"
    assert second.samples[0].labels == {"gpu": "0"}
    [again, _] = metric_families(text)
    assert again.samples[0].labels == {"gpu": "0"}
