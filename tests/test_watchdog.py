"""Watchdog and Watch: one shared timer cancelling the tasks of overdue requests.

Each test runs in a real event loop with short timeouts. The watchdog's timer is a
private detail, but this module tests a private module, so it looks at ``_timer``
where that is the only way to see the behaviour (nothing armed, nothing left over).
"""

from __future__ import annotations

import asyncio
import math
import sys
import time

import pytest

from nexudus_async._watchdog import MAX_TICK, TICKS_PER_TIMEOUT, Watch, Watchdog

needs_uncancel = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="tasks count cancellations from Python 3.11"
)

#: Short enough for quick tests, long enough for a busy machine to keep up.
TIMEOUT = 0.2
TICK = TIMEOUT / TICKS_PER_TIMEOUT
#: Allowance for a slow event loop on top of the documented lateness.
SLACK = 0.5


async def _until(condition: object, limit: float = 5.0) -> None:
    """Yield to the loop until ``condition()`` is true, failing after ``limit`` seconds."""
    assert callable(condition)
    end = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < end, "condition never became true"
        await asyncio.sleep(0.005)


class TestConstruction:
    @pytest.mark.parametrize(
        "timeout", [0, 0.0, -1, -0.5, math.inf, math.nan, 10**400, -(10**400)]
    )
    def test_non_positive_timeout_is_refused(self, timeout: float) -> None:
        """A timeout not above zero, or not finite, raises ValueError naming it."""
        with pytest.raises(ValueError, match="timeout") as caught:
            Watchdog(timeout)
        assert repr(timeout) in str(caught.value)

    @pytest.mark.parametrize("timeout", [True, "5", [5]])
    def test_a_timeout_that_is_not_a_number_is_refused(self, timeout: object) -> None:
        """A bool, a string or anything else not a number raises TypeError."""
        with pytest.raises(TypeError, match="timeout must be a number of seconds"):
            Watchdog(timeout)  # type: ignore[arg-type]

    async def test_no_timeout_watches_nothing(self) -> None:
        """Without a timeout start() returns None, arms no timer, and None is inert."""
        dog = Watchdog(None)
        assert dog.timeout is None
        watch = dog.start()
        assert watch is None
        assert dog._timer is None
        assert dog.timed_out(watch) is False
        dog.stop(watch)
        assert dog._timer is None

    async def test_start_outside_a_task_is_refused(self) -> None:
        """start() called from a plain loop callback, with no task, raises RuntimeError."""
        dog = Watchdog(TIMEOUT)
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[BaseException | None] = loop.create_future()

        def callback() -> None:
            try:
                dog.start()
            except BaseException as error:
                outcome.set_result(error)
            else:
                outcome.set_result(None)

        loop.call_soon(callback)
        error = await outcome
        assert isinstance(error, RuntimeError)
        assert "task" in str(error)
        assert dog._timer is None

    async def test_tick_is_an_eighth_of_the_timeout(self) -> None:
        """The first check of a short timeout comes an eighth of the timeout later."""
        dog = Watchdog(0.8)
        loop = asyncio.get_running_loop()
        before = loop.time()
        dog.start()
        assert dog._timer is not None
        assert before < dog._timer.when() <= loop.time() + 0.8 / TICKS_PER_TIMEOUT

    async def test_tick_never_longer_than_a_second(self) -> None:
        """The checks of a long timeout come at most a second apart."""
        dog = Watchdog(3600.0)
        loop = asyncio.get_running_loop()
        dog.start()
        assert dog._timer is not None
        assert dog._timer.when() <= loop.time() + MAX_TICK

    async def test_watch_repr_tells_its_state(self) -> None:
        """A watch shows its deadline, or that it fired."""
        task = asyncio.current_task()
        assert task is not None
        watch = Watch(task, TIMEOUT)
        watch.deadline = 12.5
        assert repr(watch) == "Watch(deadline=12.500)"
        watch.fired = True
        assert repr(watch) == "Watch(fired)"


