"""Request timeouts end to end: the client's watchdog against a real loopback server.

A request fails after ``timeout`` seconds without news from the server, counted
from sending it to the first byte of the answer and then between two reads; the
watchdog notices within an eighth of the timeout. Its timeout is a cancellation
taken back, so the tests also check that the calling task is left as it was and
that a real cancellation from outside still goes through as one.

The server and the client factory are those of the acceptance tests. Timings use
generous margins: only lower bounds and loose upper bounds are asserted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web
from test_acceptance_client import (
    NEW,
    PATH,
    Server,
    Step,
    envelope,
    hang,
    make_client,
    record,
    reply,
)
from test_acceptance_client import (
    _call as call,
)
from test_acceptance_client import (
    _route as route,
)

from nexudus_async import (
    BasicAuth,
    NexudusClient,
    NexudusError,
    OutcomeUnknownError,
    RequestTimeoutError,
    RetryPolicy,
    TransportError,
)
from nexudus_async._sending import Phase, SendState, send_state

needs_uncancel = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="tasks count cancellations from Python 3.11"
)

#: Allowance for a slow machine on top of the documented lateness.
SLACK = 0.5
ONE = f"{PATH}/1"
NO_RETRY = RetryPolicy(max_attempts=1)


def twice(backoff: float = 0.0) -> RetryPolicy:
    """A budget of two attempts with a fixed wait between them."""
    return RetryPolicy(max_attempts=2, backoff_initial=backoff, jitter=0.0)


def trickle(data: Any, *, pieces: int, gap: float, first: float = 0.0) -> Step:
    """Answer ``data`` as JSON after ``first`` seconds, in ``pieces`` ``gap`` apart."""

    async def step(request: web.Request) -> web.StreamResponse:
        body = json.dumps(data).encode()
        size = -(-len(body) // pieces)
        await asyncio.sleep(first)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for n, start in enumerate(range(0, len(body), size)):
            if n:
                await asyncio.sleep(gap)
            await response.write(body[start : start + size])
        await response.write_eof()
        return response

    return step


def stall(first_piece: bytes = b"", seconds: float = 30.0) -> Step:
    """Send the headers (and ``first_piece`` of the body), then nothing for long."""

    async def step(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        if first_piece:
            await response.write(first_piece)
        await asyncio.sleep(seconds)
        return response

    return step


def cancelling() -> int:
    """How many cancellations of the current task are pending."""
    task = asyncio.current_task()
    assert task is not None
    return task.cancelling()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    """A scripted loopback server stamping requests with the real clock."""
    async with Server() as running:
        yield running


class TestConstruction:
    @pytest.mark.parametrize(
        "timeout", [0, 0.0, -1, -0.5, math.inf, math.nan, 10**400, -(10**400)]
    )
    def test_non_positive_timeout_is_refused(self, timeout: float) -> None:
        """A timeout not above zero, or not finite, raises ValueError at construction."""
        with pytest.raises(ValueError, match="timeout"):
            NexudusClient(auth=BasicAuth("user", "password"), timeout=timeout)

    def test_timeout_property_reports_the_setting(self) -> None:
        """The client reports the timeout it was given, None included."""
        auth = BasicAuth("user", "password")
        assert NexudusClient(auth=auth, timeout=2.5).timeout == 2.5
        assert NexudusClient(auth=auth, timeout=None).timeout is None


class TestSilence:
    async def test_trickling_answer_is_read_whole(self, server: Server) -> None:
        """An answer arriving in pieces, each in time but slower in all, succeeds."""
        timeout = 0.5
        server.on("GET", ONE, trickle(record(1), pieces=4, gap=0.25, first=0.25))
        async with make_client(server.base_url, timeout=timeout, retry=NO_RETRY) as c:
            started = time.monotonic()
            found = await c.import_files.get(1)
            spent = time.monotonic() - started
        assert found is not None
        assert (found.id, found.business_id, found.name) == (1, 1, "file")
        assert spent > timeout + timeout / 8
        assert len(server.hits) == 1

    @pytest.mark.parametrize(
        "first_piece", [b"", b'{"Id": 1, '], ids=["headers-only", "mid-body"]
    )
    async def test_stalled_answer_times_out_and_is_sent_again(
        self, first_piece: bytes, server: Server
    ) -> None:
        """A GET whose answer stalls raises RequestTimeoutError, sent, after retrying."""
        server.on("GET", ONE, stall(first_piece))
        async with make_client(server.base_url, timeout=0.3, retry=twice()) as client:
            with pytest.raises(RequestTimeoutError) as caught:
                await client.import_files.get(1)
        error = caught.value
        assert isinstance(error, TimeoutError)
        assert isinstance(error, TransportError)
        assert error.sent is True
        assert (error.method, error.path) == ("GET", ONE)
        assert isinstance(error.__cause__, asyncio.TimeoutError)
        assert len(server.hits) == 2

    @pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
    async def test_idempotent_call_recovers_from_a_stall(
        self, method: str, server: Server
    ) -> None:
        """GET, PUT and DELETE stalled mid-answer are sent again and then succeed."""
        success = reply(record(1) if method == "GET" else envelope(1))
        server.on(*route(method), stall(b'{"Id": 1, '), success)
        async with make_client(server.base_url, timeout=0.3, retry=twice()) as client:
            assert await call(client, method) is not None
        assert len(server.hits) == 2

    async def test_create_without_answer_is_outcome_unknown_and_sent_once(
        self, server: Server
    ) -> None:
        """A create timing out raises OutcomeUnknownError from a TimeoutError, sent once."""
        server.on("POST", PATH, hang(), reply(envelope(1)))
        retry = RetryPolicy(max_attempts=5, backoff_initial=0.0, jitter=0.0)
        async with make_client(server.base_url, timeout=0.3, retry=retry) as client:
            with pytest.raises(OutcomeUnknownError) as caught:
                await client.import_files.create(NEW)
            # Time for a second attempt to show up, were one sent.
            await asyncio.sleep(0.3)
        error = caught.value
        assert (error.method, error.path) == ("POST", PATH)
        assert isinstance(error.__cause__, asyncio.TimeoutError)
        assert not isinstance(error, TimeoutError)
        assert len(server.seen("POST", PATH)) == 1
        assert len(server.hits) == 1

    async def test_create_stalled_mid_answer_is_outcome_unknown(
        self, server: Server
    ) -> None:
        """A create whose answer stops halfway is an unknown outcome, sent once."""
        server.on("POST", PATH, stall(b'{"Status": 200, '), reply(envelope(1)))
        async with make_client(server.base_url, timeout=0.3, retry=twice()) as client:
            with pytest.raises(OutcomeUnknownError) as caught:
                await client.import_files.create(NEW)
        assert isinstance(caught.value.__cause__, asyncio.TimeoutError)
        assert len(server.hits) == 1

    async def test_timeout_fires_close_to_the_limit(self, server: Server) -> None:
        """A silent request fails no sooner than the timeout, and within a tick of it."""
        timeout = 0.4
        server.on("GET", ONE, hang())
        async with make_client(server.base_url, timeout=timeout, retry=NO_RETRY) as c:
            started = time.monotonic()
            with pytest.raises(RequestTimeoutError):
                await c.import_files.get(1)
            spent = time.monotonic() - started
        assert timeout <= spent <= timeout + timeout / 8 + SLACK

    async def test_no_timeout_waits_for_a_slow_answer(self, server: Server) -> None:
        """With timeout None a slow answer is waited for."""
        server.on("GET", ONE, reply(record(1), delay=0.6))
        async with make_client(server.base_url, timeout=None, retry=NO_RETRY) as c:
            started = time.monotonic()
            found = await c.import_files.get(1)
            spent = time.monotonic() - started
        assert found is not None
        assert found.id == 1
        assert spent >= 0.6
        assert len(server.hits) == 1

    async def test_timeout_is_logged_as_such(
        self, server: Server, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The debug line of a timed-out attempt names the timeout as its outcome."""
        server.on("GET", ONE, hang())
        caplog.set_level(logging.DEBUG, logger="nexudus_async")
        async with make_client(server.base_url, timeout=0.3, retry=NO_RETRY) as c:
            with pytest.raises(RequestTimeoutError):
                await c.import_files.get(1)
        lines = [r.getMessage() for r in caplog.records]
        assert any(f"GET {ONE} -> timeout (attempt 1" in line for line in lines)


