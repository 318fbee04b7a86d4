"""Admission control: a process-wide budget of request bytes in flight (``max_inflight_bytes``).

Every ingest request (OTLP/HTTP and OTLP/gRPC traces and logs, signals, cost entries) takes a
``Ticket`` before its body is read and gives it back when it is answered. A ticket holds what
the request costs in memory, *weighed*: the body on the wire, its decompressed copy, and what
decoding it builds, which is far more than its size (measured, see ``DECODE_WEIGHT``). Over the
budget the request is refused with 503 + ``Retry-After`` (gRPC ``UNAVAILABLE`` + ``RetryInfo``)
through ``ingest.errors.Overloaded`` before anything of it is read or stored.

Fairness, so that nothing starves:

- a request that does not fit waits up to ``wait`` seconds in FIFO order; while anyone waits,
  newcomers queue behind it even if they would fit, so a large request at the head is served
  once the requests before it are answered, instead of being overtaken by small ones forever;
- a request costing more than the whole budget is admitted when nothing else is in flight
  (it is then the only one), so every request that passed the size limits can be served.

``grow`` adds to a ticket while a body streams in or inflates (a chunked body has no
Content-Length, a compressed one no decompressed size): it never waits, and refuses only when
the ticket is not alone. Tickets are taken and returned on the event loop; ``grow`` may also
be called from the worker thread that decompresses a body.

When the last ticket of a burst of large requests is returned, freed memory is handed back to
the OS (``malloc_trim``): glibc otherwise keeps the arenas that upb messages and body copies
grew, and the process would stay at its peak (measured: 3 GiB kept after 8 x 64 MiB requests).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from dataclasses import dataclass

from ingest.errors import Overloaded
from ingest.heap import release_free_memory

#: Memory a decoded request takes per byte of its decompressed body, beyond the body itself.
#: Measured on realistic agent spans (``bench.workload.large_request_body``, 64 MiB bodies,
#: peak RSS over the body's): upb's message of a protobuf body is 3.2x; an OTLP/JSON body,
#: walked span by span (``ingest.receive.otlp_json_stream``), peaks at 2.9x (its text, the wire
#: bytes, the message and its re-encoding for the WAL). ``json.loads`` of the whole body was 8.7x,
#: and signals and cost entries are still parsed that way: 8.6x for a 20 MiB array of signals.
PROTOBUF_WEIGHT = 3.2
JSON_WEIGHT = 3.0
ITEMS_WEIGHT = 8.6

#: Returning at least this much (across tickets) with nothing left in flight trims the heap.
TRIM_AFTER_BYTES = 32 * 1024 * 1024
TRIM_DELAY = 0.5


def decode_weight(as_json: bool) -> float:
    """Bytes of decoded objects per decompressed body byte (see the module docstring)."""
    return JSON_WEIGHT if as_json else PROTOBUF_WEIGHT


@dataclass
class AdmissionStats:
    inflight_bytes: int
    budget_bytes: int
    peak_bytes: int
    admitted: int
    refused: int
    waiting: int


class Admission:
    """The budget of one process; shared by every receiver (``service.server`` wires it)."""

    def __init__(self, budget_bytes: int, *, wait: float = 1.0) -> None:
        if budget_bytes <= 0:
            raise ValueError("the admission budget must be positive")
        self.budget = budget_bytes
        self.wait = wait
        self.inflight = 0
        self.peak = 0
        self.admitted = 0
        self.refused = 0
        self._lock = threading.Lock()
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()
        self._returned_since_trim = 0

    def stats(self) -> AdmissionStats:
        return AdmissionStats(
            self.inflight, self.budget, self.peak, self.admitted, self.refused, len(self._waiters)
        )

    def ticket(self) -> Ticket:
        """An empty ticket; ``Ticket.take`` makes it hold bytes (use it as a context manager)."""
        return Ticket(self)

    # ------------------------------------------------------------------ internals

    def _fits(self, nbytes: int, held: int) -> bool:
        """Within budget, or nothing in flight but the asker's own bytes (never starve)."""
        return self.inflight == held or self.inflight + nbytes <= self.budget

    def _take(self, nbytes: int) -> None:
        self.inflight += nbytes
        self.peak = max(self.peak, self.inflight)

    def _refuse(self, nbytes: int) -> Overloaded:
        self.refused += 1
        return Overloaded(
            f"tasklake is busy: {self.inflight >> 20} MiB of requests in flight, this one needs "
            f"{max(1, nbytes >> 20)} MiB more of the {self.budget >> 20} MiB budget "
            "(max_inflight_bytes); retry later",
            retry_after=1,
        )

    async def _take_waiting(self, nbytes: int) -> None:
        with self._lock:
            if not self._waiters and self._fits(nbytes, 0):
                self._take(nbytes)
                self.admitted += 1
                return
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append((nbytes, future))
        try:
            await asyncio.wait_for(asyncio.shield(future), self.wait)
        except TimeoutError:
            with self._lock:
                if future.done():  # granted just as the wait ended: keep it
                    return
                error = self._leave_line(nbytes, future)
            raise error from None
        except asyncio.CancelledError:  # the client went away while waiting
            granted = False
            with self._lock:
                if future.done():
                    granted = True
                else:
                    self._leave_line(nbytes, future)
            if granted:
                self._return(nbytes)
            raise

    def _leave_line(self, nbytes: int, future: asyncio.Future[None]) -> Overloaded:
        """Drop a waiter that gave up (lock held); those behind it may fit now."""
        self._waiters.remove((nbytes, future))
        future.cancel()
        self._grant()
        return self._refuse(nbytes)

    def _grant(self) -> None:
        """Admit waiters from the head while they fit (called with the lock held)."""
        while self._waiters:
            nbytes, future = self._waiters[0]
            if future.done():
                self._waiters.popleft()
                continue
            if not self._fits(nbytes, 0):
                return
            self._waiters.popleft()
            self._take(nbytes)
            self.admitted += 1
            future.set_result(None)

    def _grow(self, nbytes: int, held: int) -> None:
        with self._lock:
            if not self._fits(nbytes, held):
                raise self._refuse(nbytes)
            self._take(nbytes)

    def _return(self, nbytes: int) -> None:
        with self._lock:
            self.inflight -= nbytes
            self._returned_since_trim += nbytes
            trim = self.inflight == 0 and self._returned_since_trim >= TRIM_AFTER_BYTES
            self._grant()
        if trim:
            # a moment later: the request's own body and answer are only freed once its
            # handler has returned, after the ticket
            with contextlib.suppress(RuntimeError):  # no loop: nothing to wait for
                asyncio.get_running_loop().call_later(TRIM_DELAY, self._trim_if_idle)

    def _trim_if_idle(self) -> None:
        with self._lock:
            if self.inflight or self._returned_since_trim < TRIM_AFTER_BYTES:
                return
            self._returned_since_trim = 0
        release_free_memory()


class Ticket:
    """What one request holds of the budget; returned on exit (with or without an error)."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self.held = 0
        self._taken = False

    async def take(self, nbytes: int) -> None:
        """Hold ``nbytes`` (the request's first, expected cost), waiting in line if needed."""
        if self._taken:
            self.grow(nbytes)
            return
        self._taken = True
        await self.admission._take_waiting(nbytes)
        self.held += nbytes

    def grow(self, nbytes: int) -> None:
        """Hold ``nbytes`` more now (never waits); ``Overloaded`` when it does not fit."""
        if nbytes <= 0:
            return
        if not self._taken:
            raise RuntimeError("take() first: the first reservation of a request waits in line")
        self.admission._grow(nbytes, self.held)
        self.held += nbytes

    def release(self) -> None:
        if self.held:
            self.admission._return(self.held)
            self.held = 0

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
