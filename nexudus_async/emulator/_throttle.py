"""Per-client sliding-window request limits on a clock that can run fast."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

import attrs

__all__ = ["Limits", "Throttle", "Window", "retry_after_seconds"]

_MINUTE: Final = 60.0
_HOUR: Final = 3600.0
_DAY: Final = 86400.0


def _positive_or_none(
    instance: object, attribute: attrs.Attribute[Any], value: Any
) -> None:
    if value is None:
        return
    if type(value) is not int or value < 1:
        raise ValueError(
            f"{attribute.name} must be a positive integer or None, not {value!r}"
        )


def _not_negative(
    instance: object, attribute: attrs.Attribute[float], value: float
) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be zero or more, not {value!r}")


@attrs.frozen
class Window:
    """One limit: at most ``limit`` requests in any span of ``seconds`` (emulated time)."""

    name: str
    limit: int
    seconds: float
    writes_only: bool


@attrs.frozen(kw_only=True)
class Limits:
    """How many requests one client may make in each window; ``None`` turns a window off.

    The defaults are the documented numbers. Windows are measured in emulated seconds,
    so the emulator's time scale shrinks them; ``tolerance`` is in real seconds.

    Args:
        writes_per_minute: POST, PUT and DELETE requests per minute.
        writes_per_day: POST, PUT and DELETE requests per day.
        per_100ms: requests of any method per 100 milliseconds.
        per_minute: requests of any method per minute.
        per_hour: requests of any method per hour.
        per_day: requests of any method per day.
        tolerance: real seconds by which each window is shortened, so that a client
            pacing itself with the same numbers is not throttled because its requests
            arrived a few milliseconds closer together than it sent them. A window that
            the time scale makes shorter than this is not enforced at all.
    """

    writes_per_minute: int | None = attrs.field(default=60, validator=_positive_or_none)
    writes_per_day: int | None = attrs.field(default=5000, validator=_positive_or_none)
    per_100ms: int | None = attrs.field(default=1, validator=_positive_or_none)
    per_minute: int | None = attrs.field(default=120, validator=_positive_or_none)
    per_hour: int | None = attrs.field(default=5000, validator=_positive_or_none)
    per_day: int | None = attrs.field(default=200_000, validator=_positive_or_none)
    tolerance: float = attrs.field(default=0.01, validator=_not_negative)

    @classmethod
    def documented(cls) -> Limits:
        """The limits the vendor documents for every endpoint."""
        return cls()

    @classmethod
    def off(cls) -> Limits:
        """No limits at all: for benchmarks and tests that do not care about pacing."""
        return cls(
            writes_per_minute=None,
            writes_per_day=None,
            per_100ms=None,
            per_minute=None,
            per_hour=None,
            per_day=None,
        )

    @property
    def enabled(self) -> bool:
        """Whether any window is set."""
        return bool(self.windows())

    def windows(self) -> tuple[Window, ...]:
        """The windows that are set, in a fixed order."""
        candidates = (
            ("writes_per_minute", self.writes_per_minute, _MINUTE, True),
            ("writes_per_day", self.writes_per_day, _DAY, True),
            ("per_100ms", self.per_100ms, 0.1, False),
            ("per_minute", self.per_minute, _MINUTE, False),
            ("per_hour", self.per_hour, _HOUR, False),
            ("per_day", self.per_day, _DAY, False),
        )
        return tuple(
            Window(name, limit, seconds, writes_only)
            for name, limit, seconds, writes_only in candidates
            if limit is not None
        )


def retry_after_seconds(wait: float) -> int:
    """The ``Retry-After`` value for a real wait: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait))


class Throttle:
    """Counts the requests each client made and says how long a new one must wait.

    ``wait_time`` and ``record`` are separate so the caller can decide, with no await in
    between, whether a request is admitted: only admitted requests are recorded, so a
    throttled request never pushes the client's window further out.
    """

    def __init__(
        self,
        limits: Limits,
        *,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        spans: list[tuple[int, float, bool]] = []
        for window in limits.windows():
            real_seconds = window.seconds / time_scale - limits.tolerance
            if real_seconds > 0:
                spans.append((window.limit, real_seconds, window.writes_only))
        self._spans = tuple(spans)
        self._clock = clock
        self._history: dict[str, tuple[deque[float], ...]] = {}

    @property
    def active(self) -> bool:
        """Whether any window is enforced."""
        return bool(self._spans)

    def now(self) -> float:
        """The throttle's clock, in real seconds."""
        return self._clock()

    def wait_time(self, client: str, *, write: bool, now: float) -> float:
        """Real seconds until ``client`` may make this request; 0.0 when it may now."""
        history = self._history.get(client)
        if history is None:
            return 0.0

        wait = 0.0
        for (limit, span, writes_only), stamps in zip(
            self._spans, history, strict=True
        ):
            if writes_only and not write:
                continue
            cutoff = now - span
            while stamps and stamps[0] <= cutoff:
                stamps.popleft()
            if len(stamps) >= limit:
                wait = max(wait, stamps[len(stamps) - limit] + span - now)

        return wait

    def record(self, client: str, *, write: bool, now: float) -> None:
        """Count an admitted request."""
        if not self._spans:
            return
        history = self._history.get(client)
        if history is None:
            history = tuple(deque() for _ in self._spans)
            self._history[client] = history
        for (_, _, writes_only), stamps in zip(self._spans, history, strict=True):
            if write or not writes_only:
                stamps.append(now)
