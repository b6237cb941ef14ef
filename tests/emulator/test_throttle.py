"""Tests of the sliding-window limits."""

from __future__ import annotations

import pytest

from nexudus_async.emulator import Limits
from nexudus_async.emulator._throttle import Throttle, retry_after_seconds


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(limits: Limits, *, scale: float = 1.0) -> tuple[Throttle, FakeClock]:
    clock = FakeClock()
    return Throttle(limits, time_scale=scale, clock=clock), clock


def admit(throttle: Throttle, client: str = "c", *, write: bool = True) -> float:
    """Ask, and record the request when it is allowed; the wait when it is not."""
    now = throttle.now()
    wait = throttle.wait_time(client, write=write, now=now)
    if wait == 0:
        throttle.record(client, write=write, now=now)
    return wait


ONLY_WRITES = Limits(
    writes_per_minute=3,
    writes_per_day=None,
    per_100ms=None,
    per_minute=None,
    per_hour=None,
    per_day=None,
    tolerance=0.0,
)


class TestLimits:
    def test_documented_numbers(self) -> None:
        """The defaults are the documented per-client limits."""
        windows = {
            w.name: (w.limit, w.seconds, w.writes_only)
            for w in Limits.documented().windows()
        }
        assert windows == {
            "writes_per_minute": (60, 60.0, True),
            "writes_per_day": (5000, 86400.0, True),
            "per_100ms": (1, 0.1, False),
            "per_minute": (120, 60.0, False),
            "per_hour": (5000, 3600.0, False),
            "per_day": (200_000, 86400.0, False),
        }

    def test_off_has_no_windows(self) -> None:
        """Limits.off() sets no window at all."""
        assert Limits.off().windows() == ()
        assert not Limits.off().enabled
        assert Limits.documented().enabled

    def test_single_window_can_be_turned_off(self) -> None:
        """Setting one window to None removes only that window."""
        names = [w.name for w in Limits(per_100ms=None).windows()]
        assert "per_100ms" not in names
        assert "writes_per_minute" in names

    @pytest.mark.parametrize("value", [0, -1, 1.5, "3"])
    def test_bad_limit_is_refused(self, value: object) -> None:
        """A limit must be a positive integer or None."""
        with pytest.raises(ValueError, match="per_minute"):
            Limits(per_minute=value)  # type: ignore[arg-type]

    def test_negative_tolerance_is_refused(self) -> None:
        """The tolerance cannot be negative."""
        with pytest.raises(ValueError, match="tolerance"):
            Limits(tolerance=-0.1)


class TestThrottle:
    def test_allows_up_to_the_limit_then_waits(self) -> None:
        """The request past the limit must wait until the oldest one leaves the window."""
        throttle, clock = make(ONLY_WRITES)
        for _ in range(3):
            assert admit(throttle) == 0
            clock.now += 1
        assert admit(throttle) == pytest.approx(57.0)

    def test_window_slides(self) -> None:
        """Once the oldest request is a full window old, one more is allowed."""
        throttle, clock = make(ONLY_WRITES)
        for _ in range(3):
            admit(throttle)
            clock.now += 10
        clock.now = 1000.0 + 60.0
        assert admit(throttle) == 0
        assert admit(throttle) == pytest.approx(10.0)

    def test_refused_requests_are_not_counted(self) -> None:
        """A throttled request does not push the window further out."""
        throttle, clock = make(ONLY_WRITES)
        for _ in range(3):
            admit(throttle)
        for _ in range(10):
            clock.now += 5
            assert admit(throttle) > 0
        clock.now = 1000.0 + 60.0
        assert admit(throttle) == 0

    def test_reads_ignore_write_windows(self) -> None:
        """GET requests are not counted against the write limits."""
        throttle, _ = make(ONLY_WRITES)
        for _ in range(10):
            assert admit(throttle, write=False) == 0
        assert admit(throttle) == 0

    def test_clients_are_counted_apart(self) -> None:
        """Each client signature has its own windows."""
        throttle, _ = make(ONLY_WRITES)
        for _ in range(3):
            admit(throttle, "a")
        assert admit(throttle, "a") > 0
        assert admit(throttle, "b") == 0

    def test_time_scale_shrinks_windows(self) -> None:
        """At time scale 60 a minute window lasts one real second."""
        throttle, clock = make(ONLY_WRITES, scale=60)
        for _ in range(3):
            admit(throttle)
        assert admit(throttle) == pytest.approx(1.0)
        clock.now += 1.0
        assert admit(throttle) == 0

    def test_tolerance_shortens_windows(self) -> None:
        """The tolerance is taken off every window, in real seconds."""
        limits = Limits(
            writes_per_day=None,
            per_hour=None,
            per_day=None,
            per_minute=None,
            per_100ms=None,
            writes_per_minute=1,
            tolerance=0.5,
        )
        throttle, clock = make(limits)
        admit(throttle)
        clock.now += 59.5
        assert admit(throttle) == 0

    def test_window_shorter_than_tolerance_is_not_enforced(self) -> None:
        """A window the time scale makes shorter than the tolerance is dropped."""
        limits = Limits(
            per_100ms=1,
            writes_per_minute=None,
            writes_per_day=None,
            per_minute=None,
            per_hour=None,
            per_day=None,
            tolerance=0.01,
        )
        throttle, _ = make(limits, scale=60)
        assert not throttle.active
        assert all(admit(throttle) == 0 for _ in range(5))

    def test_burst_limit_at_real_time(self) -> None:
        """One request per 100 ms: the second in the same instant waits about 0.1 s."""
        limits = Limits(tolerance=0.0)
        throttle, clock = make(limits)
        assert admit(throttle, write=False) == 0
        assert admit(throttle, write=False) == pytest.approx(0.1)
        clock.now += 0.1
        assert admit(throttle, write=False) == 0

    def test_paced_client_is_never_throttled(self) -> None:
        """A client that spaces writes by exactly the allowed rate is never refused."""
        limits = Limits(per_100ms=None, per_minute=None)
        throttle, clock = make(limits)
        for _ in range(300):
            assert admit(throttle) == 0
            clock.now += 1.0

    def test_no_windows_means_inactive(self) -> None:
        """With limits off nothing is recorded and nothing waits."""
        throttle, _ = make(Limits.off())
        assert not throttle.active
        assert all(admit(throttle) == 0 for _ in range(1000))


class TestRetryAfter:
    @pytest.mark.parametrize(
        ("wait", "expected"), [(0.001, 1), (0.5, 1), (1.0, 1), (1.01, 2), (57.2, 58)]
    )
    def test_whole_seconds_rounded_up(self, wait: float, expected: int) -> None:
        """Retry-After is whole seconds, rounded up, never below one."""
        assert retry_after_seconds(wait) == expected