@needs_uncancel
class TestTheCallingTask:
    async def test_task_not_left_cancelling_after_a_timeout(
        self, server: Server
    ) -> None:
        """After a timeout the task is not cancelling and goes on awaiting as usual."""
        server.on("GET", ONE, hang())
        server.on("GET", f"{PATH}/2", reply(record(2)))
        async with make_client(server.base_url, timeout=0.3, retry=NO_RETRY) as c:
            with pytest.raises(RequestTimeoutError):
                await c.import_files.get(1)
            assert cancelling() == 0
            await asyncio.sleep(0.05)
            found = await c.import_files.get(2)
            assert found is not None
            assert found.id == 2
            assert cancelling() == 0

    async def test_task_not_left_cancelling_after_a_create_timeout(
        self, server: Server
    ) -> None:
        """After a create times out the task is not cancelling either."""
        server.on("POST", PATH, hang())
        async with make_client(server.base_url, timeout=0.3) as client:
            with pytest.raises(OutcomeUnknownError):
                await client.import_files.create(NEW)
            assert cancelling() == 0
            await asyncio.sleep(0.05)

    async def test_retried_timeouts_leave_no_cancellation_behind(
        self, server: Server
    ) -> None:
        """Several timed-out attempts, with waits between them, leave nothing pending."""
        server.on("GET", ONE, hang(), hang(), reply(record(1)))
        retry = RetryPolicy(max_attempts=3, backoff_initial=0.05, jitter=0.0)
        async with make_client(server.base_url, timeout=0.25, retry=retry) as c:
            found = await c.import_files.get(1)
            assert cancelling() == 0
        assert found is not None
        assert len(server.hits) == 3

    async def test_timeout_inside_an_outer_scope_is_still_a_timeout(
        self, server: Server
    ) -> None:
        """Within a longer anyio scope, the request's own timeout is a timeout error."""
        server.on("GET", ONE, hang())
        async with make_client(server.base_url, timeout=0.3, retry=NO_RETRY) as c:
            with anyio.move_on_after(10) as scope:
                with pytest.raises(RequestTimeoutError):
                    await c.import_files.get(1)
            assert not scope.cancelled_caught
            assert cancelling() == 0

    async def test_timeout_inside_asyncio_timeout_is_still_a_timeout(
        self, server: Server
    ) -> None:
        """Within a longer asyncio.timeout, the request's own timeout is raised as is."""
        server.on("GET", ONE, hang())
        async with make_client(server.base_url, timeout=0.3, retry=NO_RETRY) as c:
            with pytest.raises(RequestTimeoutError):
                async with asyncio.timeout(10):
                    await c.import_files.get(1)
            assert cancelling() == 0

    async def test_timeouts_in_a_task_group_spare_the_siblings(
        self, server: Server
    ) -> None:
        """In an anyio task group, one request timing out does not cancel the others."""
        server.on("GET", ONE, hang())
        # Still arriving, in time, when the other one times out.
        server.on("GET", f"{PATH}/2", trickle(record(2), pieces=3, gap=0.2, first=0.2))
        outcomes: dict[int, str] = {}
        async with make_client(server.base_url, timeout=0.3, retry=NO_RETRY) as c:

            async def fetch(n: int) -> None:
                try:
                    found = await c.import_files.get(n)
                except RequestTimeoutError:
                    outcomes[n] = "timeout"
                else:
                    outcomes[n] = "found" if found is not None else "missing"
                assert cancelling() == 0

            async with anyio.create_task_group() as group:
                group.start_soon(fetch, 1)
                group.start_soon(fetch, 2)
        assert outcomes == {1: "timeout", 2: "found"}


