"""The outbox that hands a bulk job's outcomes from its workers to its one consumer."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

from nexudus_async._outbox import EMPTY, END, Outbox


async def _blocked() -> None:
    """Return once every other task is waiting for something."""
    with anyio.fail_after(5):
        await anyio.wait_all_tasks_blocked()


@asynccontextmanager
async def _task_group(outbox: Outbox[Any]) -> AsyncIterator[anyio.abc.TaskGroup]:
    """A task group that fails the test instead of hanging.

    A producer waiting for room cannot be cancelled, so after 5 seconds the outbox
    is closed, as a leaving consumer would, to release it.
    """

    async def watchdog() -> None:
        await anyio.sleep(5)
        outbox.close()
        raise TimeoutError("the tasks did not finish; closed the outbox")

    async with anyio.create_task_group() as guard:
        guard.start_soon(watchdog)
        async with anyio.create_task_group() as tg:
            yield tg
        guard.cancel_scope.cancel()


async def _get(outbox: Outbox[Any]) -> object:
    """Take the next item, failing the test instead of hanging."""
    with anyio.fail_after(5):
        return await outbox.get()


def _drain(outbox: Outbox[Any]) -> list[object]:
    """Everything ready now, up to (not including) `EMPTY` or `END`."""
    taken = []
    while (item := outbox.get_nowait()) is not EMPTY and item is not END:
        taken.append(item)
    return taken


def _record(
    results: list[object], put: Awaitable[bool]
) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        results.append(await put)

    return run


class TestPutNowait:
    def test_items_come_out_in_the_order_put(self) -> None:
        """The consumer sees items first in, first out."""
        outbox: Outbox[object] = Outbox(capacity=5, senders=1)
        for item in ["a", "b", "c", "d", "e"]:
            assert outbox.put_nowait(item) is True
        assert _drain(outbox) == ["a", "b", "c", "d", "e"]

    def test_reports_handed_full_and_closed(self) -> None:
        """put_nowait answers True when handed over, None when full, False once closed."""
        outbox: Outbox[object] = Outbox(capacity=1, senders=1)
        assert outbox.put_nowait(1) is True
        assert outbox.put_nowait(2) is None
        outbox.close()
        assert outbox.put_nowait(3) is False

    def test_holds_at_most_capacity_items(self) -> None:
        """A full outbox refuses more until the consumer takes one, then has room for one."""
        outbox: Outbox[object] = Outbox(capacity=3, senders=1)
        assert [outbox.put_nowait(i) for i in range(5)] == [
            True,
            True,
            True,
            None,
            None,
        ]
        assert outbox.get_nowait() == 0
        assert outbox.put_nowait(3) is True
        assert outbox.put_nowait(4) is None
        assert _drain(outbox) == [1, 2, 3]

    def test_a_refused_item_is_not_kept(self) -> None:
        """An item put_nowait refuses as full never reaches the consumer."""
        outbox: Outbox[object] = Outbox(capacity=1, senders=1)
        outbox.put_nowait("kept")
        assert outbox.put_nowait("refused") is None
        outbox.sender_done()
        assert _drain(outbox) == ["kept"]
        assert outbox.get_nowait() is END

    @pytest.mark.parametrize("capacity", [0, -1])
    def test_capacity_must_be_at_least_one(self, capacity: int) -> None:
        """An outbox that could never hold an item is refused at construction."""
        with pytest.raises(ValueError, match="capacity must be at least 1"):
            Outbox(capacity=capacity, senders=1)

    def test_capacity_of_one_is_allowed(self) -> None:
        """The smallest outbox holds one item."""
        outbox: Outbox[object] = Outbox(capacity=1, senders=1)
        assert outbox.put_nowait("only") is True
        assert outbox.get_nowait() == "only"


class TestEnd:
    def test_empty_while_producers_remain(self) -> None:
        """With nothing queued and a producer still at work, get_nowait says EMPTY."""
        outbox: Outbox[object] = Outbox(capacity=2, senders=2)
        assert outbox.get_nowait() is EMPTY
        outbox.sender_done()
        assert outbox.get_nowait() is EMPTY

    def test_end_once_every_producer_is_done(self) -> None:
        """END comes only after the last of the producers calls sender_done."""
        outbox: Outbox[object] = Outbox(capacity=2, senders=3)
        outbox.sender_done()
        outbox.sender_done()
        assert outbox.get_nowait() is EMPTY
        outbox.sender_done()
        assert outbox.get_nowait() is END

    def test_queued_items_come_before_end(self) -> None:
        """Items put before the producers finish are all taken before END."""
        outbox: Outbox[object] = Outbox(capacity=3, senders=1)
        outbox.put_nowait("x")
        outbox.put_nowait("y")
        outbox.sender_done()
        assert outbox.get_nowait() == "x"
        assert outbox.get_nowait() == "y"
        assert outbox.get_nowait() is END

    def test_end_stays_end(self) -> None:
        """Once ended, every further take answers END."""
        outbox: Outbox[object] = Outbox(capacity=1, senders=1)
        outbox.sender_done()
        assert [outbox.get_nowait() for _ in range(3)] == [END, END, END]

    async def test_get_returns_queued_items_then_end(self) -> None:
        """get drains what is queued after the producers finish, then answers END."""
        outbox: Outbox[object] = Outbox(capacity=2, senders=1)
        outbox.put_nowait(1)
        outbox.put_nowait(2)
        outbox.sender_done()
        assert [await _get(outbox) for _ in range(4)] == [1, 2, END, END]

    def test_sentinels_are_distinct_and_named(self) -> None:
        """EMPTY and END are told apart by identity and show their names."""
        assert EMPTY is not END
        assert repr(EMPTY) == "EMPTY"
        assert repr(END) == "END"


class TestGet:
    async def test_waits_for_a_put_from_another_task(self) -> None:
        """A consumer waiting in get receives the item a producer puts later."""
        outbox: Outbox[object] = Outbox(capacity=1, senders=1)
        received: list[object] = []
        async with _task_group(outbox) as tg:
            tg.start_soon(_record(received, _get(outbox)))
            await _blocked()
            assert received == []
            assert outbox.put_nowait("late") is True
        assert received == ["late"]

    async def test_waits_for_a_waiting_put(self) -> None:
        """A consumer waiting in get receives what a producer hands over with put."""
        outbox: Outbox[object] = Outbox(capacity=1, senders=1)
        received: list[object] = []
        async with _task_group(outbox) as tg:
            tg.start_soon(_record(received, _get(outbox)))
            await _blocked()
            with anyio.fail_after(5):
                assert await outbox.put("item") is True
        assert received == ["item"]

    async def test_end_when_last_producer_finishes_while_waiting(self) -> None:
        """A consumer waiting in get is woken with END when the last producer is done."""
        outbox: Outbox[object] = Outbox(capacity=1, senders=2)
        received: list[object] = []
        async with _task_group(outbox) as tg:
            tg.start_soon(_record(received, _get(outbox)))
            await _blocked()
            outbox.sender_done()
            await _blocked()
            assert received == []
            outbox.sender_done()
        assert received == [END]

    async def test_get_again_after_a_cancelled_get(self) -> None:
        """A consumer whose wait was cancelled can wait again and receive later items."""
        outbox: Outbox[object] = Outbox(capacity=2, senders=1)
        with anyio.move_on_after(0.01) as scope:
            await outbox.get()
        assert scope.cancelled_caught
        received: list[object] = []
        async with _task_group(outbox) as tg:
            tg.start_soon(_record(received, _get(outbox)))
            await _blocked()
            assert outbox.put_nowait("after") is True
        assert received == ["after"]

    async def test_many_cancelled_gets_then_end(self) -> None:
        """Repeatedly abandoned waits leave get able to see items and then END."""
        outbox: Outbox[object] = Outbox(capacity=2, senders=1)
        for _ in range(3):
            with anyio.CancelScope() as scope:
                scope.cancel()
                await outbox.get()
            assert scope.cancelled_caught
        received: list[object] = []
        async with _task_group(outbox) as tg:
            tg.start_soon(_record(received, _get(outbox)))
            await _blocked()
            outbox.put_nowait(1)
        async with _task_group(outbox) as tg:
            tg.start_soon(_record(received, _get(outbox)))
            await _blocked()
            outbox.sender_done()
        assert received == [1, END]

    async def test_item_put_as_the_wait_is_cancelled_is_not_lost(self) -> None:
        """An item arriving just as the consumer's wait is cancelled is taken now or later."""
        outbox: Outbox[object] = Outbox(capacity=1, senders=1)
        received: list[object] = []
        scope = anyio.CancelScope()

        async def consumer() -> None:
            with scope:
                received.append(await outbox.get())

        async with _task_group(outbox) as tg:
            tg.start_soon(consumer)
            await _blocked()
            outbox.put_nowait("racing")
            scope.cancel()
        outbox.sender_done()
        assert [*received, *_drain(outbox)] == ["racing"]
        assert outbox.get_nowait() is END


