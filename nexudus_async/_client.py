"""The client: one aiohttp session, credentials, pacing, retries and typed answers."""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import logging
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlencode

import aiohttp
import anyio
from yarl import URL

from ._answers import Answer, interpret, transport_error
from ._auth import Auth, make_authenticator
from ._constants import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, TOKEN_PATH, USER_AGENT
from ._errors import (
    APIStatusError,
    AuthenticationError,
    ClientStateError,
    NexudusError,
    ThrottledError,
)
from ._limiter import RateLimiter, RateLimits
from ._resource import Call, ImportFiles
from ._retry import (
    RetryPolicy,
    caller_throttle_patience,
    retry_delay,
    should_retry,
)
from ._sending import SENT, WAITING, CallWithdrawn, SendState, send_state
from ._watchdog import Watch, Watchdog

__all__ = ["NexudusClient"]

logger = logging.getLogger(__name__)

_DOCUMENTED_LIMITS: Final = RateLimits.documented()
#: Sent with every request; a call's own headers override them.
_BASE_HEADERS: Final = {"Accept": "application/json", "User-Agent": USER_AGENT}


class _State(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_base_url(base_url: str, allow_http: bool) -> URL:
    url = URL(base_url)
    if url.scheme not in {"http", "https"} or not url.host:
        raise ValueError(
            f"base_url must be an http(s) URL with a host, got {base_url!r}"
        )
    if url.user or url.password or url.query_string or url.fragment:
        raise ValueError("base_url must not carry credentials, a query or a fragment")
    if url.scheme == "http" and not allow_http and not _is_loopback(url.host):
        raise ValueError(
            f"refusing plain http to {url.host!r}: only loopback hosts may use it "
            "unless allow_http=True"
        )

    return url.with_path(url.path.rstrip("/"))


def _pool_size(connector: aiohttp.BaseConnector | None) -> int | None:
    """How many connections the pool holds for one host; None when unbounded."""
    if connector is None:
        return None
    bounds = [n for n in (connector.limit, connector.limit_per_host) if n > 0]

    return min(bounds) if bounds else None


async def _read_body(response: aiohttp.ClientResponse, watch: Watch | None) -> bytes:
    """The whole body, each piece of it telling the watch the server is still there."""
    if watch is not None:
        watch.progress()
    content = response.content
    pieces = []
    try:
        while piece := await content.readany():
            pieces.append(piece)
            if watch is not None:
                watch.progress()
    except BaseException:
        # As aiohttp's own read does: a half-read answer cannot leave its
        # connection to the pool.
        response.close()
        raise

    return b"".join(pieces)


def _describe(error: NexudusError) -> str:
    if isinstance(error, APIStatusError):
        return f"{type(error).__name__} ({error.status})"

    return type(error).__name__


class NexudusClient:
    """An asyncio client for the Nexudus REST API.

    Use it as an async context manager, or call ``open()`` and ``close()``. It owns
    an aiohttp session unless one is passed in, in which case the caller keeps it
    and closes it. A closed client refuses every call with ``ClientStateError``.

    Every request of a client shares one rate limiter and one set of credentials.
    A request is sent again, after a wait, when that cannot do harm:

    * any method, when it surely never reached the server (the connection or the
      name lookup failed) or the server refused to look at it (a throttle: 429,
      or 409 without the signs of a real conflict); after a 401 the access token
      is renewed once and the request sent again, without using up an attempt;
    * GET, PUT and DELETE also after a timeout, a dropped connection or a 5xx.

    A POST that was sent and got no answer raises ``OutcomeUnknownError``: it may
    have been applied, and sending it again could apply it twice.

    Timeouts: a request that has heard nothing for ``timeout`` seconds fails. The
    time counts from sending it (opening a connection, when one is needed,
    included) to the first byte of the answer, and then between two reads of it;
    it is noticed within an eighth of ``timeout``, and at most a second, of
    running out. Waiting for the rate limiter or for a free connection of the
    session's pool does not count; with a session that other code also uses,
    waiting for connections that code holds can.

    Args:
        auth: The credentials: ``BasicAuth``, ``BearerAuth`` or ``PasswordAuth``.
        base_url: Root of the API, without ``/api``.
        session: An aiohttp session to use instead of creating one; never closed
            by the client.
        timeout: Seconds, as above; ``None`` waits forever.
        retry: Retry budget and waits.
        rate_limits: Client-side pacing; ``None`` turns it off (a throttle answer
            still pauses every request).
        allow_http: Allow plain http to hosts other than loopback ones.
        trust_env: Let the session this client creates take proxy settings from
            the environment (``HTTPS_PROXY`` and friends). Off by default.
        sleep: Waits the given seconds; tests pass a fake to run instantly.
        clock: Monotonic seconds, used for pacing; pass a fake along with ``sleep``.

    Raises:
        ValueError: ``base_url`` is not usable, or is plain http to a host that is
            not loopback without ``allow_http``, or ``timeout`` is not a finite
            number of seconds above 0.
        TypeError: ``timeout`` is not a number (nor None).
    """

    def __init__(
        self,
        *,
        auth: Auth,
        base_url: str = DEFAULT_BASE_URL,
        session: aiohttp.ClientSession | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        rate_limits: RateLimits | None = _DOCUMENTED_LIMITS,
        allow_http: bool = False,
        trust_env: bool = False,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = _State.NEW
        # Kept as text: every request joins it with a path.
        self._base_url = str(_check_base_url(base_url, allow_http))
        self._auth_config = auth
        self._auth = make_authenticator(auth, self._fetch_token)
        self._session = session
        self._owns_session = session is None
        self._trust_env = trust_env
        # aiohttp bounds opening a socket; the watchdog times the rest, since
        # aiohttp's own read timeout costs two event-loop timers per request.
        self._watchdog = Watchdog(timeout)
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=timeout, sock_read=None
        )
        # Made by `open`, once the session and so the size of its pool is known.
        self._pool_gate: asyncio.Semaphore | None = None
        self._retry = retry if retry is not None else RetryPolicy()
        self._limiter = RateLimiter(rate_limits, clock=clock, sleep=sleep)
        self._sleep = sleep
        self._import_files = ImportFiles(self._send)

    def __repr__(self) -> str:
        return (
            f"NexudusClient(base_url={self._base_url!r}, "
            f"auth={self._auth_config!r}, state={self._state.value!r})"
        )

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        # Guard every attribute: __init__ may have failed before setting them.
        if getattr(self, "_state", None) is _State.OPEN and getattr(
            self, "_owns_session", False
        ):
            _warn(f"Unclosed NexudusClient {self!r}", ResourceWarning, source=self)

    @property
    def base_url(self) -> str:
        """The root URL requests go to."""
        return self._base_url

    @property
    def closed(self) -> bool:
        """Whether ``close()`` has been called."""
        return self._state is _State.CLOSED

    @property
    def timeout(self) -> float | None:
        """Seconds a request may go without hearing from the server; None is forever."""
        return self._watchdog.timeout

    @property
    def limiter(self) -> RateLimiter:
        """The rate limiter every request of this client goes through."""
        return self._limiter

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy."""
        return self._retry

    @property
    def import_files(self) -> ImportFiles:
        """The CRM opportunity import files (``/api/crm/crmopportunityimportfiles``).

        Named for what it holds rather than the full entity name, which is long and
        the only resource of this client.
        """
        return self._import_files

    async def open(self) -> NexudusClient:
        """Create the session if needed and start serving calls.

        Returns:
            The client itself.

        Raises:
            ClientStateError: The client is already open, or was closed.
        """
        if self._state is not _State.NEW:
            raise ClientStateError(f"NexudusClient is already {self._state.value}")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                trust_env=self._trust_env, cookie_jar=aiohttp.DummyCookieJar()
            )
        pool = _pool_size(self._session.connector)
        if pool is not None and self._watchdog.timeout is not None:
            # A request waiting inside aiohttp for a pooled connection would be
            # timed as if the server were silent. Waiting here instead, for as
            # many requests as the pool has connections, comes before the watch.
            self._pool_gate = asyncio.Semaphore(pool)
        self._state = _State.OPEN

        return self

    async def close(self) -> None:
        """Close the session if the client created it. Calling it again does nothing."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        if self._owns_session and self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> NexudusClient:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # --- the request core ------------------------------------------------------------

    async def _send(self, call: Call) -> Any:
        """Send ``call``, retrying as the class documents, and interpret the answer.

        Returns:
            The decoded JSON of a 2xx answer; a ``WriteResult`` for envelopes.

        Raises:
            NexudusError: One of its subclasses, as the class documents.
        """
        session = self._open_session()
        # Whoever asked (a bulk worker) learns whether a cancelled call was sent.
        # Only a call that must not be repeated is tracked: a lookup, or the token
        # request a create makes on its way in this same task, says nothing about
        # whether the create left.
        sending = None if call.idempotent else send_state.get()
        if sending is not None and sending.phase is SENT:
            # An earlier call under this state may have reached the server;
            # nothing this one does can take that back.
            sending = None
        attempt, renewed = 0, False
        while True:
            attempt += 1
            if sending is not None:
                # Nothing of this attempt has left, and a call that must not be
                # repeated is only tried again after an answer that means the
                # server did not act on it: a throttle, a 401, a connection that
                # never opened (see `should_retry`).
                sending.phase = WAITING
            auth = self._auth if call.authenticated else None
            credential = None if auth is None else await auth.header()
            if await self._limiter.acquire(write=call.write) and auth is not None:
                # A slot is counted from the moment it is granted, so nothing slow
                # may come between it and sending: the token was renewed above if
                # it needed to be, and asking again costs nothing unless the wait
                # outlived it.
                credential = await auth.header()
            try:
                answer = await self._exchange(
                    session, call, credential, attempt, sending
                )
                return interpret(call, answer)
            except AuthenticationError:
                # A 401 means the request was not processed, whatever its method.
                if (
                    renewed
                    or credential is None
                    or not await self._auth.renew(credential)
                ):
                    raise
                renewed, attempt = True, attempt - 1
            except NexudusError as error:
                patience = None if call.idempotent else caller_throttle_patience.get()
                if attempt < self._retry.max_attempts and should_retry(
                    error,
                    idempotent=call.idempotent,
                    give_up_over=self._give_up_over(patience),
                ):
                    await self._wait_before_retry(call, error, attempt)
                    continue
                if patience is not None and isinstance(error, ThrottledError):
                    self._hold_for_caller(error, patience)
                raise

    def _open_session(self) -> aiohttp.ClientSession:
        session = self._session
        if self._state is _State.OPEN and session is not None and not session.closed:
            return session
        if self._state is _State.NEW:
            raise ClientStateError(
                "NexudusClient is not open: use 'async with NexudusClient(...)' "
                "or 'await client.open()'"
            )
        if self._state is _State.CLOSED:
            raise ClientStateError("NexudusClient is closed")

        raise ClientStateError("the aiohttp session given to NexudusClient is closed")

    def _give_up_over(self, patience: float | None) -> float:
        """The longest Retry-After of a throttle a call is sent again after."""
        policy = self._retry
        if patience is not None:
            # The caller sits out what the client would not wait in full.
            return min(policy.retry_after_give_up, policy.retry_after_max)

        return policy.retry_after_give_up

    def _hold_for_caller(self, error: ThrottledError, patience: float) -> None:
        """Pause every request for a throttle the caller will sit out itself."""
        wait = error.retry_after
        if wait is None or wait > patience:
            # The caller will stop rather than wait, and withdraws what it has
            # queued here: a pause would only keep those creates waiting for a
            # turn nobody is going to use.
            return
        logger.info("throttled: holding every request for %.2fs", wait)
        self._limiter.pause(wait)

    async def _wait_before_retry(
        self, call: Call, error: NexudusError, attempt: int
    ) -> None:
        retry_after = error.retry_after if isinstance(error, ThrottledError) else None
        delay = retry_delay(self._retry, attempt, retry_after)
        logger.info(
            "retrying %s %s in %.2fs after %s",
            call.method,
            call.path,
            delay,
            _describe(error),
        )
        if isinstance(error, ThrottledError):
            # Hold every request of the client, this one included: acquire() at the
            # top of the loop does the waiting.
            self._limiter.pause(delay)
        else:
            await self._sleep(delay)

    async def _exchange(
        self,
        session: aiohttp.ClientSession,
        call: Call,
        credential: str | None,
        attempt: int,
        sending: SendState | None,
    ) -> Answer:
        headers = {**_BASE_HEADERS, **call.headers}
        if credential is not None:
            headers["Authorization"] = credential
        if call.content_type is not None:
            headers["Content-Type"] = call.content_type
        gate = self._pool_gate
        if gate is not None:
            # Before the watch starts: see `open`.
            await gate.acquire()
        watchdog, watch = self._watchdog, None
        started = time.monotonic()
        outcome: object = "cancelled"
        try:
            watch = watchdog.start()
            if sending is not None:
                if sending.withdrawn:
                    # The caller stopped while this waited: it must not leave.
                    outcome = "withdrawn, not sent"
                    raise CallWithdrawn
                # From here the request may reach the server.
                sending.phase = SENT
            async with session.request(
                call.method,
                self._base_url + call.path,
                params=call.params,
                data=call.body,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                body = await _read_body(response, watch)
                outcome = response.status
                return Answer(outcome, response.headers, body)
        except (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError) as exc:
            outcome = type(exc).__name__
            raise transport_error(call, exc) from exc
        except asyncio.CancelledError:
            if not watchdog.timed_out(watch):
                raise
            outcome = "timeout"
            # asyncio's, which before Python 3.11 is not the builtin one, as the
            # timeouts aiohttp raises are.
            silence = asyncio.TimeoutError(
                f"no news from the server for {watchdog.timeout:g}s"
            )
            raise transport_error(call, silence) from silence
        finally:
            watchdog.stop(watch)
            if gate is not None:
                gate.release()
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "%s %s -> %s (attempt %d, %.3fs)",
                    call.method,
                    call.path,
                    outcome,
                    attempt,
                    time.monotonic() - started,
                )

    # --- the token endpoint ----------------------------------------------------------

    async def _fetch_token(
        self, form: Mapping[str, str], headers: Mapping[str, str]
    ) -> Any:
        # Asking for a token twice is harmless, so it is retried like a GET.
        call = Call(
            "POST",
            TOKEN_PATH,
            body=urlencode(form).encode("ascii"),
            content_type="application/x-www-form-urlencoded",
            headers=headers,
            authenticated=False,
            idempotent=True,
            expect="token",
        )

        return await self._send(call)
