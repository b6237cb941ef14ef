"""The exception tree: one root, then a branch per way a call can go wrong.

``NexudusError`` is the root of everything the SDK raises. Below it:

* ``TransportError`` — no response came back (connection failure, timeout); each says
  whether the request had been sent.
* ``OutcomeUnknownError`` — a write that may or may not have happened.
* ``APIStatusError`` — the server answered; the error carries the method, the path, the
  status, the start of the body, the parsed envelope and its field errors.
* ``WireFormatError`` / ``RecordValidationError`` — data that does not fit the models.

Every error pickles with its attributes, and none of them ever holds a header, a token or
a password: the path is stored without its query string.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from ._models import FieldError, WriteResult

__all__ = [
    "APIStatusError",
    "AuthError",
    "AuthenticationError",
    "BadRequestError",
    "ClientStateError",
    "ConflictError",
    "ConnectError",
    "FieldProblem",
    "HostNotFoundError",
    "InputFileError",
    "JournalError",
    "NexudusError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "ProtocolError",
    "QuotaExhaustedError",
    "RecordValidationError",
    "RequestTimeoutError",
    "ServerError",
    "ThrottledError",
    "TransportError",
    "UnsuccessfulError",
    "ValidationError",
    "WireFormatError",
    "error_for_status",
]

#: How much of a response body an error keeps; enough to recognise an HTML error page.
BODY_EXCERPT_CHARS = 500


def _shown(value: Any, width: int) -> str:
    """The start of ``repr(value)``, which may not fail while an error is built."""
    try:
        text = repr(value)
    except ValueError:
        # repr() refuses integers of thousands of digits, even nested ones.
        text = f"<{type(value).__name__} too long to show>"
    return text[:width]


def _excerpt(body: str | None) -> str | None:
    if body is None or len(body) <= BODY_EXCERPT_CHARS:
        return body
    return body[:BODY_EXCERPT_CHARS] + "…"


class NexudusError(Exception):
    """Root of every exception raised by nexudus_async."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild through the class without calling __init__ again, so subclasses with
        # keyword-only constructors pickle with every attribute intact.
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[NexudusError], state: dict[str, Any]) -> NexudusError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


# --- data that does not fit -----------------------------------------------------------


class WireFormatError(NexudusError, ValueError):
    """JSON from the API (or given to the converter) does not fit the model.

    Also raised for a request body that cannot be written as JSON, such as text
    holding a lone surrogate; nothing is sent then.

    Attributes:
        path: Where in the document the problem is, e.g. ``Records[2].CreatedOn``.
        value: The raw value found there.
    """

    def __init__(self, message: str, *, path: str, value: Any) -> None:
        super().__init__(f"{path}: {message} (got {_shown(value, 200)})")
        self.path = path
        self.value = value


@attrs.frozen
class FieldProblem:
    """One field of an input record that failed local validation."""

    field: str
    message: str
    value: Any = None

    def __str__(self) -> str:
        return f"{self.field}: {self.message} (got {_shown(self.value, 80)})"


class RecordValidationError(NexudusError, ValueError):
    """An input record failed local validation; every failing field is listed.

    Attributes:
        problems: One entry per failing field, in field order.
        line: The source line of the record, when it came from a file.
    """

    def __init__(
        self, problems: Sequence[FieldProblem], *, line: int | None = None
    ) -> None:
        where = f"line {line}: " if line is not None else ""
        super().__init__(where + "; ".join(str(p) for p in problems))
        self.problems = tuple(problems)
        self.line = line


class InputFileError(NexudusError, ValueError):
    """An input file cannot be read as records at all.

    Raised for problems of the file rather than of one record: a bad header, bytes
    that are not text in the expected encoding, a line that is not JSON or not an
    object, an empty file.

    Attributes:
        path: The file as given (``"-"`` for standard input), or None for a stream.
        line: The 1-based line of the problem, when it has one.
    """

    def __init__(
        self, message: str, *, path: str | None = None, line: int | None = None
    ) -> None:
        where = "<stdin>" if path == "-" else (path or "<input>")
        if line is not None:
            where += f", line {line}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


class JournalError(NexudusError, RuntimeError):
    """The journal file cannot be used: not a journal, a newer schema, or in use."""


class ClientStateError(NexudusError, RuntimeError):
    """The client was used in a state that cannot serve a request (closed, not opened)."""


# --- no response ----------------------------------------------------------------------