class TestPut:
    async def test_returns_at_once_with_room(self) -> None:
        """With room, put hands the item over and answers True without waiting."""
        outbox: Outbox[object] = Outbox(capacity=2, senders=1)
        with anyio.fail_after(5):
            assert await outbox.put("a") is True
            assert await outbox.put("b") is True
        assert _drain(outbox) == ["a", "b"]

    async def test_waits_for_room_until_the_consumer_takes(self) -> None:
        """A put on a full outbox completes once the consumer takes an item."""
        outbox: Outbox[object] = Outbox(capacity=1, senders=1)
        outbox.put_nowait("first")
        handed: list[object] = []
        async with _task_group(outbox) as tg:
            tg.start_soon(_record(handed, outbox.put("second")))
            await _blocked()
            assert handed == []
            assert outbox.get_nowait() == "first"
        assert handed == [True]
        assert _drain(outbox) == ["second"]

    async def test_waiting_producers_all_get_through(self) -> None:
        """Producers waiting for room all hand their items over, none lost or doubled."""
        outbox: Outbox[object] = Outbox(capacity=1, senders=5)
        outbox.put_nowait("first")
        handed: list[object] = []
        received: list[object] = []
        async with _task_group(outbox) as tg:
            for i in range(5):
                tg.start_soon(_record(handed, outbox.put(i)))
            await _blocked()
            assert handed == []
            while len(received) < 6:
                received.append(await _get(outbox))
        assert handed == [True] * 5
        assert received[0] == "first"
        assert sorted(received[1:]) == [0, 1, 2, 3, 4]
        assert outbox.get_nowait() is EMPTY

    async def test_one_producer_cancelled_by_asyncio_spares_the_others(self) -> None:
        """A waiting producer cancelled outside anyio does not cancel the others' puts."""
        outbox: Outbox[object] = Outbox(capacity=1, senders=2)
        outbox.put_nowait("first")
        doomed = asyncio.ensure_future(outbox.put("doomed"))
        spared = asyncio.ensure_future(outbox.put("spared"))
        with anyio.fail_after(5):
            await _blocked()
            doomed.cancel()
            await _blocked()
            assert outbox.get_nowait() == "first"
            assert await spared is True
        assert doomed.cancelled()
        assert _drain(outbox) == ["spared"]

    async def test_cancelled_producer_still_delivers(self) -> None:
        """Cancelling a producer waiting for room does not lose its item; it still arrives."""
        outbox: Outbox[object] = Outbox(capacity=1, senders=1)
        outbox.put_nowait("first")
        handed: list[object] = []
        after_put: list[object] = []
        scope = anyio.CancelScope()

        async def producer() -> None:
            with scope:
                handed.append(await outbox.put("in hand"))
                await anyio.lowlevel.checkpoint()
                after_put.append("not cancelled")

        async with _task_group(outbox) as tg:
            tg.start_soon(producer)
            await _blocked()
            scope.cancel()
            await _blocked()
            assert handed == []
            assert outbox.get_nowait() == "first"
            assert await _get(outbox) == "in hand"
        assert handed == [True]
        assert after_put == []
        assert scope.cancelled_caught

    async def test_cancelled_task_group_of_producers_delivers_everything(self) -> None:
        """Producers whose task group is cancelled while they wait still hand over items."""
        outbox: Outbox[object] = Outbox(capacity=2, senders=4)
        outbox.put_nowait("a")
        outbox.put_nowait("b")
        received: list[object] = []
        cancelled = anyio.Event()

        async def producers() -> None:
            async with anyio.create_task_group() as group:
                for i in range(4):
                    group.start_soon(outbox.put, i)
                await _blocked()
                group.cancel_scope.cancel()
                cancelled.set()

        async def consumer() -> None:
            await cancelled.wait()
            while len(received) < 6:
                received.append(await _get(outbox))

        async with _task_group(outbox) as tg:
            tg.start_soon(consumer)
            tg.start_soon(producers)
        assert sorted(received, key=str) == [0, 1, 2, 3, "a", "b"]
        assert outbox.get_nowait() is EMPTY

    async def test_cancelled_producer_released_by_close(self) -> None:
        """A cancelled producer waiting for room gets False, not a hang, when the consumer closes."""
        outbox: Outbox[object] = Outbox(capacity=1, senders=1)
        outbox.put_nowait("first")
        handed: list[object] = []
        scope = anyio.CancelScope()

        async def producer() -> None:
            with scope:
                handed.append(await outbox.put("in hand"))

        async with _task_group(outbox) as tg:
            tg.start_soon(producer)
            await _blocked()
            scope.cancel()
            await _blocked()
            assert handed == []
            outbox.close()
        assert handed == [False]
        assert outbox.get_nowait() is END

    async def test_waiting_producers_released_by_close(self) -> None:
        """Every producer waiting for room gets False when the consumer closes."""
        outbox: Outbox[object] = Outbox(capacity=1, senders=3)
        outbox.put_nowait("first")
        handed: list[object] = []
        async with _task_group(outbox) as tg:
            for i in range(3):
                tg.start_soon(_record(handed, outbox.put(i)))
            await _blocked()
            outbox.close()
        assert handed == [False, False, False]


