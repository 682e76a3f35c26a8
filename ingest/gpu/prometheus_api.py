"""GPU readings pulled from a Prometheus server's HTTP API (`/api/v1/query_range`).

For fleets whose dcgm-exporter is already scraped into Prometheus: one range query per
DCGM field over a window at a step, joined into one reading per (series, time). A server
refuses a range query whose series would have more than 11,000 points, so the window is
cut into time pages of at most `max_points` steps each; the start is aligned to a
multiple of the step, so pulling the same window twice asks for the same instants and
the merge on (host, GPU, MIG instance, time) adds nothing the second time.

Only http(s) URLs are pulled. A server that does not answer within the timeout, answers
5xx or 429, or drops the connection is retried with backoff (1 s, 2 s, ...); an answer that
is not the API's JSON (an HTML login page, a redirect loop) is not. A failure ends the
pull with one sentence naming the URL and keeps the readings of the pages already read.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ingest.contract import Rejected
from ingest.errors import IngestError, UserError
from ingest.gpu.readings import FIELDS, Parsed, Reading

SOURCE = "prometheus-api"  # gpu_samples.source and ingest_log.source
MAX_POINTS = 11_000  # Prometheus refuses a query_range whose series exceed this many points
MAX_RESPONSE_BYTES = 256 * 1024 * 1024
MAX_SERIES_LABELS = 128
_RETRYABLE = (429, 500, 502, 503, 504)


class PrometheusPullError(IngestError):
    """The server could not be read: the sentence names the URL and what went wrong."""


class PrometheusUrlError(PrometheusPullError, UserError):
    """The URL itself is unusable (not http or https): nothing was tried."""


@dataclass
class Pull:
    """What one pull read: the readings, how many queries it took, and why it stopped."""

    uri: str
    parsed: Parsed = field(default_factory=Parsed)
    queries: int = 0
    pages: int = 0
    error: str | None = None  # one sentence when the pull stopped early


def pages(
    start: datetime, end: datetime, step: timedelta, max_points: int = MAX_POINTS
) -> list[tuple[datetime, datetime]]:
    """The (start, end) of each query, inclusive, each at most `max_points` instants.

    The start is aligned down to a multiple of the step (since the epoch), and one page
    begins a step after the previous one ends, so the instants of the pages are exactly
    the instants of the whole window. Counted in whole milliseconds (the API's
    resolution), so no float rounding moves an instant between pages."""
    step_ms = step // timedelta(milliseconds=1)
    if step_ms < 1 or max_points < 1:
        raise ValueError("the step must be at least 1 ms and a page must hold a point")
    at = _ms(start) // step_ms * step_ms
    last = _ms(end)
    out: list[tuple[datetime, datetime]] = []
    while at <= last:
        out.append((_at(at), _at(min(at + (max_points - 1) * step_ms, last))))
        at += max_points * step_ms
    return out


def pull_range(
    base_url: str,
    start: datetime,
    end: datetime,
    step: timedelta,
    *,
    selector: str = "",
    max_points: int = MAX_POINTS,
    timeout_s: float = 10.0,
    retries: int = 2,
    backoff_s: float = 1.0,
    fields: tuple[str, ...] = FIELDS,
    sleep: Callable[[float], None] = time.sleep,
) -> Pull:
    """Every reading of `fields` between `start` and `end` at `step`, page by page.

    `selector` narrows each query (`{job="dcgm"}`); it is appended to the metric name."""
    url = _api(base_url)
    pull = Pull(uri=base_url)
    joined: dict[tuple[tuple[tuple[str, str], ...], int], dict[str, float]] = {}
    where: dict[tuple[tuple[tuple[str, str], ...], int], str] = {}
    for page_no, (page_start, page_end) in enumerate(pages(start, end, step, max_points), 1):
        page: dict[tuple[tuple[tuple[str, str], ...], int], dict[str, float]] = {}
        for name in fields:
            query = {
                "query": f"{name}{selector}",
                "start": _rfc3339(page_start),
                "end": _rfc3339(page_end),
                "step": f"{step // timedelta(milliseconds=1) / 1000:g}",  # seconds
            }
            try:
                result = _get(url, query, timeout_s, retries, backoff_s, sleep)
            except PrometheusPullError as exc:
                pull.error = str(exc)  # the pages read whole are kept, this one is not
                _finish(pull, joined, where)
                return pull
            pull.queries += 1
            _join(result, name, f"{name} page {page_no}", pull.parsed, page, where)
        joined.update(page)  # pages do not overlap: no instant is in two
        pull.pages = page_no
    _finish(pull, joined, where)
    return pull


# -- HTTP ---------------------------------------------------------------------------------
def _api(base_url: str) -> str:
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PrometheusUrlError(
            f"{base_url!r} is not an http(s) URL of a Prometheus server "
            "(like http://prometheus:9090); other schemes are refused"
        )
    return base_url.rstrip("/") + "/api/v1/query_range"


class _HttpOnly(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to http(s), and at most a few times (urllib caps loops)."""

    max_redirections = 5

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> Any:  # fmt: skip
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, "redirect to a non-http(s) URL", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpOnly())


