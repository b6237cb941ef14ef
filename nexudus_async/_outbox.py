"""The hand-over of settled outcomes from a bulk job's workers to its one consumer.

A bounded queue in the spirit of anyio's memory object streams, cut to what a job
needs: many workers put, one consumer takes, and the job closes it when the
consumer leaves. It exists for speed. A memory stream's ``receive`` starts with a
checkpoint, and an anyio ``Event`` is made by first asking anyio which event loop
is running, which costs as much as a small request's worth of Python. A consumer
that keeps up with its workers waits for nearly every outcome, and either way of
waiting came to some 3% of a job's CPU time. So the waits here are plain asyncio
futures: the bulk creator drives an aiohttp client and runs on asyncio only.

Everything runs on one event loop, so no step between two awaits can interleave
with another task's: the checks and the updates that follow them need no lock.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Final, Generic, TypeVar

import anyio

__all__ = ["EMPTY", "END", "Outbox"]

T = TypeVar("T")


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: What `Outbox.get` and `Outbox.get_nowait` return once nothing more can come.
END: Final = _Sentinel("END")
#: What `Outbox.get_nowait` returns when nothing is ready yet.
EMPTY: Final = _Sentinel("EMPTY")


class Outbox(Generic[T]):
    """Holds up to ``capacity`` items that ``senders`` producers put for one consumer.

    The queue ends once every producer has called `sender_done` and the consumer
    has taken what they put. The consumer leaves by calling `close`: from then on
    puts are refused, and producers waiting for room stop waiting.
    """

    __slots__ = ("_capacity", "_closed", "_items", "_ready", "_room", "_senders")

    def __init__(self, capacity: int, senders: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._items: deque[T] = deque()
        self._capacity = capacity
        self._senders = senders
        self._closed = False
        #: Resolved when the consumer, waiting, has something to take (or the end).
        self._ready: asyncio.Future[None] | None = None
        #: Resolved when producers, waiting, have room (or the consumer has left).
        self._room: asyncio.Future[None] | None = None

    @property
    def closed(self) -> bool:
        """Whether the consumer has left."""
        return self._closed

    # --- the producers' side -----------------------------------------------------

    def put_nowait(self, item: T) -> bool | None:
        """Hand ``item`` over if there is room.

        Returns:
            True when handed over, False when the consumer has left, None when
            the queue is full.
        """
        if self._closed:
            return False
        items = self._items
        if len(items) >= self._capacity:
            return None
        items.append(item)
        if self._ready is not None:
            self._wake_consumer()

        return True

    async def put(self, item: T) -> bool:
        """Hand ``item`` over, waiting for room; False when the consumer has left.

        The wait is shielded from cancellation: an item a producer has in hand
        (a record's outcome, already accounted for) must reach a consumer that is
        still reading. It cannot hang: the consumer either takes an item, which
        makes room, or leaves, which ends the wait.
        """
        while (handed := self.put_nowait(item)) is None:
            room = self._room
            if room is None or room.done():
                room = self._room = asyncio.get_running_loop().create_future()
            with anyio.CancelScope(shield=True):
                # Every waiting producer shares the future: asyncio's shield keeps
                # a task cancelled by other means than anyio from cancelling it
                # for the others too.
                await asyncio.shield(room)

        return handed

    def sender_done(self) -> None:
        """One producer will put nothing more."""
        self._senders -= 1
        if self._senders <= 0:
            self._wake_consumer()

    # --- the consumer's side -----------------------------------------------------

    def get_nowait(self) -> T | _Sentinel:
        """The next item; `EMPTY` if none is ready yet, `END` if none will come."""
        items = self._items
        if items:
            # `close` empties the queue, so nothing is taken after it.
            item = items.popleft()
            if self._room is not None:
                self._make_room()
            return item
        if self._closed or self._senders <= 0:
            return END

        return EMPTY

    async def get(self) -> T | _Sentinel:
        """The next item, waiting for one; `END` once none will come."""
        while (item := self.get_nowait()) is EMPTY:
            ready = self._ready
            if ready is None or ready.done():
                # A future cancelled with the consumer's wait cannot be used again.
                ready = self._ready = asyncio.get_running_loop().create_future()
            await ready

        return item

    def close(self) -> None:
        """The consumer leaves: later puts are refused, waiting producers released.

        Items not yet taken are dropped: whoever closes has accounted for them.
        """
        if self._closed:
            return
        self._closed = True
        self._items.clear()
        self._make_room()
        self._wake_consumer()

    def _wake_consumer(self) -> None:
        ready, self._ready = self._ready, None
        if ready is not None and not ready.done():
            ready.set_result(None)

    def _make_room(self) -> None:
        room, self._room = self._room, None
        if room is not None and not room.done():
            room.set_result(None)
