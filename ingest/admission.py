"""What a request may cost before the receiver lets it in: byte budgets and body deadlines.

Memory is bounded by bytes, not by a count of requests: a count of 8 let eight 64 MiB
bodies (about 20x that once decoded) in at once, and let eight clients that trickle a body
hold every slot. So a body is read without a slot, against a deadline and a minimum rate,
its bytes charged to a shared buffer budget as they arrive (a slow client holds only what
it has sent), and only a body that is fully in takes decode budget, in proportion to its
size.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Callable

from ingest.otlp_http import Reply

_READ_STEP = 64 * 1024
MIN_DECODE_BYTES = 64 * 1024  # what even a tiny request costs to decode
# Python objects per mapped span or log record (measured: ~1.5 KB of rows plus the parse),
# so a request of many tiny spans is charged for its rows, not its few bytes.
DECODE_BYTES_PER_ITEM = 2048


class ByteBudget:
    """A semaphore counted in bytes; a request asking for more than all of it waits for all."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"a byte budget must be positive, not {capacity}")
        self.capacity = capacity
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()

    def acquire(self, n: int, timeout_s: float) -> int:
        """Take `n` bytes (capped at the capacity); returns what was taken, 0 on timeout."""
        n = max(0, min(n, self.capacity))
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self.used + n > self.capacity:
                left = deadline - time.monotonic()
                if left <= 0:
                    return 0
                self._cond.wait(left)
            self.used += n
            self.peak = max(self.peak, self.used)
        return n

    def release(self, n: int) -> None:
        if n <= 0:
            return
        with self._cond:
            self.used -= n
            self._cond.notify_all()


class Charge:
    """The bytes one request holds in a ByteBudget, reserved ahead in steps, released once."""

    def __init__(self, budget: ByteBudget, wait_s: float, step: int = 1 << 20) -> None:
        self._budget = budget
        self._wait_s = wait_s
        self._step = step
        self.held = 0
        self.used = 0

    def add(self, n: int) -> None:
        """Count `n` more bytes held in memory; 503 when the budget stays full.

        A body larger than the whole budget ends up holding all of it and so runs alone,
        rather than waiting for room that can never be there.
        """
        self.used += n
        capacity = self._budget.capacity
        while self.used > self.held and self.held < capacity:
            want = min(max(self._step, self.used - self.held), capacity - self.held)
            got = self._budget.acquire(want, self._wait_s)
            if not got:
                raise Reply(
                    503,
                    "the receiver's memory budget for request bodies is in use; retry shortly",
                    headers={"Retry-After": "1"},
                    close=True,
                )
            self.held += got

    def free(self, n: int) -> None:
        """`n` bytes are no longer held (the wire body, once inflated): give back the excess."""
        self.used = max(0, self.used - n)
        spare = self.held - self.used - self._step
        if spare > 0:
            self._budget.release(spare)
            self.held -= spare

    def release(self) -> None:
        self._budget.release(self.held)
        self.held = self.used = 0


class DecodeSlot:
    """One request's share of the decode budget: its body's size, then what its items cost.

    Growing the share releases it and waits for the whole new amount, so two requests never
    each hold part of the budget while waiting for the rest of it.
    """

    def __init__(self, budget: ByteBudget, wait_s: float) -> None:
        self._budget = budget
        self._wait_s = wait_s
        self.held = 0

    def take(self, n: int) -> None:
        n = min(max(n, MIN_DECODE_BYTES), self._budget.capacity)
        if n <= self.held:
            return
        self.release()
        got = self._budget.acquire(n, self._wait_s)
        if not got:
            raise Reply(
                503, "too many requests in progress", headers={"Retry-After": "1"}, close=True
            )
        self.held = got

    def items(self, count: int) -> None:
        self.take(count * DECODE_BYTES_PER_ITEM)

    def release(self) -> None:
        self._budget.release(self.held)
        self.held = 0


class BodyReader:
    """Read a body against a whole-request deadline and a minimum average rate.

    A client that stops sending, trickles, or announces a Content-Length it never sends
    is answered 408 and disconnected once the deadline passes, or sooner once it falls
    below the minimum rate after `grace_s`; either way it never holds a decode slot.
    """

    def __init__(
        self,
        rfile: io.BufferedIOBase,
        sock: socket.socket,
        *,
        deadline_s: float,
        min_rate: float,
        grace_s: float,
        charge: Callable[[int], None],
    ) -> None:
        self._rfile = rfile
        self._sock = sock
        self._started = time.monotonic()
        self._deadline = self._started + deadline_s
        self._deadline_s = deadline_s
        self._min_rate = min_rate
        self._grace_s = grace_s
        self._charge = charge
        self.received = 0

    def read(self, size: int) -> bytearray:
        """Exactly `size` bytes (ConnectionError when the client closes first), uncopied."""
        out = bytearray()
        while len(out) < size:
            chunk = self._read_some(min(_READ_STEP, size - len(out)))
            out += chunk
        return out

    def readline(self, limit: int) -> bytes:
        self._arm()
        try:
            line = self._rfile.readline(limit)
        except TimeoutError:
            raise self._timeout() from None
        self._count(len(line))
        return line

    def _read_some(self, n: int) -> bytes:
        self._arm()
        try:
            chunk = self._rfile.read1(n)
        except TimeoutError:
            raise self._timeout() from None
        if not chunk:
            raise ConnectionError("the client closed the connection mid-body")
        self._count(len(chunk))
        return bytes(chunk)

    def _arm(self) -> None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise self._timeout()
        self._sock.settimeout(left)

    def _count(self, n: int) -> None:
        self.received += n
        self._charge(n)
        elapsed = time.monotonic() - self._started
        if elapsed > self._grace_s and self.received < self._min_rate * elapsed:
            raise Reply(
                408,
                f"the body arrives at {self.received / elapsed:.0f} B/s, under the minimum of "
                f"{self._min_rate:.0f} B/s",
                close=True,
            )

    def _timeout(self) -> Reply:
        return Reply(
            408,
            f"the body was not received within {self._deadline_s:g} s "
            f"({self.received} bytes arrived)",
            close=True,
        )