class TestOuterCancellation:
    async def test_task_cancel_is_a_cancellation(self, server: Server) -> None:
        """A request in flight whose task is cancelled raises CancelledError."""
        server.on("GET", ONE, hang())
        server.on("GET", f"{PATH}/2", reply(record(2)))
        async with make_client(server.base_url, timeout=5.0, retry=NO_RETRY) as c:
            task = asyncio.create_task(c.import_files.get(1))
            await server.wait_for(1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert task.cancelled()
            # The client is none the worse for it.
            found = await c.import_files.get(2)
            assert found is not None

    @needs_uncancel
    async def test_task_cancel_after_the_deadline_is_a_cancellation(
        self, server: Server
    ) -> None:
        """A cancellation meeting an overdue request is not turned into a timeout."""
        server.on("GET", ONE, hang())
        async with make_client(server.base_url, timeout=0.2, retry=NO_RETRY) as c:
            task = asyncio.create_task(c.import_files.get(1))
            await server.wait_for(1)
            # Make the request overdue and cancel it at the instant of the
            # watchdog's next check: both cancellations land before it runs.
            dog = c._watchdog
            (watch,) = dog._watches
            watch.deadline = 0.0
            assert dog._timer is not None
            asyncio.get_running_loop().call_at(dog._timer.when(), task.cancel)
            with pytest.raises(asyncio.CancelledError):
                await task
            assert task.cancelled()

    async def test_anyio_scope_sees_its_own_cancellation(self, server: Server) -> None:
        """anyio.move_on_after shorter than the timeout catches its own cancellation."""
        server.on("GET", ONE, hang())
        async with make_client(server.base_url, timeout=5.0, retry=NO_RETRY) as c:
            started = time.monotonic()
            with anyio.move_on_after(0.3) as scope:
                await c.import_files.get(1)
                pytest.fail("the request should have been cancelled")
            spent = time.monotonic() - started
            assert scope.cancelled_caught
            assert 0.3 <= spent < 5.0
            if sys.version_info >= (3, 11):
                assert cancelling() == 0

    @needs_uncancel
    async def test_asyncio_timeout_raises_its_own_timeout(self, server: Server) -> None:
        """asyncio.timeout shorter than the client's raises a plain TimeoutError."""
        server.on("GET", ONE, hang())
        async with make_client(server.base_url, timeout=5.0, retry=NO_RETRY) as c:
            started = time.monotonic()
            with pytest.raises(TimeoutError) as caught:
                async with asyncio.timeout(0.3):
                    await c.import_files.get(1)
            spent = time.monotonic() - started
            assert not isinstance(caught.value, NexudusError)
            assert isinstance(caught.value.__cause__, asyncio.CancelledError)
            assert 0.3 <= spent < 5.0
            assert cancelling() == 0
        assert len(server.hits) == 1

    async def test_cancelled_create_is_a_cancellation(self, server: Server) -> None:
        """A create cancelled from outside raises CancelledError, sent once."""
        server.on("POST", PATH, hang())
        async with make_client(server.base_url, timeout=5.0) as client:
            with anyio.move_on_after(0.3) as scope:
                await client.import_files.create(NEW)
            assert scope.cancelled_caught
        assert len(server.hits) == 1


class TestPool:
    async def test_waiting_for_a_pooled_connection_does_not_count(
        self, server: Server
    ) -> None:
        """With one connection per host, the request waiting for it is not timed out."""
        server.on("GET", ONE, reply(record(1), delay=0.7))
        server.on("GET", f"{PATH}/2", reply(record(2), delay=0.7))
        connector = aiohttp.TCPConnector(limit_per_host=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            client = make_client(
                server.base_url, session=session, timeout=1.0, retry=NO_RETRY
            )
            async with client:
                started = time.monotonic()
                found = await asyncio.gather(
                    client.import_files.get(1), client.import_files.get(2)
                )
                spent = time.monotonic() - started
        assert [f.id for f in found if f is not None] == [1, 2]
        assert len(server.hits) == 2
        # The two answers could not overlap: the second waited its turn.
        assert spent >= 1.4

    async def test_a_create_cancelled_while_waiting_for_a_connection_was_not_sent(
        self, server: Server
    ) -> None:
        """A create held for a pooled connection, then cancelled, reports waiting."""
        server.on("GET", ONE, hang())
        server.on("POST", PATH, reply(envelope(7)))
        connector = aiohttp.TCPConnector(limit_per_host=1)
        state = SendState()

        async def create(client: NexudusClient) -> None:
            send_state.set(state)
            await client.import_files.create(NEW)

        async with aiohttp.ClientSession(connector=connector) as session:
            client = make_client(
                server.base_url, session=session, timeout=5.0, retry=NO_RETRY
            )
            async with client:
                holder = asyncio.create_task(client.import_files.get(1))
                await server.wait_for(1)
                waiting = asyncio.create_task(create(client))
                await asyncio.sleep(0.2)
                waiting.cancel()
                holder.cancel()
                for task in (waiting, holder):
                    with pytest.raises(asyncio.CancelledError):
                        await task

        assert state.phase is Phase.WAITING
        assert [hit.method for hit in server.hits] == ["GET"]

    async def test_owned_session_serves_many_slow_requests(
        self, server: Server
    ) -> None:
        """A client's own session answers thirty concurrent slow requests, none late."""
        for n in range(1, 31):
            server.on("GET", f"{PATH}/{n}", reply(record(n), delay=0.3))
        async with make_client(server.base_url, timeout=1.0, retry=NO_RETRY) as c:
            found = await asyncio.gather(*(c.import_files.get(n) for n in range(1, 31)))
        assert [f.id for f in found if f is not None] == list(range(1, 31))
        assert len(server.hits) == 30

    async def test_owned_session_queues_beyond_its_pool_untimed(
        self, server: Server
    ) -> None:
        """More requests than the owned pool holds wait their turn without timing out."""
        count, delay, timeout = 130, 0.5, 0.75
        # Two answers in a row take longer than the timeout: only requests whose
        # wait for a connection is not counted can all succeed.
        assert 2 * delay > timeout + timeout / 8
        for n in range(1, count + 1):
            server.on("GET", f"{PATH}/{n}", reply(record(n), delay=delay))
        async with make_client(server.base_url, timeout=timeout, retry=NO_RETRY) as c:
            found = await asyncio.gather(
                *(c.import_files.get(n) for n in range(1, count + 1))
            )
        assert [f.id for f in found if f is not None] == list(range(1, count + 1))
        assert len(server.hits) == count


class TestClosing:
    async def test_request_in_flight_when_closing_still_times_out(
        self, server: Server
    ) -> None:
        """A request on a caller's session still times out if the client closes meanwhile."""
        server.on("GET", ONE, hang(2.0))
        timeout = 0.3
        async with aiohttp.ClientSession() as session:
            client = make_client(
                server.base_url, session=session, timeout=timeout, retry=NO_RETRY
            )
            await client.open()
            started = time.monotonic()
            task = asyncio.create_task(client.import_files.get(1))
            await server.wait_for(1)
            await client.close()
            with pytest.raises(RequestTimeoutError):
                await task
            spent = time.monotonic() - started
        assert spent <= timeout + timeout / 8 + SLACK
