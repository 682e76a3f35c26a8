"""The receiver's cache of accept-time rows: what the loader stages without parsing again.

A segment keeps its records' rows (an Arrow frame for a request of 64 spans or more, Python
rows for smaller ones) until the cache bound is reached; past it, only the records that
did not fit are parsed again from the spool file. Each test runs with both kinds of
request. Real sockets on 127.0.0.1, in-process receivers that load only when told to
(`flush`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from otlp_factory import SpanSpec, traces_request
from test_ingest_receiver import GEN_AI, JSON, RESOURCE, post, rows, span_count

import ingest.spool as spool_module
import ingest.spool_loader as loader_module
from ingest.receiver import Receiver
from warehouse.config import Config
from warehouse.db import Warehouse

SIZES = pytest.mark.parametrize("n", [20, 100], ids=["rows", "arrow"])


@pytest.fixture
def start(warehouse: Warehouse, tmp_path: Path) -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def make(name: str = "spool", **kwargs: Any) -> Receiver:
        into = warehouse if name == "spool" else Warehouse(tmp_path / f"{name}.duckdb")
        receiver = Receiver(
            into, Config(), spool_dir=tmp_path / name, flush_interval_s=3600, **kwargs
        )
        receiver.start()
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        if receiver.running:
            receiver.stop()


@pytest.fixture
def disk_reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(start offset, records read) of each time the loader parses a segment from disk."""
    seen: list[tuple[int, int]] = []
    real = spool_module.read_segment

    def reading(path: Path, start: int = 0) -> Iterator[Any]:
        seen.append((start, 0))
        for record in real(path, start):
            seen[-1] = (start, seen[-1][1] + 1)
            yield record

    monkeypatch.setattr(loader_module, "read_segment", reading)
    return seen


def request(n: int) -> bytes:
    spans = [SpanSpec(attributes=GEN_AI) for _ in range(n)]
    return orjson.dumps(traces_request(RESOURCE, spans))


def one_request_bytes(start: Callable[..., Receiver], n: int) -> int:
    """What one request's rows take in the cache, measured on a receiver (and warehouse)
    of its own."""
    probe = start("probe")
    assert post(probe.port, "/v1/traces", request(n), JSON)[0] == 200
    size = probe.spool.cache_bytes
    probe.stop()
    assert size > 0
    return size


@SIZES
def test_a_segment_within_the_bound_is_loaded_from_the_cache_alone(
    n: int, start: Callable[..., Receiver], warehouse: Warehouse, disk_reads: list[tuple[int, int]]
) -> None:
    receiver = start()
    for _ in range(4):
        assert post(receiver.port, "/v1/traces", request(n), JSON)[0] == 200
    assert receiver.flush().rows("spans") == 4 * n
    assert disk_reads == []
    assert receiver.spool.cache_bytes == 0  # the loaded segment gave its bytes back


@SIZES
def test_past_the_bound_only_the_records_that_did_not_fit_are_parsed_again(
    n: int, start: Callable[..., Receiver], warehouse: Warehouse, disk_reads: list[tuple[int, int]]
) -> None:
    size = one_request_bytes(start, n)
    receiver = start(max_cached_bytes=int(size * 2.5))  # room for two requests' rows
    for _ in range(5):
        assert post(receiver.port, "/v1/traces", request(n), JSON)[0] == 200
        assert receiver.spool.cache_bytes <= int(size * 2.5)
    assert receiver.spool.cache_bytes == 2 * size
    loaded = receiver.flush()
    assert loaded.rows("spans") == 5 * n
    assert span_count(warehouse) == 5 * n
    ((offset, records),) = disk_reads
    assert offset > 0 and records == 3  # the two cached records were not read again
    assert receiver.stats.loaded_requests == 5


@SIZES
def test_a_partly_cached_segment_that_fails_to_publish_loads_once_when_retried(
    n: int,
    start: Callable[..., Receiver],
    warehouse: Warehouse,
    disk_reads: list[tuple[int, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    size = one_request_bytes(start, n)
    real, calls = loader_module.publish, []

    def fail_once(*a: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the disk is full")
        return real(*a, **kw)

    monkeypatch.setattr(loader_module, "publish", fail_once)
    receiver = start(max_cached_bytes=int(size * 1.5))
    for _ in range(3):
        assert post(receiver.port, "/v1/traces", request(n), JSON)[0] == 200
    assert receiver.flush().rows("spans") == 0  # failed: retried at the next flush
    assert receiver.flush().rows("spans") == 3 * n
    assert span_count(warehouse) == 3 * n
    assert [records for _, records in disk_reads] == [2, 2]  # the uncached tail, twice
    dupes = rows(warehouse, "SELECT count(*) - count(DISTINCT (trace_id, span_id)) FROM spans")
    assert dupes == [(0,)]


@SIZES
def test_with_no_cache_every_record_is_parsed_again(
    n: int, start: Callable[..., Receiver], warehouse: Warehouse, disk_reads: list[tuple[int, int]]
) -> None:
    receiver = start(max_cached_bytes=0)
    for _ in range(3):
        assert post(receiver.port, "/v1/traces", request(n), JSON)[0] == 200
    assert receiver.spool.cache_bytes == 0
    assert receiver.flush().rows("spans") == 3 * n
    assert disk_reads == [(0, 3)]


def test_runs_of_small_requests_share_their_rows_and_a_large_one_has_a_frame(
    start: Callable[..., Receiver], warehouse: Warehouse, disk_reads: list[tuple[int, int]]
) -> None:
    """The cache keeps record order (small requests in a row are one run of rows, a large
    request its own Arrow frame), and everything loads once: a span sent twice is one."""
    receiver = start()
    twice = SpanSpec(attributes=GEN_AI)
    big = [SpanSpec(attributes=GEN_AI) for _ in range(99)]
    for spans in ([SpanSpec(attributes=GEN_AI)], [twice], [twice, *big], [twice],
                  [SpanSpec(attributes=GEN_AI)]):  # fmt: skip
        body = orjson.dumps(traces_request(RESOURCE, spans))
        assert post(receiver.port, "/v1/traces", body, JSON)[0] == 200
    kinds = [type(entry).__name__ for entry in receiver.spool.rotate()[0].cached]
    assert kinds == ["Batch", "Collected", "Batch"]
    loaded = receiver.flush()
    assert loaded.rows("spans") == 102 and loaded.duplicates() == 2
    assert disk_reads == []
    assert span_count(warehouse) == 102
