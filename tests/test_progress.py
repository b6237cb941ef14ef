"""Tests for progress snapshots: counts, rate, ETA and pacing of the callback."""

from __future__ import annotations

import pytest

from nexudus_async._outcomes import OutcomeKind
from nexudus_async._progress import RATE_WINDOW, Progress, ProgressTracker


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TestProgressTracker:
    def test_callback_is_spaced_by_the_interval(self) -> None:
        """Snapshots go out at most once per interval, whatever the record rate."""
        clock = Clock()
        seen: list[Progress] = []
        tracker = ProgressTracker(seen.append, interval=1.0, total=100, clock=clock)

        for _ in range(10):
            clock.now += 0.25
            tracker.add(OutcomeKind.CREATED)

        assert [s.done for s in seen] == [4, 8]

    def test_rate_and_eta(self) -> None:
        """Rate is records per second; ETA is what is left at that rate."""
        clock = Clock()
        tracker = ProgressTracker(None, interval=1.0, total=100, clock=clock)
        for _ in range(20):
            clock.now += 0.5
            tracker.add(OutcomeKind.CREATED)

        snapshot = tracker.snapshot()

        assert snapshot.rate == pytest.approx(2.0)
        assert snapshot.eta == pytest.approx(40.0)
        assert snapshot.elapsed == pytest.approx(10.0)
        assert snapshot.counts[OutcomeKind.CREATED] == 20

    def test_rate_follows_recent_history(self) -> None:
        """After a slowdown, the rate reflects the last half minute, not the start."""
        clock = Clock()
        tracker = ProgressTracker(None, interval=1.0, total=None, clock=clock)
        for _ in range(100):
            clock.now += 0.01
            tracker.add(OutcomeKind.CREATED)
            tracker.snapshot()
        for _ in range(60):
            clock.now += 1.0
            tracker.add(OutcomeKind.SKIPPED)
            tracker.snapshot()

        snapshot = tracker.snapshot()

        assert snapshot.rate == pytest.approx(1.0, rel=0.1)
        assert snapshot.eta is None
        assert RATE_WINDOW == 30.0

    def test_final_snapshot_goes_out_once(self) -> None:
        """The final snapshot is sent exactly once, even if asked for twice."""
        clock = Clock()
        seen: list[Progress] = []
        tracker = ProgressTracker(seen.append, interval=60.0, total=1, clock=clock)
        tracker.add(OutcomeKind.FAILED)

        tracker.report(final=True)
        tracker.report(final=True)

        assert [s.final for s in seen] == [True]
        assert seen[0].eta == 0.0

    def test_str_is_a_readable_line(self) -> None:
        """A snapshot prints as a short line of counts, rate and ETA."""
        clock = Clock()
        tracker = ProgressTracker(None, interval=1.0, total=4, clock=clock)
        clock.now += 1
        tracker.add(OutcomeKind.CREATED)
        tracker.add(OutcomeKind.REJECTED)

        assert str(tracker.snapshot()) == (
            "2/4 done, 1 created, 1 rejected, 2.0/s, eta 1s"
        )