class TestClose:
    async def test_later_puts_are_refused(self) -> None:
        """After close, put_nowait and put both answer False."""
        outbox: Outbox[object] = Outbox(capacity=2, senders=1)
        assert not outbox.closed
        outbox.close()
        assert outbox.closed
        assert outbox.put_nowait("x") is False
        with anyio.fail_after(5):
            assert await outbox.put("y") is False

    async def test_takes_answer_end(self) -> None:
        """After close, get_nowait and get answer END even with producers remaining."""
        outbox: Outbox[object] = Outbox(capacity=2, senders=3)
        outbox.close()
        assert outbox.get_nowait() is END
        assert await _get(outbox) is END

    async def test_queued_items_are_dropped(self) -> None:
        """Items not yet taken when the consumer closes are never handed out."""
        outbox: Outbox[object] = Outbox(capacity=3, senders=1)
        outbox.put_nowait("a")
        outbox.put_nowait("b")
        outbox.close()
        assert outbox.get_nowait() is END
        assert await _get(outbox) is END

    async def test_wakes_a_waiting_consumer_with_end(self) -> None:
        """A consumer waiting in get when the outbox is closed receives END."""
        outbox: Outbox[object] = Outbox(capacity=1, senders=1)
        received: list[object] = []
        async with _task_group(outbox) as tg:
            tg.start_soon(_record(received, _get(outbox)))
            await _blocked()
            outbox.close()
        assert received == [END]

    def test_closing_twice_is_harmless(self) -> None:
        """A second close changes nothing."""
        outbox: Outbox[object] = Outbox(capacity=1, senders=1)
        outbox.close()
        outbox.close()
        assert outbox.closed
        assert outbox.get_nowait() is END
        assert outbox.put_nowait(1) is False


