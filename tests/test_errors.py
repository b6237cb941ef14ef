"""The error tree: one root, the branches, pickling, and no secrets in the text."""

from __future__ import annotations

import pickle
from datetime import datetime, timezone

import pytest

from nexudus_async._errors import (
    APIStatusError,
    AuthenticationError,
    AuthError,
    BadRequestError,
    ClientStateError,
    ConflictError,
    ConnectError,
    FieldProblem,
    HostNotFoundError,
    NexudusError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    ProtocolError,
    QuotaExhaustedError,
    RequestTimeoutError,
    ServerError,
    ThrottledError,
    TransportError,
    UnsuccessfulError,
    ValidationError,
    WireFormatError,
    error_for_status,
)
from nexudus_async._models import FieldError, WriteResult

ENVELOPE = WriteResult(
    was_successful=False,
    message="Name: is a required field",
    errors=(FieldError(property_name="Name", message="is a required field"),),
)
RESUME = datetime(2025, 1, 16, 0, 0, tzinfo=timezone.utc)

EXAMPLES: list[NexudusError] = [
    ConnectError("refused", method="POST", path="/api/x", sent=False),
    HostNotFoundError("cannot resolve", method="GET", path="/api/x", sent=False),
    RequestTimeoutError("slow", method="GET", path="/api/x", sent=True),
    OutcomeUnknownError(method="POST", path="/api/x", reason="timed out"),
    AuthError(error="invalid_grant", description="bad", status=400),
    QuotaExhaustedError(resume_at=RESUME, write=True),
    ClientStateError("closed"),
    ValidationError(
        method="POST", path="/api/x", status=400, body="{}", envelope=ENVELOPE
    ),
    ThrottledError(method="POST", path="/api/x", status=409, body="", retry_after=2.0),
    UnsuccessfulError(method="POST", path="/api/x", status=200, envelope=ENVELOPE),
    ProtocolError("empty", method="GET", path="/api/x", status=200, body=""),
    ServerError(method="GET", path="/api/x", status=503, body="<html>"),
]


class TestTree:
    def test_one_root(self) -> None:
        """Every error the client raises derives from NexudusError."""
        assert all(isinstance(e, NexudusError) for e in EXAMPLES)

    def test_no_response_branch(self) -> None:
        """Connection failures and timeouts share the transport branch; timeouts are TimeoutErrors."""
        assert issubclass(ConnectError, TransportError)
        assert issubclass(HostNotFoundError, ConnectError)
        assert issubclass(RequestTimeoutError, TransportError)
        assert issubclass(RequestTimeoutError, TimeoutError)
        assert not issubclass(OutcomeUnknownError, TransportError)

    def test_status_branch(self) -> None:
        """Per-status errors share APIStatusError; validation is a kind of bad request."""
        for cls in (
            BadRequestError,
            AuthenticationError,
            PermissionDeniedError,
            NotFoundError,
            ConflictError,
            ThrottledError,
            ServerError,
            UnsuccessfulError,
            ProtocolError,
        ):
            assert issubclass(cls, APIStatusError)
        assert issubclass(ValidationError, BadRequestError)

    @pytest.mark.parametrize(
        ("status", "cls"),
        [
            (400, BadRequestError),
            (401, AuthenticationError),
            (403, PermissionDeniedError),
            (404, NotFoundError),
            (409, ConflictError),
            (500, ServerError),
            (504, ServerError),
            (418, APIStatusError),
        ],
    )
    def test_error_for_status(self, status: int, cls: type[APIStatusError]) -> None:
        """Statuses map to their classes; unknown ones to the base class."""
        assert error_for_status(status) is cls


class TestAttributes:
    def test_sent_flag(self) -> None:
        """Transport errors say whether the request may have been sent."""
        assert EXAMPLES[0].sent is False  # type: ignore[attr-defined]
        assert EXAMPLES[2].sent is True  # type: ignore[attr-defined]

    def test_status_error_fields(self) -> None:
        """Status errors carry method, path, status, body, envelope and field errors."""
        error = EXAMPLES[7]
        assert isinstance(error, ValidationError)
        assert (error.method, error.path, error.status, error.body) == (
            "POST",
            "/api/x",
            400,
            "{}",
        )
        assert error.envelope is ENVELOPE
        assert [f.property_name for f in error.field_errors] == ["Name"]
        assert str(error) == "POST /api/x answered 400: Name: is a required field"

    def test_field_errors_empty_without_envelope(self) -> None:
        """Without an envelope there are no field errors, not None."""
        assert ServerError(method="GET", path="/p", status=500).field_errors == ()

    def test_throttle_retry_after(self) -> None:
        """A throttle carries the wait the server asked for."""
        assert EXAMPLES[8].retry_after == 2.0  # type: ignore[attr-defined]

    def test_quota_exhausted(self) -> None:
        """The quota error says when requests may resume."""
        error = EXAMPLES[5]
        assert isinstance(error, QuotaExhaustedError)
        assert error.resume_at == RESUME
        assert "2025-01-16T00:00:00+00:00" in str(error)


class TestValuesShown:
    def test_integer_too_long_to_print(self) -> None:
        """An int repr() refuses still leaves a readable error, value kept as given."""
        huge = 10**5000
        problem = FieldProblem("BusinessId", "must be at most 9", [huge])
        assert (
            str(problem)
            == "BusinessId: must be at most 9 (got <list too long to show>)"
        )
        wire = WireFormatError("too many digits", path="Id", value=huge)
        assert str(wire) == "Id: too many digits (got <int too long to show>)"
        assert wire.value == huge

    def test_long_values_are_cut(self) -> None:
        """A problem shows at most 80 characters of its value, a wire error 200."""
        assert str(FieldProblem("Name", "bad", "x" * 500)).endswith("x" * 79 + ")")
        wire = str(WireFormatError("bad", path="$", value="y" * 500))
        assert wire == "$: bad (got '" + "y" * 199 + ")"


class TestPickle:
    @pytest.mark.parametrize("error", EXAMPLES, ids=lambda e: type(e).__name__)
    def test_round_trip(self, error: NexudusError) -> None:
        """Every error pickles with its class, message and attributes."""
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert copy.__dict__ == error.__dict__
