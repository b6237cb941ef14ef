"""Reading what came back: an answer becomes data or an error, a failure an error.

The API documents JSON bodies, but its content-type labels cannot be trusted and
its failures (throttles, proxies, maintenance pages) arrive as empty or HTML
bodies. Everything here reads the bytes as they are and never lets a decoding
error of a lower layer through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Final

import aiohttp
import attrs
from multidict import CIMultiDictProxy

from . import _json
from ._convert import from_wire
from ._errors import (
    AuthError,
    BadRequestError,
    ConnectError,
    HostNotFoundError,
    NexudusError,
    OutcomeUnknownError,
    ProtocolError,
    RequestTimeoutError,
    ThrottledError,
    UnsuccessfulError,
    ValidationError,
    WireFormatError,
    error_for_status,
)
from ._models import WriteResult
from ._resource import Call
from ._retry import parse_retry_after, server_now

__all__ = ["Answer", "interpret", "transport_error"]

_ENVELOPE_KEYS: Final = ("WasSuccessful", "Errors", "Message")
# Statuses with which the token endpoint refuses a grant (it documents 400).
_REFUSALS: Final = frozenset({400, 401, 403})
# More than an error keeps, so the error can mark the cut itself.
_EXCERPT_BYTES: Final = 2000


# Not frozen, for the same reason as `Call`: one per response, never changed.
@attrs.define
class Answer:
    """A response as received: status, headers and the whole body."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


def interpret(call: Call, answer: Answer) -> Any:
    """The data of a successful answer, or the error an unsuccessful one stands for.

    Returns:
        The decoded JSON document, or a ``WriteResult`` when ``call`` expects an
        envelope.

    Raises:
        APIStatusError: One of its subclasses; ``AuthError`` for a refused grant.
    """
    if 200 <= answer.status < 300:
        return _success(call, answer)

    raise _status_error(call, answer)


def transport_error(call: Call, exc: BaseException) -> NexudusError:
    """Map an aiohttp failure to ours, by whether the request may have been sent.

    A failure after sending is an ``OutcomeUnknownError`` for a call that is not
    idempotent, since it may have been applied.
    """
    method, path = call.method, call.path
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return HostNotFoundError(
            f"cannot resolve host {exc.host!r}", method=method, path=path, sent=False
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.strerror or type(exc.os_error).__name__
        return ConnectError(
            f"cannot connect: {reason}", method=method, path=path, sent=False
        )
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return RequestTimeoutError(
            "timed out connecting", method=method, path=path, sent=False
        )
    timed_out = isinstance(exc, (asyncio.TimeoutError, TimeoutError))
    reason = "timed out waiting for the answer" if timed_out else _lost(exc)
    if not call.idempotent:
        return OutcomeUnknownError(method=method, path=path, reason=reason)
    if timed_out:
        return RequestTimeoutError(reason, method=method, path=path, sent=True)

    return ConnectError(reason, method=method, path=path, sent=True)


def _lost(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the answer was cut short"

    return f"the connection failed ({type(exc).__name__})"


def _excerpt(call: Call, body: bytes) -> str | None:
    # A token answer is full of secrets: never keep any of it.
    if call.expect == "token":
        return None

    return body[:_EXCERPT_BYTES].decode("utf-8", errors="replace")


def _decode(body: bytes) -> Any:
    """The JSON in ``body`` whatever its content type says, or ``None``."""
    # No check for an empty body first: that would copy every body, and an empty
    # one fails to decode anyway.
    try:
        return _json.loads(body)
    except ValueError:
        return None


def _not_json(body: bytes) -> str:
    return "the body is empty" if not body.strip() else "the body is not JSON"


def _protocol_error(call: Call, answer: Answer, reason: str) -> ProtocolError:
    return ProtocolError(
        reason,
        method=call.method,
        path=call.path,
        status=answer.status,
        body=_excerpt(call, answer.body),
    )


def _success(call: Call, answer: Answer) -> Any:
    data = _decode(answer.body)
    if call.expect == "envelope":
        return _write_result(call, answer, data)
    if not isinstance(data, (dict, list)):
        raise _protocol_error(call, answer, _not_json(answer.body))

    return data


def _write_result(call: Call, answer: Answer, data: Any) -> WriteResult:
    if not isinstance(data, dict) or not isinstance(data.get("WasSuccessful"), bool):
        reason = "the body is not a write result" if data is not None else None
        raise _protocol_error(call, answer, reason or _not_json(answer.body))
    try:
        result = from_wire(WriteResult, data)
    except WireFormatError as exc:
        raise _protocol_error(call, answer, f"bad write result: {exc}") from exc
    if not result.was_successful:
        raise UnsuccessfulError(
            method=call.method,
            path=call.path,
            status=answer.status,
            body=_excerpt(call, answer.body),
            envelope=result,
        )

    return result


def _status_error(call: Call, answer: Answer) -> NexudusError:
    status = answer.status
    if status < 400:
        return _protocol_error(call, answer, "unexpected status")
    data = _decode(answer.body)
    if call.expect == "token" and isinstance(data, dict) and status in _REFUSALS:
        refusal = _token_refusal(data, status)
        if refusal is not None:
            return refusal
    envelope = _envelope(data)
    fields: dict[str, Any] = {
        "method": call.method,
        "path": call.path,
        "status": status,
        "body": _excerpt(call, answer.body),
        "envelope": envelope,
    }
    if status == 429 or (status == 409 and _looks_throttled(answer, envelope)):
        now = server_now(answer.headers.get("Date"))
        retry_after = parse_retry_after(answer.headers.get("Retry-After"), now=now)
        return ThrottledError(retry_after=retry_after, **fields)
    cls = error_for_status(status)
    if cls is BadRequestError and envelope is not None and envelope.errors:
        cls = ValidationError

    return cls(**fields)


def _envelope(data: Any) -> WriteResult | None:
    """The write-result envelope in an error answer, if it holds one."""
    if not isinstance(data, dict) or not any(key in data for key in _ENVELOPE_KEYS):
        return None
    try:
        return from_wire(WriteResult, {"WasSuccessful": False, **data})
    except WireFormatError:
        return None


#: The documented throttle's reason phrase, as some answers repeat it in the body.
_MUST_WAIT: Final = b"must wait before accessing"


def _looks_throttled(answer: Answer, envelope: WriteResult | None) -> bool:
    """Whether a 409 is the API's throttle rather than a real conflict.

    The throttle answers with ``Retry-After``, an empty body and, at most, the
    phrase "You must wait" in its reason. A 409 that carries a write-result
    envelope explains itself, with or without field errors: that is a real
    conflict, and treating it as a throttle would re-send a create the server
    has judged. A body that is no envelope (a proxy's page, say) gives no such
    judgement, so it is read as the throttle the API documents.
    """
    if "Retry-After" in answer.headers or not answer.body.strip():
        return True
    if _MUST_WAIT in answer.body.lower():
        return True

    return envelope is None


def _token_refusal(data: Mapping[str, Any], status: int) -> AuthError | None:
    error = data.get("error")
    if not isinstance(error, str):
        return None
    description = data.get("error_description")

    return AuthError(
        error=error,
        description=description if isinstance(description, str) else None,
        status=status,
    )