class TestFiring:
    @needs_uncancel
    async def test_overdue_watch_cancels_its_task_within_a_tick(self) -> None:
        """A silent request's task is cancelled once its deadline passes, and no sooner."""
        dog = Watchdog(TIMEOUT)
        seen: dict[str, object] = {}

        async def request() -> None:
            watch = dog.start()
            started = time.monotonic()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                seen["after"] = time.monotonic() - started
                seen["timed_out"] = dog.timed_out(watch)
                task = asyncio.current_task()
                assert task is not None
                seen["cancelling"] = task.cancelling()
            finally:
                dog.stop(watch)

        task = asyncio.create_task(request())
        await asyncio.wait_for(task, 5)
        assert not task.cancelled()
        after = seen["after"]
        assert isinstance(after, float)
        assert TIMEOUT <= after <= TIMEOUT + TICK + SLACK
        assert seen["timed_out"] is True
        assert seen["cancelling"] == 0

    async def test_progress_keeps_a_request_alive(self) -> None:
        """A request that keeps hearing from the server is never cancelled."""
        dog = Watchdog(TIMEOUT)

        async def request() -> float:
            watch = dog.start()
            assert watch is not None
            started = time.monotonic()
            try:
                for _ in range(10):
                    await asyncio.sleep(TIMEOUT / 4)
                    watch.progress()
            finally:
                dog.stop(watch)
            return time.monotonic() - started

        spent = await asyncio.wait_for(asyncio.create_task(request()), 5)
        assert spent > 2 * TIMEOUT

    async def test_progress_moves_the_deadline(self) -> None:
        """progress() sets the deadline a whole timeout from now."""
        dog = Watchdog(TIMEOUT)
        watch = dog.start()
        assert watch is not None
        first = watch.deadline
        await asyncio.sleep(0.02)
        watch.progress()
        assert watch.deadline > first
        assert watch.deadline <= time.monotonic() + TIMEOUT
        dog.stop(watch)

    async def test_only_the_overdue_request_is_cancelled(self) -> None:
        """Of two watched requests, the silent one times out and the busy one goes on."""
        dog = Watchdog(TIMEOUT)
        outcomes: dict[str, str] = {}

        async def request(name: str, talks: bool) -> None:
            watch = dog.start()
            assert watch is not None
            try:
                for _ in range(8):
                    await asyncio.sleep(TIMEOUT / 4)
                    if talks:
                        watch.progress()
                outcomes[name] = "done"
            except asyncio.CancelledError:
                if not dog.timed_out(watch):
                    raise
                outcomes[name] = "timed out"
            finally:
                dog.stop(watch)

        await asyncio.wait_for(
            asyncio.gather(request("busy", True), request("silent", False)), 5
        )
        assert outcomes == {"busy": "done", "silent": "timed out"}


