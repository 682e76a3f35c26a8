"""Pulling GPU metrics endpoints: many at once, each bounded in time, retried with backoff.

A fleet is scraped like Prometheus scrapes it: every endpoint in its own thread, so one
slow exporter delays nobody; each attempt has a deadline for the whole response (a
server that trickles bytes is cut off too), and a failure that may pass (a timeout, a
refused connection, a 5xx) is retried after 1 s, 2 s, ... A failure that will not pass (a
4xx, an HTML page, a redirect loop, a scheme other than http/https) is not retried. The
result of each endpoint is its body or one sentence, so the caller loads what came and
records the rest as failed inputs.

A pulled exposition without sample timestamps gets a `# scraped at` comment with the time
the request was sent, so its samples carry the scrape's time, as Prometheus's do.
"""

from __future__ import annotations

import http.client
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import urlsplit

from ingest.gpu.dcgm import SCRAPED_AT, DcgmExposition

SCHEMES = ("http", "https")
TIMEOUT_S = 10.0
RETRIES = 2
BACKOFF_S = 1.0  # the first retry waits this long, each later one twice the one before
MAX_BODY_BYTES = 256 * 1024 * 1024  # an exporter page is kilobytes; refuse a runaway body
MAX_THREADS = 64
ACCEPT = "text/plain;version=0.0.4;q=0.9,*/*;q=0.1"
_EXPOSITION = DcgmExposition()


@dataclass(frozen=True)
class Endpoint:
    """One URL to pull, with its own limits (from `[[sources.gpu]]` or the command line)."""

    url: str
    timeout_s: float = TIMEOUT_S
    retries: int = RETRIES
    environment: str = ""


@dataclass(frozen=True)
class Pulled:
    """What one endpoint gave: its body, or the sentence why not; and what it took."""

    endpoint: Endpoint
    body: bytes | None
    error: str | None
    attempts: int
    seconds: float


class _Permanent(Exception):
    """A failure that retrying will not mend."""


def refusal(url: str) -> str | None:
    """Why `url` is not pulled (only http and https, with a host), or None."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        shown = url if len(url) <= 200 else url[:200] + "…"
        return (
            f"{shown} is not pulled: only http:// and https:// URLs are, "
            f"not {parts.scheme or 'a bare path'}"
        )
    if not parts.hostname:
        return f"{url} names no host"
    return None


def pull_all(
    endpoints: Sequence[Endpoint],
    *,
    backoff_s: float = BACKOFF_S,
    threads: int = MAX_THREADS,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Pulled]:
    """Every endpoint pulled concurrently; the results in the endpoints' order."""
    if not endpoints:
        return []
    workers = max(1, min(threads, len(endpoints)))
    with ThreadPoolExecutor(workers, thread_name_prefix="gpu-pull") as pool:
        return list(pool.map(lambda e: pull(e, backoff_s=backoff_s, sleep=sleep), endpoints))


def pull(
    endpoint: Endpoint,
    *,
    backoff_s: float = BACKOFF_S,
    sleep: Callable[[float], None] = time.sleep,
) -> Pulled:
    """One endpoint, retried `endpoint.retries` times after failures that may pass."""
    started = time.monotonic()
    refused = refusal(endpoint.url)
    if refused is not None:
        return Pulled(endpoint, None, refused, 0, 0.0)
    attempts = 0
    error = ""
    while True:
        attempts += 1
        sent = datetime.now(UTC)
        try:
            body = _get(endpoint.url, endpoint.timeout_s)
            return Pulled(endpoint, _stamped(body, sent), None, attempts, _since(started))
        except _Permanent as exc:
            error = str(exc)
            break
        except Exception as exc:  # every other failure of one attempt may pass
            error = _reason(exc, endpoint.timeout_s)
        if attempts > endpoint.retries:
            break
        sleep(backoff_s * 2 ** (attempts - 1))
    tries = f"{attempts} attempt" + ("s" if attempts != 1 else "")
    return Pulled(
        endpoint,
        None,
        f"could not pull {endpoint.url}: {error} ({tries})",
        attempts,
        _since(started),
    )


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects to http(s) only (urllib alone would follow one to ftp://)."""

    max_redirections = 5

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urlsplit(newurl).scheme.lower() not in SCHEMES:
            raise _Permanent(f"redirected to {newurl[:200]}, which is not http(s)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SafeRedirects())


def _get(url: str, timeout_s: float) -> bytes:
    """The body of one GET, the whole response within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    request = urllib.request.Request(url, headers={"Accept": ACCEPT, "User-Agent": "hybridlens"})
    try:
        response = _OPENER.open(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code in (301, 302, 303, 307, 308):
            where = str(exc.headers.get("Location", ""))[:200] if exc.headers else ""
            if "not allowed" in str(exc.reason):  # urllib's refusal of a file:// Location
                raise _Permanent(f"redirected to {where}, which is not http(s)") from None
            raise _Permanent("redirect loop (a cycle, or more than 5 redirects)") from None
        if 400 <= exc.code < 500 and exc.code not in (408, 429):
            raise _Permanent(f"HTTP {exc.code} {exc.reason}") from None
        raise
    with response:
        kind = response.headers.get_content_type()
        chunks: list[bytes] = []
        size = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the response took longer than {timeout_s:g} s")
            _set_timeout(response, left)
            try:
                chunk = response.read1(1 << 16)  # what has arrived, not a full 64 KiB
            except TimeoutError:
                raise TimeoutError(f"the response took longer than {timeout_s:g} s") from None
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise _Permanent(f"the response is larger than {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
    body = b"".join(chunks)
    if kind == "text/html" or body.lstrip()[:1] == b"<":
        raise _Permanent("it answered an HTML page, not metrics (is this the /metrics URL?)")
    return body


def _set_timeout(response: Any, seconds: float) -> None:
    """Bound the next read by what is left of the deadline (the socket is urllib's)."""
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    if isinstance(sock, socket.socket):
        sock.settimeout(max(seconds, 0.001))


def _stamped(body: bytes, sent: datetime) -> bytes:
    """An exposition gets the time its request was sent; other bodies stay as they are."""
    if not _EXPOSITION.sniff(body[:4096]) or body.startswith(SCRAPED_AT.encode()):
        return body
    stamp = sent.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return f"{SCRAPED_AT}{stamp}\n".encode() + body


def _reason(exc: Exception, timeout_s: float) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    reason: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError | socket.timeout):
        text = str(reason)
        return text if "longer than" in text else f"no answer within {timeout_s:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "the host name does not resolve"
    text = str(reason).strip() or type(reason).__name__
    return text.splitlines()[0][:200]


def _since(started: float) -> float:
    return time.monotonic() - started
