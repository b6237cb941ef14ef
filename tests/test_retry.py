"""Retry decisions, waits and Retry-After parsing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import aiohttp
import pytest

from nexudus_async._errors import (
    BadRequestError,
    ConflictError,
    ConnectError,
    HostNotFoundError,
    NotFoundError,
    OutcomeUnknownError,
    ProtocolError,
    RequestTimeoutError,
    ServerError,
    ThrottledError,
    UnsuccessfulError,
)
from nexudus_async._retry import (
    RetryPolicy,
    parse_retry_after,
    retry_delay,
    server_now,
    should_retry,
)

NOW = datetime(2025, 1, 15, 10, 30, 0, tzinfo=timezone.utc)


def _status(cls: type, status: int) -> object:
    return cls(method="GET", path="/api/x", status=status)


class TestRetryPolicy:
    def test_defaults(self) -> None:
        """The defaults are five attempts, 0.5 s doubling to 30 s, Retry-After up to 120 s."""
        policy = RetryPolicy()
        assert (policy.max_attempts, policy.backoff_initial, policy.backoff_max) == (
            5,
            0.5,
            30.0,
        )
        assert policy.retry_after_max == 120.0

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"max_attempts": 0},
            {"backoff_initial": -1.0},
            {"jitter": 1.5},
            {"retry_after_max": -1},
        ],
    )
    def test_rejects_nonsense(self, kwargs: dict[str, float]) -> None:
        """Values that cannot make sense are refused at construction."""
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            RetryPolicy(**kwargs)  # type: ignore[arg-type]

    def test_backoff_doubles_then_caps(self) -> None:
        """Without jitter the waits double from the initial one up to the cap."""
        policy = RetryPolicy(backoff_initial=0.5, backoff_max=3.0, jitter=0.0)
        assert [policy.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]

    def test_jitter_shortens_within_its_fraction(self) -> None:
        """Jitter takes off at most its fraction of the wait, never adds to it."""
        policy = RetryPolicy(backoff_initial=4.0, jitter=0.25)
        assert policy.backoff(1, rand=lambda: 0.0) == 4.0
        assert policy.backoff(1, rand=lambda: 0.999999) == pytest.approx(3.0, abs=1e-5)


class TestParseRetryAfter:
    @pytest.mark.parametrize(
        ("value", "seconds"), [("2", 2.0), (" 17 ", 17.0), ("0", 0.0), ("1.5", 1.5)]
    )
    def test_seconds(self, value: str, seconds: float) -> None:
        """A number of seconds is read as such."""
        assert parse_retry_after(value, now=NOW) == seconds

    def test_http_date(self) -> None:
        """An HTTP date gives the seconds from now until then."""
        value = format_datetime(NOW + timedelta(seconds=7), usegmt=True)
        assert parse_retry_after(value, now=NOW) == 7.0

    def test_past_http_date_means_now(self) -> None:
        """A date already past asks for no wait at all."""
        value = format_datetime(NOW - timedelta(minutes=5), usegmt=True)
        assert parse_retry_after(value, now=NOW) == 0.0

    @pytest.mark.parametrize(
        "value", [None, "", "soon", "-3", "-0.5", "1e3", "inf", "NaN", "2 s"]
    )
    def test_garbage_and_negative_give_none(self, value: str | None) -> None:
        """Anything else, negative numbers included, leaves the choice to backoff."""
        assert parse_retry_after(value, now=NOW) is None

    def test_server_now_prefers_date_header(self) -> None:
        """The server's Date header is the reference for an HTTP-date Retry-After."""
        assert server_now(format_datetime(NOW, usegmt=True)) == NOW
        assert abs(server_now("garbage") - datetime.now(timezone.utc)) < timedelta(
            seconds=5
        )
        assert abs(server_now(None) - datetime.now(timezone.utc)) < timedelta(seconds=5)


class TestRetryDelay:
    def test_server_wish_capped(self) -> None:
        """Retry-After is obeyed up to the cap."""
        policy = RetryPolicy(retry_after_max=10.0)
        assert retry_delay(policy, 1, 2.0) == 2.0
        assert retry_delay(policy, 1, 3600.0) == 10.0

    def test_backoff_without_wish(self) -> None:
        """Without Retry-After the exponential backoff applies."""
        policy = RetryPolicy(backoff_initial=1.0, jitter=0.0)
        assert retry_delay(policy, 3, None) == 4.0


class TestShouldRetry:
    def _connect(self, *, sent: bool) -> ConnectError:
        return ConnectError("x", method="POST", path="/p", sent=sent)

    @pytest.mark.parametrize("idempotent", [True, False])
    def test_safe_for_every_method(self, idempotent: bool) -> None:
        """Throttles and failures before sending are retried whatever the method."""
        throttle = ThrottledError(method="POST", path="/p", status=409)
        refused = self._connect(sent=False)
        unresolved = HostNotFoundError("x", method="POST", path="/p", sent=False)
        connect_timeout = RequestTimeoutError("x", method="POST", path="/p", sent=False)
        for error in (throttle, refused, unresolved, connect_timeout):
            assert should_retry(error, idempotent=idempotent)

    def test_throttle_asking_too_long_is_final(self) -> None:
        """A throttle whose wait passes the give-up bound is handed to the caller."""
        long = ThrottledError(method="POST", path="/p", status=409, retry_after=7200)
        short = ThrottledError(method="POST", path="/p", status=409, retry_after=60)
        assert not should_retry(long, idempotent=True, give_up_over=3600)
        assert should_retry(short, idempotent=True, give_up_over=3600)
        assert should_retry(long, idempotent=True)

    def test_after_sending_only_idempotent(self) -> None:
        """Failures after sending and 5xx are retried only for idempotent calls."""
        for error in (
            self._connect(sent=True),
            RequestTimeoutError("x", method="GET", path="/p", sent=True),
            _status(ServerError, 503),
        ):
            assert should_retry(error, idempotent=True)  # type: ignore[arg-type]
            assert not should_retry(error, idempotent=False)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("cls", "status"),
        [
            (BadRequestError, 400),
            (NotFoundError, 404),
            (ConflictError, 409),
            (UnsuccessfulError, 200),
            (ProtocolError, 200),
        ],
    )
    def test_answers_are_final(self, cls: type, status: int) -> None:
        """Refusals and unreadable answers are never retried."""
        assert not should_retry(_status(cls, status), idempotent=True)  # type: ignore[arg-type]

    def test_outcome_unknown_is_final(self) -> None:
        """A write whose outcome is unknown is never sent again."""
        error = OutcomeUnknownError(method="POST", path="/p", reason="timeout")
        assert not should_retry(error, idempotent=False)

    def test_certificate_failure_is_final(self) -> None:
        """A TLS failure does not heal by waiting, so it is not retried."""
        error = self._connect(sent=False)
        error.__cause__ = aiohttp.ClientSSLError(
            aiohttp.client_reqrep.ConnectionKey("h", 443, True, True, None, None, None),
            OSError("bad handshake"),
        )
        assert not should_retry(error, idempotent=True)