def _get(
    url: str,
    query: dict[str, str],
    timeout_s: float,
    retries: int,
    backoff_s: float,
    sleep: Callable[[float], None],
) -> list[Any]:
    """The `data.result` of one query; PrometheusPullError with one sentence otherwise."""
    target = f"{url}?{urllib.parse.urlencode(query)}"
    shown = url.removesuffix("/api/v1/query_range")
    for attempt in range(retries + 1):
        if attempt:
            sleep(backoff_s * 2 ** (attempt - 1))
        try:
            with _OPENER.open(target, timeout=timeout_s) as response:
                body = response.read(MAX_RESPONSE_BYTES + 1)
                kind = response.headers.get_content_type()
        except urllib.error.HTTPError as exc:
            body = exc.read(MAX_RESPONSE_BYTES + 1) if exc.fp is not None else b""
            if exc.code in _RETRYABLE and attempt < retries:
                continue
            api = _api_error(body)
            reason = api or f"HTTP {exc.code} {exc.reason}"
            raise PrometheusPullError(
                f"Prometheus at {shown} refused the query {query['query']!r}: {reason}"
            ) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            if attempt < retries:
                continue
            why = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise PrometheusPullError(
                f"Prometheus at {shown} did not answer within {timeout_s:g} s after "
                f"{retries + 1} tries: {why}"
            ) from None
        return _result(body, kind, shown)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _api_error(body: bytes) -> str | None:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(doc, dict) and doc.get("status") == "error":
        return f"{doc.get('errorType', 'error')}: {str(doc.get('error', ''))[:300]}"
    return None


def _result(body: bytes, kind: str, shown: str) -> list[Any]:
    if len(body) > MAX_RESPONSE_BYTES:
        raise PrometheusPullError(
            f"Prometheus at {shown} answered more than {MAX_RESPONSE_BYTES} bytes for one "
            "page: use a larger --step or a narrower selector"
        )
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise PrometheusPullError(
            f"{shown} answered {kind}, not the Prometheus API's JSON: is it the server's "
            "base URL (like http://prometheus:9090)?"
        ) from None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict) or doc.get("status") != "success":
        raise PrometheusPullError(f"{shown} answered JSON that is not a query_range result")
    if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
        raise PrometheusPullError(
            f"{shown} answered a {data.get('resultType')!r} result where a range query "
            "gives a matrix"
        )
    result: list[Any] = data["result"]
    return result


# -- joining series into readings -----------------------------------------------------------
def _join(
    result: list[Any],
    name: str,
    location: str,
    parsed: Parsed,
    joined: dict[tuple[tuple[tuple[str, str], ...], int], dict[str, float]],
    where: dict[tuple[tuple[tuple[str, str], ...], int], str],
) -> None:
    for i, series in enumerate(result):
        at = f"{location} series {i}"
        metric = series.get("metric") if isinstance(series, dict) else None
        values = series.get("values") if isinstance(series, dict) else None
        if not isinstance(metric, dict) or not isinstance(values, list):
            parsed.rejected.append(Rejected(at, "a series without metric labels or values"))
            continue
        if len(metric) > MAX_SERIES_LABELS:
            parsed.rejected.append(Rejected(at, f"more than {MAX_SERIES_LABELS} labels"))
            continue
        identity = tuple(sorted((str(k), str(v)) for k, v in metric.items() if k != "__name__"))
        for pair in values:
            try:
                t, text = pair
                ms = round(float(t) * 1000)
                value = float(text)  # "NaN", "+Inf" parse; the samples builder nulls them
            except (TypeError, ValueError, OverflowError):
                parsed.rejected.append(Rejected(at, f"a point that is not [time, value]: "
                                                f"{str(pair)[:80]}"))  # fmt: skip
                continue
            key = (identity, ms)
            slot = joined.setdefault(key, {})
            where.setdefault(key, at)
            if name in slot:
                parsed.skipped["duplicate points"] += 1
            slot[name] = value


def _finish(
    pull: Pull,
    joined: dict[tuple[tuple[tuple[str, str], ...], int], dict[str, float]],
    where: dict[tuple[tuple[tuple[str, str], ...], int], str],
) -> None:
    for key in sorted(joined, key=lambda k: (k[1], k[0])):  # a failed page is in `where` only
        identity, ms = key
        ts = _at(ms)
        pull.parsed.readings.append(Reading(ts, dict(identity), joined[key], where[key]))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ms(ts: datetime) -> int:
    return (ts.astimezone(UTC) - _EPOCH) // timedelta(milliseconds=1)


def _at(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _rfc3339(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
