"""Tests for how the bulk creator reads input items, classifies create errors and
settles a record cut short."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, cast

import pytest

from nexudus_async._bulk_record import (
    Attempt,
    SettleOptions,
    Settler,
    Verdict,
    prepare,
    verdict,
)
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
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    ProtocolError,
    QuotaExhaustedError,
    RequestTimeoutError,
    ServerError,
    ThrottledError,
    UnsuccessfulError,
    ValidationError,
    WireFormatError,
)
from nexudus_async._io import RecordKeys, SourceRecord
from nexudus_async._journal import JournalEntry
from nexudus_async._models import FieldError, ImportFileCreate, WriteResult
from nexudus_async._outcomes import OutcomeKind
from nexudus_async._sending import Phase, SendState

P = {"method": "POST", "path": "/api/crm/crmopportunityimportfiles"}


class Keys:
    """Counts the key requests."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def key_for(self, raw: Any) -> str:
        self.seen.append(dict(raw))
        return f"k{len(self.seen)}"


class TestPrepare:
    def test_a_model_is_taken_as_it_is(self) -> None:
        """A create payload is sent as given; its key comes from its wire form."""
        keys = Keys()
        payload = ImportFileCreate(1, "a", imported=True)

        attempt = prepare(payload, 4, keys)

        assert attempt.payload is payload
        assert (attempt.index, attempt.line, attempt.key) == (4, None, "k1")
        assert keys.seen == [{"BusinessId": 1, "Name": "a", "Imported": True}]

    def test_a_mapping_is_validated(self) -> None:
        """A mapping is converted, or carries every validation problem."""
        good = prepare({"BusinessId": "3", "Name": "x"}, 0, None)
        bad = prepare({"BusinessId": 0}, 1, None)

        assert good.payload == ImportFileCreate(3, "x")
        assert good.key is None
        assert bad.payload is None
        assert [e.property_name for e in bad.errors] == ["BusinessId", "Name"]

    def test_a_source_record_keeps_its_own_index_line_and_key(self) -> None:
        """A reader's record brings its index, line, problems and key."""
        record = SourceRecord(
            index=7,
            line=9,
            raw={"Name": ""},
            payload=None,
            problems=(FieldProblem("Name", "is required", ""),),
            key="abc-1",
        )

        attempt = prepare(record, 0, Keys())

        assert (attempt.index, attempt.line, attempt.key) == (7, 9, "abc-1")
        assert attempt.errors == (FieldError("Name", "is required", ""),)

    def test_a_record_that_cannot_be_keyed_is_not_sent(self) -> None:
        """A valid record the journal cannot key gets a problem instead of a payload."""

        class Unkeyable:
            def key_for(self, raw: Any) -> str:
                raise TypeError("no JSON form")

        attempt = prepare({"BusinessId": 1, "Name": "x"}, 0, Unkeyable())

        assert attempt.payload is None
        assert attempt.key is None
        assert attempt.problem == "the record cannot be journaled: no JSON form"

    def test_an_invalid_record_that_cannot_be_keyed_keeps_its_errors(self) -> None:
        """An invalid record with a value JSON cannot carry keeps its field errors."""
        with RecordKeys() as keys:
            attempt = prepare({"BusinessId": 1, "Oops": object()}, 0, keys)

        assert attempt.payload is None
        assert attempt.key is None
        assert attempt.problem is None
        assert {e.property_name for e in attempt.errors} == {"Name", "Oops"}

    def test_anything_else_is_a_problem(self) -> None:
        """An unsupported item gets a problem message and no payload."""
        attempt = prepare(3.5, 0, None)

        assert attempt.payload is None
        assert "float" in (attempt.problem or "")


def envelope(*errors: FieldError) -> WriteResult:
    return WriteResult(False, errors=errors)


