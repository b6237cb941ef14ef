"""The shared rate limiter: sliding windows, the throttle pause, quota refusal."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest

from nexudus_async._errors import QuotaExhaustedError
from nexudus_async._limiter import RateLimiter, RateLimits, Window

if TYPE_CHECKING:
    from conftest import FakeTime


def _limiter(fake_time: FakeTime, *windows: Window, **kwargs: object) -> RateLimiter:
    limits = RateLimits(windows, **kwargs) if windows else None  # type: ignore[arg-type]
    return RateLimiter(limits, clock=fake_time.clock, sleep=fake_time.sleep)


async def _admit_times(
    limiter: RateLimiter, fake_time: FakeTime, writes: list[bool]
) -> list[float]:
    times = []
    for write in writes:
        await limiter.acquire(write=write)
        times.append(round(fake_time.now - 1000.0, 6))
    return times


class TestRateLimits:
    def test_documented_numbers(self) -> None:
        """The documented limits: writes 60/min and 5,000/day; all 1/100 ms, 120/min, 5,000/h."""
        limits = RateLimits.documented()
        found = {(w.limit, w.seconds, w.writes_only) for w in limits.windows}
        assert found == {
            (60, 60.0, True),
            (5000, 86400.0, True),
            (1, 0.1, False),
            (120, 60.0, False),
            (5000, 3600.0, False),
        }
        assert limits.margin == 0.05

    @pytest.mark.parametrize(("limit", "seconds"), [(0, 1.0), (1, 0.0), (-1, 1.0)])
    def test_window_rejects_nonsense(self, limit: int, seconds: float) -> None:
        """A window must allow at least one request over a positive span."""
        with pytest.raises(ValueError, match="must be > 0"):
            Window(limit, seconds)

    def test_windows_become_a_tuple(self) -> None:
        """Any iterable of windows is stored as a tuple, keeping the limits immutable."""
        limits = RateLimits([Window(1, 1.0)], margin=0.5)
        assert limits.windows == (Window(1, 1.0),)


class TestSlidingWindows:
    async def test_no_limits_never_waits(self, fake_time: FakeTime) -> None:
        """With limits off, requests go at once however many there are."""
        limiter = _limiter(fake_time)
        assert await _admit_times(limiter, fake_time, [True] * 50) == [0.0] * 50
        assert fake_time.sleeps == []

    @pytest.mark.parametrize("windows", [(), (Window(2, 10.0),)])
    async def test_acquire_tells_whether_it_waited(
        self, fake_time: FakeTime, windows: tuple[Window, ...]
    ) -> None:
        """False when the request goes at once, True after a window or a pause held it.

        The client asks for the credential again only after a wait, so a wrong
        False here could send a token that expired while the request was held.
        """
        limiter = _limiter(fake_time, *windows)
        assert await limiter.acquire(write=True) is False
        limiter.pause(3.0)
        assert await limiter.acquire(write=True) is True
        assert fake_time.sleeps
        fake_time.now += 100.0
        assert await limiter.acquire(write=False) is False

    async def test_request_counts_for_exactly_the_window(
        self, fake_time: FakeTime
    ) -> None:
        """The request after the limit goes exactly one window after the first."""
        limiter = _limiter(fake_time, Window(3, 10.0))
        times = await _admit_times(limiter, fake_time, [False] * 7)
        assert times == [0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 20.0]

    async def test_sliding_not_fixed(self, fake_time: FakeTime) -> None:
        """A slot frees up when its own request is one window old, not at a boundary."""
        limiter = _limiter(fake_time, Window(2, 10.0))
        await limiter.acquire(write=False)
        fake_time.now += 4.0
        await limiter.acquire(write=False)
        times = await _admit_times(limiter, fake_time, [False, False])
        assert times == [10.0, 14.0]

    async def test_writes_only_window_ignores_reads(self, fake_time: FakeTime) -> None:
        """A write window holds writes but lets reads through."""
        limiter = _limiter(fake_time, Window(1, 60.0, writes_only=True))
        await limiter.acquire(write=True)
        assert await _admit_times(limiter, fake_time, [False, False]) == [0.0, 0.0]
        assert await _admit_times(limiter, fake_time, [True]) == [60.0]

    async def test_writes_count_in_general_windows(self, fake_time: FakeTime) -> None:
        """Writes use up the general windows too."""
        limiter = _limiter(fake_time, Window(2, 5.0))
        assert await _admit_times(limiter, fake_time, [True, True, False]) == [
            0.0,
            0.0,
            5.0,
        ]

    async def test_margin_stretches_every_window(self, fake_time: FakeTime) -> None:
        """The safety margin is added to each window."""
        limiter = _limiter(fake_time, Window(1, 1.0), margin=0.25)
        assert await _admit_times(limiter, fake_time, [False, False]) == [0.0, 1.25]

    async def test_documented_spacing(self, fake_time: FakeTime) -> None:
        """Under the documented limits, 61 writes take one minute and go 100 ms apart."""
        limiter = RateLimiter(
            RateLimits.documented(margin=0.0),
            clock=fake_time.clock,
            sleep=fake_time.sleep,
        )
        times = await _admit_times(limiter, fake_time, [True] * 61)
        assert times[:3] == [0.0, 0.1, 0.2]
        assert times[59] == pytest.approx(5.9)
        assert times[60] == pytest.approx(60.0)

    async def test_documented_margin_spaces_a_little_wider(
        self, fake_time: FakeTime
    ) -> None:
        """The default margin adds 50 ms to each window, so arrival jitter meets no throttle."""
        limiter = RateLimiter(
            RateLimits.documented(), clock=fake_time.clock, sleep=fake_time.sleep
        )
        times = await _admit_times(limiter, fake_time, [False] * 3)
        assert times == pytest.approx([0.0, 0.15, 0.3])

    async def test_cancelled_wait_takes_no_slot(self, fake_time: FakeTime) -> None:
        """A request cancelled while waiting is not counted."""
        limiter = RateLimiter(RateLimits([Window(1, 10.0)]))  # real clock and sleep
        await limiter.acquire(write=False)
        # asyncio.TimeoutError: the builtin from 3.11, a class of its own on 3.10.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(limiter.acquire(write=False), 0.01)
        assert len(limiter._sent[0][1]) == 1

    async def test_concurrent_waiters_share_slots(self, fake_time: FakeTime) -> None:
        """Concurrent requests are admitted no faster than the window allows."""
        limiter = _limiter(fake_time, Window(2, 1.0))
        admitted: list[float] = []

        async def one() -> None:
            await limiter.acquire(write=False)
            admitted.append(fake_time.now - 1000.0)

        await asyncio.gather(*(one() for _ in range(6)))
        assert sorted(round(t, 6) for t in admitted) == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]


class TestPause:
    async def test_pause_holds_every_request(self, fake_time: FakeTime) -> None:
        """A pause holds reads and writes alike until it ends."""
        limiter = _limiter(fake_time)
        limiter.pause(2.0)
        assert await _admit_times(limiter, fake_time, [False]) == [2.0]
        assert fake_time.sleeps == [2.0]

    async def test_longer_pause_wins(self, fake_time: FakeTime) -> None:
        """A shorter pause never cuts a longer one in force."""
        limiter = _limiter(fake_time)
        limiter.pause(5.0)
        limiter.pause(1.0)
        assert limiter.wait_time(write=False) == 5.0

    async def test_restart_is_spread_out(self, fake_time: FakeTime) -> None:
        """Requests held by a pause restart one spacing apart, not all at once."""
        limiter = _limiter(fake_time)
        limiter.pause(3.0)
        admitted: list[float] = []

        async def one() -> None:
            await limiter.acquire(write=True)
            admitted.append(round(fake_time.now - 1000.0, 6))

        await asyncio.gather(*(one() for _ in range(4)))
        assert sorted(admitted) == [3.0, 3.1, 3.2, 3.3]
        # Once the queue has drained, requests go freely again.
        fake_time.now += 10.0
        assert await _admit_times(limiter, fake_time, [False, False]) == [13.3, 13.3]

    async def test_pause_that_held_nobody_needs_no_restart(
        self, fake_time: FakeTime
    ) -> None:
        """A zero pause (Retry-After: 0) holds nothing, so nothing is spaced out."""
        limiter = _limiter(fake_time)
        await limiter.acquire(write=True)
        limiter.pause(0.0)
        assert await _admit_times(limiter, fake_time, [True, True]) == [0.0, 0.0]
        assert fake_time.sleeps == []

    async def test_restart_ends_under_a_busy_job(self) -> None:
        """Once the requests held by a pause are out, a busy job goes at full speed."""
        # Real time: the fake clock does not wake sleepers in deadline order, and the
        # order in which held and returning requests wake is what is under test.
        limiter = RateLimiter(None, restart_spacing=0.01)
        admitted: list[tuple[int, float]] = []

        async def worker(number: int) -> None:
            # Back for the next slot at once, so someone is always waiting.
            for _ in range(40):
                await limiter.acquire(write=True)
                admitted.append((number, time.monotonic()))

        start = time.monotonic()
        limiter.pause(0.05)
        await asyncio.gather(*(worker(n) for n in range(8)))
        took = time.monotonic() - start

        # The eight held by the pause go first, one spacing apart...
        restart = admitted[:8]
        assert {number for number, _ in restart} == set(range(8))
        assert restart[0][1] - start >= 0.05
        gaps = [b - a for (_, a), (_, b) in itertools.pairwise(restart)]
        assert min(gaps) >= 0.01 - 1e-6
        # ...then the rest go unspaced: kept one spacing apart, 320 take 3.2 s.
        assert len(admitted) == 320
        assert took < 1.0

    async def test_restart_does_not_wait_for_the_windows(self) -> None:
        """A held request the windows delay further does not keep the restart going."""
        limiter = RateLimiter(
            RateLimits([Window(1, 0.5, writes_only=True)]), restart_spacing=0.01
        )
        await limiter.acquire(write=True)
        limiter.pause(0.05)
        order: list[str] = []

        async def write() -> None:
            await limiter.acquire(write=True)
            order.append("write")

        async def reader() -> None:
            for _ in range(40):
                await limiter.acquire(write=False)
                order.append("read")

        await asyncio.gather(write(), *(reader() for _ in range(4)))
        # The write window frees 0.5 s after the first write; restart-spaced behind
        # the write until then, the reads would not all be out by that time.
        assert order[-1] == "write"

    async def test_pause_does_not_count_towards_max_wait(
        self, fake_time: FakeTime
    ) -> None:
        """A server-asked pause longer than max_wait is waited out, not refused."""
        limiter = _limiter(fake_time, Window(10, 1.0), max_wait=1.0)
        limiter.pause(30.0)
        await limiter.acquire(write=True)
        assert fake_time.now == 1030.0


class TestQuota:
    async def test_daily_quota_refuses_with_resume_time(
        self, fake_time: FakeTime
    ) -> None:
        """A write the windows would hold beyond max_wait fails with the resume time."""
        limiter = _limiter(
            fake_time, Window(2, 86400.0, writes_only=True), max_wait=300.0
        )
        await _admit_times(limiter, fake_time, [True, True])
        before = datetime.now(timezone.utc)
        with pytest.raises(QuotaExhaustedError) as caught:
            await limiter.acquire(write=True)
        expected = before + timedelta(days=1)
        assert abs(caught.value.resume_at - expected) < timedelta(seconds=5)
        assert caught.value.write is True
        assert fake_time.sleeps == []
        # Reads are not held by the write window.
        await limiter.acquire(write=False)

    async def test_next_write_at(self, fake_time: FakeTime) -> None:
        """next_write_at tells when the windows will let the next write go."""
        limiter = _limiter(fake_time, Window(1, 600.0, writes_only=True))
        assert limiter.next_write_at() <= datetime.now(timezone.utc)
        await limiter.acquire(write=True)
        wait = limiter.next_write_at() - datetime.now(timezone.utc)
        assert timedelta(seconds=595) < wait <= timedelta(seconds=600)
        assert limiter.wait_time(write=False) == 0.0

    async def test_none_max_wait_waits_however_long(self, fake_time: FakeTime) -> None:
        """With max_wait None the limiter waits out even a daily window."""
        limiter = _limiter(fake_time, Window(1, 86400.0), max_wait=None)
        assert await _admit_times(limiter, fake_time, [True, True]) == [0.0, 86400.0]