class TestStress:
    async def test_many_producers_through_a_small_outbox(self) -> None:
        """8 producers x 500 items through capacity 3: each arrives exactly once, in producer order, then END."""
        producers, per_producer = 8, 500
        outbox: Outbox[tuple[int, int]] = Outbox(capacity=3, senders=producers)
        received: list[tuple[int, int]] = []

        async def producer(p: int) -> None:
            for i in range(per_producer):
                if i % 3 == 0 and outbox.put_nowait((p, i)) is True:
                    continue
                assert await outbox.put((p, i)) is True
                if i % 7 == 0:
                    await anyio.lowlevel.checkpoint()
            outbox.sender_done()

        async def consumer() -> None:
            while (item := await outbox.get()) is not END:
                assert isinstance(item, tuple)
                received.append(item)
                if len(received) % 5 == 0:
                    await anyio.lowlevel.checkpoint()

        async with _task_group(outbox) as tg:
            tg.start_soon(consumer)
            for p in range(producers):
                tg.start_soon(producer, p)

        expected = {(p, i) for p in range(producers) for i in range(per_producer)}
        counts = Counter(received)
        assert set(counts) == expected
        assert max(counts.values()) == 1
        for p in range(producers):
            assert [i for q, i in received if q == p] == list(range(per_producer))
        assert outbox.get_nowait() is END
