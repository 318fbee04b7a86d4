"""The memory budget of requests in flight: fits, waits in line, refuses, never starves."""

from __future__ import annotations

import asyncio

import pytest

from ingest.errors import Overloaded
from ingest.receive.admission import Admission

MiB = 1 << 20


def test_requests_within_the_budget_are_admitted_and_returned() -> None:
    admission = Admission(10 * MiB)

    async def go() -> None:
        with admission.ticket() as a, admission.ticket() as b:
            await a.take(4 * MiB)
            await b.take(6 * MiB)
            assert admission.inflight == 10 * MiB
        assert admission.inflight == 0

    asyncio.run(go())
    assert admission.stats().peak_bytes == 10 * MiB and admission.stats().admitted == 2


def test_over_the_budget_waits_then_is_refused_with_retry_after() -> None:
    admission = Admission(10 * MiB, wait=0.05)

    async def go() -> None:
        with admission.ticket() as held:
            await held.take(8 * MiB)
            with pytest.raises(Overloaded) as refused, admission.ticket() as other:
                await other.take(4 * MiB)
            assert refused.value.http_status == 503 and refused.value.retry_after == 1
            assert "max_inflight_bytes" in refused.value.message
        assert admission.inflight == 0

    asyncio.run(go())
    assert admission.stats().refused == 1 and admission.stats().waiting == 0


def test_a_request_larger_than_the_budget_is_served_alone() -> None:
    admission = Admission(10 * MiB, wait=0.05)

    async def go() -> None:
        with admission.ticket() as big:
            await big.take(30 * MiB)  # nothing else in flight: admitted
            big.grow(30 * MiB)  # and it may grow while it is alone
            with pytest.raises(Overloaded), admission.ticket() as small:
                await small.take(1)

    asyncio.run(go())
    assert admission.inflight == 0


def test_a_waiting_request_is_not_overtaken_by_smaller_ones() -> None:
    """FIFO: once a large request waits, newcomers queue behind it, so it is served as soon
    as the requests before it are answered (it cannot starve behind a stream of small ones)."""
    admission = Admission(10 * MiB, wait=5.0)
    order: list[str] = []

    async def request(name: str, size: int, hold: asyncio.Event) -> None:
        with admission.ticket() as ticket:
            await ticket.take(size)
            order.append(name)
            await hold.wait()

    async def go() -> None:
        first, rest = asyncio.Event(), asyncio.Event()
        rest.set()
        running = asyncio.create_task(request("small-1", 2 * MiB, first))
        await asyncio.sleep(0.01)
        big = asyncio.create_task(request("big", 20 * MiB, rest))
        await asyncio.sleep(0.01)
        late = asyncio.create_task(request("small-2", 1 * MiB, rest))  # would fit, must wait
        await asyncio.sleep(0.05)
        assert order == ["small-1"] and admission.stats().waiting == 2
        first.set()
        await asyncio.gather(running, big, late)

    asyncio.run(go())
    assert order == ["small-1", "big", "small-2"]
    assert admission.inflight == 0


def test_growing_is_refused_only_when_others_are_in_flight() -> None:
    admission = Admission(10 * MiB)

    async def go() -> None:
        with admission.ticket() as a:
            await a.take(6 * MiB)
            a.grow(3 * MiB)
            with admission.ticket() as b:
                await b.take(1 * MiB)
                with pytest.raises(Overloaded):
                    a.grow(1 * MiB)
            a.grow(5 * MiB)  # alone again
            assert a.held == 14 * MiB

    asyncio.run(go())
    assert admission.inflight == 0


def test_a_client_that_leaves_while_waiting_leaves_the_line() -> None:
    admission = Admission(10 * MiB, wait=5.0)

    async def go() -> None:
        with admission.ticket() as held:
            await held.take(10 * MiB)

            async def waiter() -> None:
                with admission.ticket() as ticket:
                    await ticket.take(5 * MiB)

            task = asyncio.create_task(waiter())
            await asyncio.sleep(0.01)
            assert admission.stats().waiting == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert admission.stats().waiting == 0
        assert admission.inflight == 0

    asyncio.run(go())