class TestAnswering:
    @needs_uncancel
    async def test_timed_out_false_when_someone_else_cancelled_too(self) -> None:
        """A task cancelled by the watchdog and by someone else is really cancelled."""
        dog = Watchdog(TIMEOUT)
        loop = asyncio.get_running_loop()
        seen: dict[str, object] = {}
        started = asyncio.Event()

        async def request() -> None:
            watch = dog.start()
            assert watch is not None
            # Overdue at the first check, which the outsider's cancel meets.
            watch.deadline = 0.0
            started.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                seen["timed_out"] = dog.timed_out(watch)
                task = asyncio.current_task()
                assert task is not None
                seen["cancelling"] = task.cancelling()
                raise
            finally:
                dog.stop(watch)

        task = asyncio.create_task(request())
        await started.wait()
        timer = dog._timer
        assert timer is not None
        # Same instant as the watchdog's check: both land before the task runs.
        loop.call_at(timer.when(), task.cancel)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        assert task.cancelled()
        assert seen["timed_out"] is False
        assert seen["cancelling"] == 1

    async def test_timed_out_false_for_an_outside_cancellation_alone(self) -> None:
        """A task cancelled only from outside is not taken for a timeout."""
        dog = Watchdog(10.0)
        seen: dict[str, object] = {}
        started = asyncio.Event()

        async def request() -> None:
            watch = dog.start()
            started.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                seen["timed_out"] = dog.timed_out(watch)
                raise
            finally:
                dog.stop(watch)

        task = asyncio.create_task(request())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert seen["timed_out"] is False

    @needs_uncancel
    async def test_timed_out_answers_once(self) -> None:
        """A fired watch is answered for once; asking again says no timeout."""
        dog = Watchdog(TIMEOUT)
        answers: list[bool] = []

        async def request() -> None:
            watch = dog.start()
            assert watch is not None
            watch.deadline = 0.0
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                answers.append(dog.timed_out(watch))
                answers.append(dog.timed_out(watch))
                assert watch.fired is False
            finally:
                dog.stop(watch)

        await asyncio.wait_for(asyncio.create_task(request()), 5)
        assert answers == [True, False]

    @needs_uncancel
    async def test_stop_withdraws_an_unanswered_cancellation(self) -> None:
        """Stopping a fired watch nobody answered for leaves the task not cancelling."""
        dog = Watchdog(TIMEOUT)
        seen: dict[str, object] = {}

        async def request() -> None:
            watch = dog.start()
            assert watch is not None
            watch.deadline = 0.0
            task = asyncio.current_task()
            assert task is not None
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                # Something below turned the cancellation into another error.
                seen["fired"] = watch.fired
                seen["before"] = task.cancelling()
            dog.stop(watch)
            seen["after"] = task.cancelling()
            seen["fired after"] = watch.fired
            # The task goes on awaiting as usual.
            await asyncio.sleep(0.01)

        task = asyncio.create_task(request())
        await asyncio.wait_for(task, 5)
        assert not task.cancelled()
        assert seen == {"fired": True, "before": 1, "after": 0, "fired after": False}

    async def test_stop_of_an_unfired_watch_leaves_the_task_alone(self) -> None:
        """Stopping a watch that never fired does not touch its task."""
        dog = Watchdog(TIMEOUT)
        watch = dog.start()
        assert watch is not None
        dog.stop(watch)
        dog.stop(watch)
        await asyncio.sleep(TIMEOUT + 3 * TICK)
        task = asyncio.current_task()
        assert task is not None
        if sys.version_info >= (3, 11):
            assert task.cancelling() == 0


class TestTimer:
    async def test_timer_not_rearmed_once_nothing_is_watched(self) -> None:
        """After every watch stops, the next check leaves no timer armed."""
        dog = Watchdog(TIMEOUT)
        first, second = dog.start(), dog.start()
        assert dog._timer is not None
        dog.stop(first)
        dog.stop(second)
        await _until(lambda: dog._timer is None)
        # It stays that way: nothing arms it again until a request starts.
        await asyncio.sleep(3 * TICK)
        assert dog._timer is None

    async def test_timer_rearmed_while_something_is_watched(self) -> None:
        """While a request is watched, each check arms the next one."""
        dog = Watchdog(TIMEOUT)
        watch = dog.start()
        assert watch is not None
        armed = dog._timer
        assert armed is not None
        await _until(lambda: dog._timer is not armed)
        assert dog._timer is not None
        assert not dog._timer.cancelled()
        dog.stop(watch)

    async def test_next_request_arms_the_timer_again(self) -> None:
        """A request started after the timer went idle is still timed out."""
        dog = Watchdog(TIMEOUT)
        dog.stop(dog.start())
        await _until(lambda: dog._timer is None)
        outcome: list[str] = []

        async def request() -> None:
            watch = dog.start()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                if not dog.timed_out(watch):
                    raise
                outcome.append("timed out")
            finally:
                dog.stop(watch)

        await asyncio.wait_for(asyncio.create_task(request()), 5)
        assert outcome == ["timed out"]