class TransportError(NexudusError):
    """No response came back.

    Attributes:
        method: The HTTP method.
        path: The URL path, without its query string.
        sent: Whether the request may have reached the server. ``False`` means it
            certainly did not (the connection was never made).
    """

    def __init__(self, message: str, *, method: str, path: str, sent: bool) -> None:
        super().__init__(f"{method} {path}: {message}")
        self.method = method
        self.path = path
        self.sent = sent


class ConnectError(TransportError):
    """The connection failed: refused, reset, or the host could not be resolved."""


class HostNotFoundError(ConnectError):
    """The host name could not be resolved; nothing was sent.

    Retrying soon rarely helps, so a long job can stop at once on this error.
    """


class RequestTimeoutError(TransportError, TimeoutError):
    """No answer came within the timeout."""


class OutcomeUnknownError(NexudusError):
    """A write may or may not have been applied: it was sent and no answer came back.

    Never re-send such a write blindly: look the record up first.

    Attributes:
        method: The HTTP method.
        path: The URL path.
        reason: What went wrong, in words.
    """

    def __init__(self, *, method: str, path: str, reason: str) -> None:
        super().__init__(f"{method} {path}: outcome unknown: {reason}")
        self.method = method
        self.path = path
        self.reason = reason


class QuotaExhaustedError(NexudusError):
    """The client-side rate limits would hold this request longer than allowed.

    Nothing was sent. Typical cause: the daily write quota is spent.

    Attributes:
        resume_at: When the limits will let the next such request go (aware, UTC).
        write: Whether the refused request was a write.
    """

    def __init__(self, *, resume_at: datetime, write: bool) -> None:
        kind = "write" if write else "request"
        super().__init__(
            f"rate limit quota spent: next {kind} allowed at {resume_at.isoformat()}"
        )
        self.resume_at = resume_at
        self.write = write


class AuthError(NexudusError):
    """The token endpoint refused to issue a token.

    Attributes:
        error: The OAuth error code, e.g. ``invalid_grant``.
        description: The server's human-readable reason.
        status: The HTTP status of the refusal, when there was one.
    """

    def __init__(
        self, *, error: str, description: str | None = None, status: int | None = None
    ) -> None:
        text = f"token request refused: {error}"
        if description:
            text += f" ({description})"
        super().__init__(text)
        self.error = error
        self.description = description
        self.status = status


# --- the server answered --------------------------------------------------------------


class APIStatusError(NexudusError):
    """The server answered, and the answer is an error.

    Attributes:
        method: The HTTP method.
        path: The URL path, without its query string.
        status: The HTTP status code.
        body: The start of the response body, as text.
        envelope: The parsed write-result envelope, when the body was one.
        field_errors: The envelope's field errors (empty when there are none).
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        method: str,
        path: str,
        status: int,
        body: str | None = None,
        envelope: WriteResult | None = None,
    ) -> None:
        if message is None:
            message = envelope.message if envelope and envelope.message else None
        text = f"{method} {path} answered {status}"
        if message:
            text += f": {message}"
        super().__init__(text)
        self.method = method
        self.path = path
        self.status = status
        self.body = _excerpt(body)
        self.envelope = envelope

    @property
    def field_errors(self) -> tuple[FieldError, ...]:
        """The field errors of the envelope, or an empty tuple."""
        return self.envelope.errors if self.envelope is not None else ()


class BadRequestError(APIStatusError):
    """400: the server refused the request as malformed."""


class ValidationError(BadRequestError):
    """400 with field errors: the server refused the record's values."""


class AuthenticationError(APIStatusError):
    """401: the credentials were refused, or the account lacks the role for this call."""


class PermissionDeniedError(APIStatusError):
    """403: the account may not do this."""


class NotFoundError(APIStatusError):
    """404: no such record or route."""


class ConflictError(APIStatusError):
    """409 that is not a throttle: a real conflict reported by the server."""


class ThrottledError(APIStatusError):
    """409 or 429 with throttle signs: too many requests for now.

    Attributes:
        retry_after: Seconds the server asked to wait, or ``None`` when it gave none.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        method: str,
        path: str,
        status: int,
        body: str | None = None,
        envelope: WriteResult | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message,
            method=method,
            path=path,
            status=status,
            body=body,
            envelope=envelope,
        )
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx: the server failed."""


class UnsuccessfulError(APIStatusError):
    """2xx whose envelope says ``WasSuccessful: false``; carries its field errors."""


class ProtocolError(APIStatusError):
    """The body is not what the API documents: empty, HTML, not JSON, or no envelope."""


_BY_STATUS: Mapping[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
}


def error_for_status(status: int) -> type[APIStatusError]:
    """Pick the error class for an error status that carries no throttle signs."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, APIStatusError)
