"""Request timeouts under one shared timer.

asyncio keeps its timers in a heap of Python objects, ordered by Python code:
making one, cancelling it and taking it back out of the heap runs some 20,000
CPU instructions, 4% of a small HTTP exchange through aiohttp, and aiohttp's own
read timeout makes two per request. A client sending thousands of requests a
second would spend nearly a tenth of its time on timers that almost never fire.

So a client keeps one `Watchdog`. Each request in flight holds a `Watch`: the
task sending it and a deadline, which moves forward whenever the answer makes
progress, for the price of an attribute store. One timer, armed only while
something is watched, checks every deadline a few times per timeout and cancels
the task of a request that is overdue; the request turns that cancellation back
into a timeout (`Watchdog.timed_out`). A timeout is therefore noticed up to a
tick late: an eighth of the timeout, and never more than a second.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Final

__all__ = ["Watch", "Watchdog"]

#: Longest time between two checks of the deadlines, in seconds.
MAX_TICK: Final = 1.0
#: Checks per timeout, for timeouts short enough that `MAX_TICK` is too coarse.
TICKS_PER_TIMEOUT: Final = 8


class Watch:
    """One watched request: its task and the time by which it must make progress.

    Slotted and bare: a request moves its deadline on its hot path.
    """

    __slots__ = ("deadline", "fired", "task", "timeout")

    def __init__(self, task: asyncio.Task[object], timeout: float) -> None:
        self.task = task
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        #: The watchdog has cancelled the task and nobody has answered for it yet.
        self.fired = False

    def progress(self) -> None:
        """The request heard from the server: its silence starts over."""
        self.deadline = time.monotonic() + self.timeout

    def __repr__(self) -> str:
        state = "fired" if self.fired else f"deadline={self.deadline:.3f}"
        return f"Watch({state})"


class Watchdog:
    """Times out the requests of one client ``timeout`` seconds after their last news.

    With ``timeout`` None it watches nothing, and requests wait forever. Deadlines
    are read from `time.monotonic`, the clock of asyncio's own loop.
    """

    def __init__(self, timeout: float | None) -> None:
        if timeout is not None:
            timeout = _seconds(timeout)
        self.timeout = timeout
        self._tick = (
            0.0 if timeout is None else min(timeout / TICKS_PER_TIMEOUT, MAX_TICK)
        )
        self._watches: set[Watch] = set()
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> Watch | None:
        """Watch the request the current task is about to send; None without a timeout."""
        if self.timeout is None:
            return None
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a request must be sent from an asyncio task")
        watch = Watch(task, self.timeout)
        self._watches.add(watch)
        if self._timer is None:
            self._timer = task.get_loop().call_later(self._tick, self._check)

        return watch

    def stop(self, watch: Watch | None) -> None:
        """Stop watching; the request has ended, however it did."""
        if watch is None:
            return
        self._watches.discard(watch)
        if watch.fired:
            # The cancellation reached the request but was not answered for by
            # `timed_out` (something below turned it into another error): the
            # task must not stay marked as being cancelled.
            watch.fired = False
            _withdraw(watch.task)

    def timed_out(self, watch: Watch | None) -> bool:
        """Whether the cancellation the watched task just received is a timeout.

        Call it where the request catches ``CancelledError``. True means the
        watchdog cancelled the task and nothing else did; the cancellation is then
        withdrawn, and the request must raise a timeout instead. False means the
        task is really being cancelled: let the error go on.
        """
        if watch is None or not watch.fired:
            return False
        watch.fired = False

        return _withdraw(watch.task)

    def _check(self) -> None:
        self._timer = None
        if not self._watches:
            # Nothing in flight: the next request arms the timer again.
            return
        now = time.monotonic()
        for watch in self._watches:
            if watch.deadline <= now and not watch.fired:
                watch.fired = True
                watch.task.cancel()
        loop = next(iter(self._watches)).task.get_loop()
        self._timer = loop.call_later(self._tick, self._check)


def _seconds(timeout: object) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(
            f"timeout must be a number of seconds or None, not {type(timeout).__name__}"
        )
    try:
        seconds = float(timeout)
    except OverflowError:
        # An int too large for a float: as endless as infinity.
        seconds = math.inf
    if not 0 < seconds < math.inf:
        raise ValueError(
            f"timeout must be a finite number of seconds above 0, or None; got {timeout!r}"
        )

    return seconds


def _withdraw(task: asyncio.Task[object]) -> bool:
    """Take back one cancellation of ``task``; True if no other one is pending."""
    uncancel = getattr(task, "uncancel", None)
    if uncancel is None:
        # LIMITATION(Python 3.10 is no longer supported): before 3.11 a task does
        # not count the cancellations it was sent, so one sent by someone else in
        # the same instant as the timeout is taken for the timeout, as
        # async-timeout does there.
        return True

    remaining: int = uncancel()

    return remaining == 0
