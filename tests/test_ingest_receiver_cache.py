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
from test_ingest_receiver import (
    GEN_AI,
    JSON,
    RESOURCE,
    post,
    rows,
    span_count,
    start,  # noqa: F401 (the fixture)
)

import ingest.spool as spool_module
import ingest.spool_loader as loader_module
from ingest.http_server import _for_loader
from ingest.otlp import Batch, Mapping
from ingest.receiver import Receiver
from ingest.spool import cached_bytes
from warehouse.config import Config
from warehouse.db import Warehouse

SIZES = pytest.mark.parametrize("n", [20, 100], ids=["rows", "arrow"])


@pytest.fixture
def disk_reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(start offset, records read) of each time the loader parses a segment from disk."""
    seen: list[tuple[int, int]] = []
    real = spool_module.read_segment

    def reading(path: Path, offset: int = 0) -> Iterator[Any]:
        seen.append((offset, 0))
        for record in real(path, offset):
            seen[-1] = (offset, seen[-1][1] + 1)
            yield record

    monkeypatch.setattr(loader_module, "read_segment", reading)
    return seen


def request(n: int) -> bytes:
    spans = [SpanSpec(attributes=GEN_AI) for _ in range(n)]
    return orjson.dumps(traces_request(RESOURCE, spans))


def one_request_bytes(n: int) -> int:
    """What the cache charges for one request's rows, as the handler keeps them."""
    batch = Batch(Mapping.from_config(Config()))
    batch.add_json(orjson.loads(request(n)), "request", signal="traces")
    mapped = _for_loader(batch)
    assert mapped is not None
    return cached_bytes(mapped)


@SIZES
def test_a_segment_within_the_bound_is_loaded_from_the_cache_alone(
    n: int,
    start: Callable[..., Receiver],  # noqa: F811
    warehouse: Warehouse,
    disk_reads: list[tuple[int, int]],
) -> None:
    receiver = start(flush_interval_s=3600)
    for _ in range(4):
        assert post(receiver.port, "/v1/traces", request(n), JSON)[0] == 200
    assert receiver.flush().rows("spans") == 4 * n
    assert disk_reads == []
    assert receiver.spool.cache_bytes == 0  # the loaded segment gave its bytes back


@SIZES
def test_past_the_bound_only_the_records_that_did_not_fit_are_parsed_again(
    n: int,
    start: Callable[..., Receiver],  # noqa: F811
    warehouse: Warehouse,
    disk_reads: list[tuple[int, int]],
) -> None:
    size = one_request_bytes(n)
    bound = int(size * 2.5)  # room for two requests' rows
    receiver = start(flush_interval_s=3600, max_cached_bytes=bound)
    for _ in range(5):
        assert post(receiver.port, "/v1/traces", request(n), JSON)[0] == 200
        assert receiver.spool.cache_bytes <= bound
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
    start: Callable[..., Receiver],  # noqa: F811
    warehouse: Warehouse,
    disk_reads: list[tuple[int, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    size = one_request_bytes(n)
    real, calls = loader_module.publish, []

    def fail_once(*a: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the disk is full")
        return real(*a, **kw)

    monkeypatch.setattr(loader_module, "publish", fail_once)
    receiver = start(flush_interval_s=3600, max_cached_bytes=int(size * 1.5))
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
    n: int,
    start: Callable[..., Receiver],  # noqa: F811
    warehouse: Warehouse,
    disk_reads: list[tuple[int, int]],
) -> None:
    receiver = start(flush_interval_s=3600, max_cached_bytes=0)
    for _ in range(3):
        assert post(receiver.port, "/v1/traces", request(n), JSON)[0] == 200
    assert receiver.spool.cache_bytes == 0
    assert receiver.flush().rows("spans") == 3 * n
    assert disk_reads == [(0, 3)]


def test_runs_of_small_requests_share_their_rows_and_a_large_one_has_a_frame(
    start: Callable[..., Receiver],  # noqa: F811
    warehouse: Warehouse,
    disk_reads: list[tuple[int, int]],
) -> None:
    """The cache keeps record order (small requests in a row are one run of rows, a large
    request its own Arrow frame), and everything loads once: a span sent twice is one."""
    receiver = start(flush_interval_s=3600)
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
