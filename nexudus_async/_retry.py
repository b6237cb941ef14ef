"""When a failed request may be sent again, and how long to wait before it is."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Final

import aiohttp
import attrs

from ._errors import (
    ConnectError,
    NexudusError,
    RequestTimeoutError,
    ServerError,
    ThrottledError,
    TransportError,
)

__all__ = [
    "RetryPolicy",
    "caller_throttle_patience",
    "parse_retry_after",
    "retry_delay",
    "server_now",
    "should_retry",
]

_SECONDS = re.compile(r"\d+(\.\d+)?")

#: Set by a caller that sits out throttles of its creates itself, to the longest
#: Retry-After it will wait (a bulk job: its ``max_pause``; a longer one stops it).
#: For a create made from such a context, the client raises at once a throttle
#: asking for a longer wait than it would sit out in full (``retry_after_max``),
#: instead of sending again before the server's time: that early send would only
#: meet the same refusal, and the retry loop would hide from the caller a wait
#: that tells it to stop. A throttle it hands up that the caller will sit out also
#: pauses the client's limiter for the whole wait, so that requests already
#: waiting inside the client are held too. Lookups keep the client's own retries:
#: a caller that needs the answer is better served by a late one.
caller_throttle_patience: Final[ContextVar[float | None]] = ContextVar(
    "nexudus_async_caller_throttle_patience", default=None
)

# Failures of the TLS handshake or of the certificate are not going to heal by waiting.
_PERMANENT_CONNECT_FAILURES = (
    aiohttp.ClientConnectorCertificateError,
    aiohttp.ClientSSLError,
)


def _at_least(minimum: float) -> Callable[[object, attrs.Attribute[Any], float], None]:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
        if value < minimum:
            raise ValueError(f"{attribute.name} must be >= {minimum}, got {value!r}")

    return check


def _fraction(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value!r}")


@attrs.frozen
class RetryPolicy:
    """How often and how patiently a failed request is sent again.

    Which failures are retried depends on the method (see ``NexudusClient``); this
    object only sets the budget and the waits.

    Attributes:
        max_attempts: Total tries per call, the first one included; ``1`` turns
            retrying off. A refresh of the access token after a 401 does not use up
            an attempt.
        backoff_initial: Seconds before the second try when the server gave no
            ``Retry-After``; doubled for each later try.
        backoff_max: Upper bound, in seconds, of one backoff wait.
        retry_after_max: Upper bound, in seconds, of a wait the server asked for with
            ``Retry-After``.
        retry_after_give_up: A throttle asking for a wait longer than this many
            seconds is not retried at all: its ``ThrottledError`` reaches the caller
            at once. Such waits (the server's daily quota is the usual cause) are
            not ones a retry loop can sit out.
        jitter: Fraction of each backoff wait that is randomised (``0`` for exact
            waits, ``1`` for anything between zero and the full wait), so that
            clients that failed together do not come back together.
    """

    max_attempts: int = attrs.field(default=5, validator=_at_least(1))
    backoff_initial: float = attrs.field(default=0.5, validator=_at_least(0.0))
    backoff_max: float = attrs.field(default=30.0, validator=_at_least(0.0))
    retry_after_max: float = attrs.field(default=120.0, validator=_at_least(0.0))
    retry_after_give_up: float = attrs.field(default=3600.0, validator=_at_least(0.0))
    jitter: float = attrs.field(default=0.5, validator=_fraction)

    def backoff(
        self, attempt: int, *, rand: Callable[[], float] = random.random
    ) -> float:
        """Seconds to wait after failed try number ``attempt`` (counted from 1)."""
        base = min(self.backoff_max, self.backoff_initial * 2.0 ** (attempt - 1))

        return base * (1.0 - self.jitter * rand())


def should_retry(
    error: NexudusError, *, idempotent: bool, give_up_over: float = math.inf
) -> bool:
    """Whether a request that failed with ``error`` may be sent again.

    A request that surely never reached the server, or that the server refused to
    look at (a throttle), is safe to repeat whatever its method. Anything else is
    repeated only when repeating it cannot do harm twice.

    A throttle asking for a wait longer than ``give_up_over`` seconds is not
    retried: waiting the capped time would only meet the same refusal (the daily
    quota is the usual cause), so the caller gets the error and can stop or come
    back later.
    """
    if isinstance(error, ThrottledError):
        return error.retry_after is None or error.retry_after <= give_up_over
    if isinstance(error, (ConnectError, RequestTimeoutError)) and not error.sent:
        return not isinstance(error.__cause__, _PERMANENT_CONNECT_FAILURES)
    if isinstance(error, (TransportError, ServerError)):
        return idempotent

    return False


def retry_delay(
    policy: RetryPolicy,
    attempt: int,
    retry_after: float | None,
    *,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before try ``attempt + 1``: the server's wish, else backoff."""
    if retry_after is not None:
        return min(retry_after, policy.retry_after_max)

    return policy.backoff(attempt, rand=rand)


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Read a ``Retry-After`` header as seconds from ``now``.

    Both forms are accepted: a number of seconds, and an HTTP date (a date already
    past means "now", ``0.0``). Anything else, negative numbers included, gives
    ``None`` so that the caller falls back to its own backoff.
    """
    if value is None:
        return None
    text = value.strip()
    if _SECONDS.fullmatch(text):
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)

    return max(0.0, (when - now).total_seconds())


def server_now(date_header: str | None) -> datetime:
    """The server's idea of now, from its ``Date`` header, else the local clock.

    Measuring an HTTP-date ``Retry-After`` against the server's own clock keeps a
    skewed local clock from stretching or cutting the wait.
    """
    if date_header:
        try:
            when = parsedate_to_datetime(date_header)
        except (TypeError, ValueError, IndexError):
            pass
        else:
            return when if when.tzinfo else when.replace(tzinfo=timezone.utc)

    return datetime.now(timezone.utc)
