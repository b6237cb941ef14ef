"""Client-side pacing: sliding windows over past requests, plus a shared pause."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any, Final

import anyio
import attrs

from ._constants import RESTART_SPACING
from ._errors import QuotaExhaustedError

__all__ = ["RateLimiter", "RateLimits", "Window"]

_MINUTE = 60.0
_HOUR = 3600.0
_DAY = 86400.0


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _not_negative(
    _instance: object, attribute: attrs.Attribute[Any], value: float | None
) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen
class Window:
    """At most ``limit`` requests in any span of ``seconds``.

    Attributes:
        limit: Requests allowed in the span.
        seconds: Length of the span. A request counts against the window for exactly
            this long after it was sent.
        writes_only: Count and hold only writes (POST, PUT, DELETE).
    """

    limit: int = attrs.field(validator=_positive)
    seconds: float = attrs.field(validator=_positive)
    writes_only: bool = False


def _as_windows(windows: Iterable[Window]) -> tuple[Window, ...]:
    return tuple(windows)


#: Seconds added to each documented window by default; a little over the spread of
#: delays a request meets between leaving the client and being counted.
DOCUMENTED_MARGIN: Final = 0.05


@attrs.frozen
class RateLimits:
    """The pacing a client keeps to, so that the server need not throttle it.

    Attributes:
        windows: Every window a request must fit in.
        margin: Seconds added to every window, to absorb the difference between
            when a request leaves here and when the server counts it.
        max_wait: Longest wait, in seconds, the windows may impose on one request
            before it is refused with ``QuotaExhaustedError`` instead; ``None`` waits
            however long it takes. Pauses asked for by the server do not count.
    """

    windows: tuple[Window, ...] = attrs.field(converter=_as_windows)
    margin: float = attrs.field(default=0.0, validator=_not_negative)
    max_wait: float | None = attrs.field(default=300.0, validator=_not_negative)

    @classmethod
    def documented(
        cls, *, margin: float = DOCUMENTED_MARGIN, max_wait: float | None = 300.0
    ) -> RateLimits:
        """The limits Nexudus publishes for its REST API.

        Writes: 60 a minute and 5,000 a day. Every request: one per 100 ms, 120 a
        minute and 5,000 an hour. (The published 200,000 a day for every request
        can never bind under 5,000 an hour, so it is left out.)

        Args:
            margin: See ``RateLimits.margin``. The default absorbs the jitter of a
                request's way to the server, which otherwise lets two requests sent
                100 ms apart arrive closer than that and meet a throttle.
            max_wait: See ``RateLimits.max_wait``.

        Returns:
            The documented limits.
        """
        windows = (
            Window(60, _MINUTE, writes_only=True),
            Window(5000, _DAY, writes_only=True),
            Window(1, 0.1),
            Window(120, _MINUTE),
            Window(5000, _HOUR),
        )

        return cls(windows, margin=margin, max_wait=max_wait)


class RateLimiter:
    """Hands out send slots for every request of one client.

    Each window remembers when its last ``limit`` requests went out, so a request is
    held until the oldest of them is ``seconds`` old. On top of the windows, a throttle
    answer pauses every request (``pause``); when the pause ends the requests it held
    go out ``restart_spacing`` apart rather than in one burst, and once the last of
    them is out, requests go at the pace of the windows alone again.

    The limiter never sends anything; callers ``await acquire()`` just before each
    request. It is not thread-safe: use it from the event loop of its client.

    Args:
        limits: The windows to keep to; ``None`` keeps none (pauses still apply).
        clock: Monotonic time in seconds.
        sleep: Waits the given seconds; tests pass one that moves a fake clock.
        restart_spacing: Seconds between requests released by the end of a pause.
    """

    def __init__(
        self,
        limits: RateLimits | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        restart_spacing: float = RESTART_SPACING,
    ) -> None:
        self._limits = limits
        self._clock = clock
        self._sleep = sleep
        self._spacing = restart_spacing
        self._sent: list[tuple[Window, deque[float]]] = [
            (window, deque(maxlen=window.limit))
            for window in (limits.windows if limits else ())
        ]
        self._margin = limits.margin if limits else 0.0
        self._pause_until = float("-inf")
        self._last_admit = float("-inf")
        self._held = 0

    @property
    def limits(self) -> RateLimits | None:
        """The windows this limiter keeps to, or ``None``."""
        return self._limits

    def __repr__(self) -> str:
        return f"RateLimiter(limits={self._limits!r})"

    async def acquire(self, *, write: bool) -> bool:
        """Wait until one more request may go, and count it as sent.

        Args:
            write: Whether the request is a write (POST, PUT, DELETE).

        Returns:
            Whether it had to wait; False when the request could go at once.

        Raises:
            QuotaExhaustedError: The windows would hold the request longer than
                ``RateLimits.max_wait``. Nothing is counted.
        """
        now = self._clock()
        if not self._sent and not self._held and now >= self._pause_until:
            # No windows (limits off) and no pause: what the loop below would
            # conclude at once, without its bookkeeping on every request.
            self._last_admit = now
            return False

        # The restart after a pause lasts only until every request the pause held is
        # out, and a pause that held none needs no restart. Counting whoever is
        # waiting instead would never end it under a busy job, where each request
        # just sent is soon back waiting for the next slot.
        held, waited = False, False
        try:
            while True:
                if waited:
                    now = self._clock()
                window_ready = self._window_ready(write)
                still_held = self._held_by_pause(held, now, window_ready)
                self._held += int(still_held) - int(held)
                held = still_held
                ready = max(window_ready, self._pause_ready(0 if held else self._held))
                if ready <= now:
                    if held:
                        held = False
                        self._held -= 1
                    self._admit(write, now)
                    return waited
                self._check_max_wait(write, window_ready - now)
                # Whatever else holds it, wake when the pause ends to take stock.
                wake = self._pause_until if now < self._pause_until else ready
                await self._sleep(wake - now)
                waited = True
        finally:
            # Cancelled or refused while held: the restart must not wait for it.
            if held:
                self._held -= 1

    def pause(self, seconds: float) -> None:
        """Hold every request for ``seconds`` from now (a longer pause in force wins)."""
        self._pause_until = max(self._pause_until, self._clock() + max(0.0, seconds))

    def wait_time(self, *, write: bool) -> float:
        """Seconds until a request of this kind could go, ignoring other waiters."""
        ready = max(self._window_ready(write), self._pause_ready(0))

        return max(0.0, ready - self._clock())

    def next_write_at(self) -> datetime:
        """When the next write could go, as an aware UTC time (now when it could now)."""
        return datetime.now(timezone.utc) + timedelta(
            seconds=self.wait_time(write=True)
        )

    def _window_ready(self, write: bool) -> float:
        ready = float("-inf")
        for window, sent in self._sent:
            if window.writes_only and not write:
                continue
            if len(sent) == window.limit:
                ready = max(ready, sent[0] + window.seconds + self._margin)

        return ready

    def _held_by_pause(self, held: bool, now: float, window_ready: float) -> bool:
        """Whether the restart must wait for this request before it ends."""
        if now < self._pause_until:
            return True
        # Once the pause is over, a held request the windows delay past its restart
        # slot waits on them, not on the restart; counting it would keep every other
        # request restart-spaced for as long as the windows hold it.
        return held and window_ready <= self._pause_ready(0)

    def _pause_ready(self, ahead: int) -> float:
        """When the pause lets a request go that has ``ahead`` held requests before it."""
        if self._held == 0:
            return self._pause_until
        # A request that first waits after the pause ended queues behind those still
        # held. Were it to compete with them for each slot instead, the one just sent
        # would keep winning the next, and the restart would drag on.
        return max(self._pause_until, self._last_admit + (1 + ahead) * self._spacing)

    def _admit(self, write: bool, now: float) -> None:
        for window, sent in self._sent:
            if write or not window.writes_only:
                sent.append(now)
        self._last_admit = now

    def _check_max_wait(self, write: bool, wait: float) -> None:
        max_wait = self._limits.max_wait if self._limits else None
        if max_wait is not None and wait > max_wait:
            resume_at = datetime.now(timezone.utc) + timedelta(seconds=wait)
            raise QuotaExhaustedError(resume_at=resume_at, write=write)