RESUME = datetime(2030, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (QuotaExhaustedError(resume_at=RESUME, write=True), Verdict.QUOTA),
        (ThrottledError(**P, status=409, retry_after=1.0), Verdict.THROTTLED),
        (AuthenticationError(**P, status=401), Verdict.FATAL),
        (PermissionDeniedError(**P, status=403), Verdict.FATAL),
        (AuthError(error="invalid_grant"), Verdict.FATAL),
        (HostNotFoundError("no such host", **P, sent=False), Verdict.FATAL),
        (ClientStateError("closed"), Verdict.FATAL),
        (
            ValidationError(**P, status=400, envelope=envelope(FieldError("N", "m"))),
            Verdict.REFUSED,
        ),
        (BadRequestError(**P, status=400), Verdict.REFUSED),
        (UnsuccessfulError(**P, status=200, envelope=envelope()), Verdict.REFUSED),
        (ConflictError(**P, status=409), Verdict.REFUSED),
        (
            APIStatusError(**P, status=422, envelope=envelope(FieldError("N", "m"))),
            Verdict.REFUSED,
        ),
        (OutcomeUnknownError(**P, reason="timed out"), Verdict.MAYBE_STORED),
        (ServerError(**P, status=502), Verdict.MAYBE_STORED),
        (ProtocolError("empty", **P, status=200), Verdict.MAYBE_STORED),
        (ProtocolError("gateway page", **P, status=504), Verdict.MAYBE_STORED),
        (WireFormatError("bad", path="Value.Id", value="x"), Verdict.MAYBE_STORED),
        (ConnectError("reset", **P, sent=True), Verdict.MAYBE_STORED),
        (RequestTimeoutError("slow", **P, sent=True), Verdict.MAYBE_STORED),
        (ProtocolError("html", **P, status=404), Verdict.FAILED),
        (ConnectError("refused", **P, sent=False), Verdict.FAILED),
        (RequestTimeoutError("connect", **P, sent=False), Verdict.FAILED),
        (NotFoundError(**P, status=404), Verdict.FAILED),
        (APIStatusError(**P, status=405), Verdict.FAILED),
        (RuntimeError("bug"), Verdict.UNEXPECTED),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None,
)
def test_verdicts(error: Exception, expected: Verdict) -> None:
    """Each error a create can raise maps to what it means for the record."""
    assert verdict(error) is expected


class CancelledJob:
    """A job the caller cancelled, as a settler sees it."""

    running = False
    stop_reason = "the job was cancelled"
    resume_at = None

    def halt(self, reason: str, resume_at: datetime | None = None) -> None:
        raise AssertionError("a settler settling an interruption halts nothing")


class TestInterrupted:
    @pytest.mark.parametrize(
        ("unsure", "phase", "expected"),
        [
            (False, None, OutcomeKind.NOT_ATTEMPTED),
            # Unsure with no create of this run: an earlier run's may have landed.
            (True, None, OutcomeKind.UNKNOWN),
            # The creator never went through the client, which would have said.
            (True, Phase.UNTRACKED, OutcomeKind.UNKNOWN),
            (True, Phase.WAITING, OutcomeKind.NOT_ATTEMPTED),
            (True, Phase.SENT, OutcomeKind.UNKNOWN),
        ],
    )
    def test_only_the_clients_word_makes_an_unsure_record_unsent(
        self, unsure: bool, phase: Phase | None, expected: OutcomeKind
    ) -> None:
        """An unsure record is not attempted only when the client held it unsent."""
        # Settling an interruption sends nothing: no creator is needed.
        settler = Settler(
            cast(Any, None), CancelledJob(), journal=None, options=SettleOptions()
        )
        attempt = Attempt(0, None, None, ImportFileCreate(1, "a"), unsure=unsure)
        if phase is not None:
            attempt.sending = SendState()
            attempt.sending.phase = phase

        outcome = settler.interrupted(attempt)

        assert outcome.kind is expected
        if expected is OutcomeKind.NOT_ATTEMPTED:
            assert outcome.message == "not sent: the job was cancelled"
        else:
            assert (
                outcome.message
                == "the job was cancelled while the create was in flight"
            )


class TestMarkUnsent:
    @pytest.mark.parametrize(
        ("marks", "phase", "before", "expected"),
        [
            (1, Phase.WAITING, None, True),
            (1, Phase.WAITING, "failed", True),
            # Marked but never handed to the client, which would have said.
            (1, None, None, False),
            (1, Phase.UNTRACKED, None, False),
            (1, Phase.SENT, None, False),
            # A create of this run went before this one.
            (2, Phase.WAITING, None, False),
            # An earlier run's create may still land.
            (1, Phase.WAITING, "sending", False),
            (1, Phase.WAITING, "unknown", False),
        ],
    )
    def test_only_a_first_create_held_over_nothing_stored_is_unsent(
        self, marks: int, phase: Phase | None, before: str | None, expected: bool
    ) -> None:
        """A record's mark stands for nothing sent only in the one safe case."""
        attempt = Attempt(0, None, None, ImportFileCreate(1, "a"), key="k", marks=marks)
        if phase is not None:
            attempt.sending = SendState()
            attempt.sending.phase = phase
        if before is not None:
            attempt.journaled = JournalEntry(
                "k", before, None, 1, datetime.now(timezone.utc), 1, "a"
            )

        assert attempt.mark_unsent is expected
