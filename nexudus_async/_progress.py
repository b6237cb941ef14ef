"""Progress snapshots of a bulk job: counts per outcome, rate and time left."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

import attrs

from ._outcomes import OutcomeKind

__all__ = ["Progress", "ProgressCallback", "ProgressTracker"]

logger = logging.getLogger(__name__)

#: Seconds of recent history the rate is measured over. Long enough to smooth out
#: bursts of concurrent answers, short enough to follow a job slowed by the quota.
RATE_WINDOW: Final = 30.0


@attrs.frozen
class Progress:
    """A snapshot of a running (or finished) bulk job.

    Attributes:
        counts: Records finished so far, per outcome kind; every kind is present.
        done: Records finished so far (the sum of ``counts``).
        total: Number of input records, when known in advance.
        elapsed: Seconds since the job started.
        rate: Records finished per second over the last half minute or so.
        eta: Seconds until the end at the current rate, when the total is known and
            the rate is not zero.
        final: True for the last snapshot of the job.
    """

    counts: Mapping[OutcomeKind, int]
    done: int
    total: int | None
    elapsed: float
    rate: float
    eta: float | None
    final: bool = False

    def __str__(self) -> str:
        of = f"/{self.total}" if self.total is not None else ""
        parts = [f"{self.done}{of} done"]
        parts += [f"{n} {kind.value}" for kind, n in self.counts.items() if n]
        parts.append(f"{self.rate:.1f}/s")
        if self.eta is not None:
            parts.append(f"eta {self.eta:.0f}s")
        return ", ".join(parts)


#: Receives snapshots; runs on the event loop, so it must return quickly.
ProgressCallback = Callable[[Progress], object]


class ProgressTracker:
    """Counts outcomes and hands snapshots to a callback, at most once per interval."""

    def __init__(
        self,
        callback: ProgressCallback | None,
        *,
        interval: float,
        total: int | None,
        clock: Callable[[], float],
    ) -> None:
        self._callback = callback
        self._interval = interval
        self._clock = clock
        self.total = total
        self.counts: dict[OutcomeKind, int] = dict.fromkeys(OutcomeKind, 0)
        self.done = 0
        self._started = clock()
        self._next_report = self._started + interval
        self._samples: deque[tuple[float, int]] = deque([(self._started, 0)])
        self._final_sent = False

    def add(self, kind: OutcomeKind) -> None:
        """Count one finished record, and report if the interval has passed."""
        self.counts[kind] += 1
        self.done += 1
        if self._callback is not None and self._clock() >= self._next_report:
            self.report()

    def snapshot(self, *, final: bool = False) -> Progress:
        """Build a snapshot of the counts so far."""
        now = self._clock()
        self._samples.append((now, self.done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_WINDOW:
            self._samples.popleft()
        since, done_then = self._samples[0]
        span = now - since
        rate = (self.done - done_then) / span if span > 0 else 0.0

        eta: float | None = None
        if self.total is not None and rate > 0:
            eta = max(self.total - self.done, 0) / rate
        elif final:
            eta = 0.0

        return Progress(
            counts=MappingProxyType(dict(self.counts)),
            done=self.done,
            total=self.total,
            elapsed=now - self._started,
            rate=rate,
            eta=eta,
            final=final,
        )

    def report(self, *, final: bool = False) -> None:
        """Hand a snapshot to the callback now (the final one only once)."""
        if self._callback is None or self._final_sent:
            return
        self._final_sent = final
        self._next_report = self._clock() + self._interval
        snapshot = self.snapshot(final=final)
        try:
            self._callback(snapshot)
        except Exception:
            # A broken display must not break the job, nor lose the records' outcomes.
            logger.exception("progress callback failed; further snapshots dropped")
            self._callback = None
