"""How the bulk creator settles one record: the decisions between input and outcome.

`Settler.settle` takes one prepared record to its outcome: local problems, the
journal, an optional existence check, then the create, sent again only when a
lookup has shown that the server does not have the record.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.to_thread
import attrs

from ._claims import Claims
from ._convert import to_wire
from ._errors import (
    APIStatusError,
    AuthenticationError,
    AuthError,
    BadRequestError,
    ClientStateError,
    ConflictError,
    FieldProblem,
    HostNotFoundError,
    NexudusError,
    OutcomeUnknownError,
    PermissionDeniedError,
    ProtocolError,
    QuotaExhaustedError,
    RecordValidationError,
    ServerError,
    ThrottledError,
    TransportError,
    UnsuccessfulError,
    WireFormatError,
)
from ._io import SourceRecord
from ._lookup import AmbiguousMatch, Lister, find_stored
from ._models import FieldError, ImportFileCreate, WriteResult
from ._outcomes import Outcome, OutcomeKind
from ._sending import UNTRACKED, WAITING, CallWithdrawn, SendState, send_state
from ._validate import validate_create

if TYPE_CHECKING:
    from ._journal import Journal, JournalEntry

__all__ = [
    "Attempt",
    "Creator",
    "JobControl",
    "KeySource",
    "SettleOptions",
    "Settler",
    "Verdict",
    "prepare",
    "verdict",
]

logger = logging.getLogger(__name__)


class Creator(Lister, Protocol):
    """The part of the import-files resource the bulk creator needs."""

    async def create(self, record: ImportFileCreate, /) -> WriteResult: ...


class KeySource(Protocol):
    """Gives each record content a stable journal key, as `RecordKeys` does."""

    def key_for(self, raw: Mapping[str, Any]) -> str: ...


class JobControl(Protocol):
    """What a settler may see and do of the job it works for."""

    @property
    def running(self) -> bool:
        """False once the job has stopped sending."""

    @property
    def stop_reason(self) -> str | None:
        """Why the job stopped."""

    @property
    def resume_at(self) -> datetime | None:
        """When the quota allows writes again, if the job stopped on it."""

    def halt(self, reason: str, resume_at: datetime | None = None) -> None:
        """Stop sending; creates in flight finish."""


@attrs.define(eq=False)
class Attempt:
    """One record on its way through a worker."""

    index: int
    line: int | None
    record: Any
    payload: ImportFileCreate | None
    errors: tuple[FieldError, ...] = ()
    problem: str | None = None
    key: str | None = None
    sends: int = 0
    throttles: int = 0
    #: A create may have reached the server and nothing has settled it since.
    unsure: bool = False
    #: Settled from the journal alone; nothing to write back to it.
    from_journal: bool = False
    #: When the latest send of this run left (`time.monotonic`, which is cheaper
    #: to read than the event loop's clock; only differences of it are used).
    sent_at: float = 0.0
    #: Left in flight by an earlier run: until when (wall clock, epoch seconds)
    #: that run's create may still land.
    settle_at: float | None = None
    #: Where the client reports how far this run's latest create of the record
    #: got: the worker's state, reset for each send. None before the first send,
    #: and outside a worker.
    sending: SendState | None = None
    #: The journal's entry for the record as this run found it, before any mark
    #: of its own (None: there was none, or there is no journal).
    journaled: JournalEntry | None = None
    #: Sending marks this run wrote for the record.
    marks: int = 0

    @property
    def label(self) -> str:
        """The record as a log line names it: by its line when it came from a file."""
        if self.line is not None:
            return f"the record on line {self.line}"
        return f"record {self.index}"

    @property
    def mark_unsent(self) -> bool:
        """Whether the journal's sending mark for this record stands for nothing sent.

        True when this run wrote the record's only mark of the run, the client
        says it still holds that create unsent, and the entry before the mark was
        none or a failed one, which stored nothing. A record sent earlier in this
        run, or left in doubt by an earlier run, may still land: its mark must stay.
        """
        sending = self.sending
        if self.marks != 1 or sending is None or sending.phase is not WAITING:
            return False
        before = self.journaled
        return before is None or before.state == "failed"

    def outcome(
        self,
        kind: OutcomeKind,
        *,
        id: int | None = None,
        errors: tuple[FieldError, ...] = (),
        message: str | None = None,
        resume_at: datetime | None = None,
        reconciled: bool = False,
    ) -> Outcome:
        """This record's outcome."""
        return Outcome(
            kind,
            self.index,
            self.line,
            self.record,
            id,
            errors,
            message,
            resume_at,
            reconciled,
        )


def _field_error(problem: FieldProblem) -> FieldError:
    return FieldError(problem.field, problem.message, problem.value)


def prepare(item: Any, position: int, keys: KeySource | None) -> Attempt:
    """Turn one input item into an attempt: payload, local problems, key.

    Args:
        item: An `ImportFileCreate`, a mapping keyed by wire names, or a
            `SourceRecord`.
        position: The item's 0-based position in the input.
        keys: Where journal keys come from; None when there is no journal.
    """
    if type(item) is ImportFileCreate and keys is None:
        # The usual record of a job without a journal: nothing to check or key.
        return Attempt(position, None, item, item)

    if isinstance(item, SourceRecord):
        return Attempt(
            index=item.index,
            line=item.line,
            record=item,
            payload=item.payload,
            errors=tuple(_field_error(p) for p in item.problems),
            key=item.key if keys is not None else None,
        )

    attempt = Attempt(index=position, line=None, record=item, payload=None)
    raw: Mapping[str, Any] | None = None
    if isinstance(item, ImportFileCreate):
        attempt.payload = item
        raw = to_wire(item) if keys is not None else None
    elif isinstance(item, Mapping):
        raw = item
        try:
            attempt.payload = validate_create(item)
        except RecordValidationError as exc:
            attempt.errors = tuple(_field_error(p) for p in exc.problems)
    else:
        attempt.problem = (
            "not a record: expected an ImportFileCreate, a mapping or a"
            f" SourceRecord, got {type(item).__name__}"
        )
    if keys is not None and raw is not None:
        try:
            attempt.key = keys.key_for(raw)
        except (TypeError, ValueError) as exc:
            # Only a mapping holding values JSON cannot carry gets here, and such a
            # record is nearly always invalid already. One that is valid is not
            # sent: without a key, a later run could not tell it was, and would
            # send it again.
            if attempt.payload is not None:
                attempt.payload = None
                attempt.problem = f"the record cannot be journaled: {exc}"

    return attempt


class Verdict(enum.Enum):
    """What a failed create means for the record and for the job."""

    #: The client's limits refuse to wait that long: stop the job, nothing sent.
    QUOTA = "quota"
    #: Throttled past the client's retries; not processed. Send it again after a
    #: pause, or stop the job if the server asked for a longer wait than that.
    THROTTLED = "throttled"
    #: Every later create would fail the same way: stop the job.
    FATAL = "fatal"
    #: The server looked at the record and refused it.
    REFUSED = "refused"
    #: The server may have stored it: look it up before anything else.
    MAYBE_STORED = "maybe_stored"
    #: Nothing was stored and there is no point in trying again now.
    FAILED = "failed"
    #: Not one of the SDK's errors; whether the request left cannot be told.
    UNEXPECTED = "unexpected"


_FATAL = (
    AuthError,
    AuthenticationError,
    PermissionDeniedError,
    HostNotFoundError,
    ClientStateError,
)


def verdict(exc: Exception) -> Verdict:
    """Classify an exception raised by a create."""
    if isinstance(exc, QuotaExhaustedError):
        return Verdict.QUOTA
    if isinstance(exc, ThrottledError):
        return Verdict.THROTTLED
    if isinstance(exc, _FATAL):
        return Verdict.FATAL
    if isinstance(exc, ProtocolError):
        # An odd body with a success status (or a gateway's 5xx page) follows work
        # the server may have done; one with a 4xx status follows a refusal.
        if exc.status < 300 or exc.status >= 500:
            return Verdict.MAYBE_STORED
        return Verdict.FAILED
    if isinstance(exc, (BadRequestError, UnsuccessfulError, ConflictError)):
        return Verdict.REFUSED
    if isinstance(exc, APIStatusError) and exc.field_errors:
        return Verdict.REFUSED
    if isinstance(exc, (OutcomeUnknownError, ServerError, WireFormatError)):
        return Verdict.MAYBE_STORED
    if isinstance(exc, TransportError):
        return Verdict.MAYBE_STORED if exc.sent else Verdict.FAILED
    if isinstance(exc, NexudusError):
        return Verdict.FAILED

    return Verdict.UNEXPECTED


def _every_record_would_fail(exc: Exception) -> str:
    # The stop reason is also the message of every record not attempted: said
    # plainly, the refusal would read as if each of them had met it.
    return f"{exc}; every record would fail the same way"


@attrs.frozen
class SettleOptions:
    """The per-record knobs of a bulk job; `bulk_create` documents each."""

    skip_existing: bool = False
    max_sends: int = 3
    reconcile_delay: float = 0.5
    throttle_pause: float = 5.0
    max_throttles: int = 10
    max_pause: float = 900.0
    settle_time: float = 35.0


def _timed_out(exc: Exception) -> bool:
    # The client raises the unknown outcome of a timeout from the timeout itself;
    # on Python 3.10 asyncio's timeout is not yet the builtin one.
    cause = exc.__cause__
    return isinstance(exc, OutcomeUnknownError) and isinstance(
        cause, (TimeoutError, asyncio.TimeoutError)
    )


class Settler:
    """Takes records to their outcomes for one job; shared by all its workers."""

    def __init__(
        self,
        files: Creator,
        job: JobControl,
        *,
        journal: Journal | None,
        options: SettleOptions,
    ) -> None:
        self._files = files
        self._job = job
        self._journal = journal
        self._options = options
        self._claims = Claims(journal)
        self._paused_until = float("-inf")
        self._ever_paused = False
        # Set when the job stops, to end a pause early; made with the first
        # pause, since anyio makes an event only inside a running event loop.
        self._stopped: anyio.Event | None = None
        self._unexpected_seen = False

    def close(self) -> None:
        """Release what the job's claims hold; the job has ended."""
        self._claims.close()

    def job_stopped(self) -> None:
        """Wake the workers waiting out a pause: there is nothing left to wait for."""
        if self._stopped is not None:
            self._stopped.set()

    # --- outcomes that need no request -------------------------------------------

    def not_attempted(
        self, a: Attempt, reason: str | None = None, resume_at: datetime | None = None
    ) -> Outcome:
        """The outcome of a record the job did not get to.

        Without a ``reason`` of the record's own, the message is why the job
        stopped, said as what it is for this record: it was not sent, or not
        sent again after a send that did not store it.
        """
        if reason is None:
            sent = a.sends
            if sent and a.sending is not None and a.sending.phase is WAITING:
                # The latest send never left the client.
                sent -= 1
            what = "not sent again" if sent else "not sent"
            reason = f"{what}: {self._job.stop_reason or 'the job stopped'}"
            resume_at = self._job.resume_at
        return a.outcome(OutcomeKind.NOT_ATTEMPTED, message=reason, resume_at=resume_at)

    def interrupted(self, a: Attempt) -> Outcome:
        """The outcome of a record whose settling was cancelled midway."""
        # Only the client's own word that it still held the create, waiting for
        # its rate limiter or a token, makes an unsure record one that was not
        # sent. Without that word (a creator that does not report, or a record
        # left unsure by a lost answer or an earlier run) it may have landed.
        if a.unsure and (a.sending is None or a.sending.phase is not WAITING):
            reason = self._job.stop_reason or "the job was interrupted"
            return a.outcome(
                OutcomeKind.UNKNOWN, message=f"{reason} while the create was in flight"
            )
        return self.not_attempted(a)

    # --- the flow ----------------------------------------------------------------

    async def settle(self, a: Attempt) -> Outcome:
        """Take one record to its outcome. Raises only on cancellation.

        The checks before the first send and the send loop are one coroutine on
        purpose: every await of the create resumes through each coroutine above
        it, and this path runs once per record.
        """
        payload = a.payload
        if payload is None:
            if not self._job.running:
                return self.not_attempted(a)
            return a.outcome(
                OutcomeKind.REJECTED,
                errors=a.errors,
                message=a.problem or "the record failed local validation",
            )
        # Every exit below ends the turn, and every Id taken is claimed before
        # its outcome is returned: the next record of the pair sees it.
        pair = (payload.business_id, payload.name)
        if not self._claims.try_turn(pair):
            await self._claims.take_turn(pair)
        try:
            if self._journal is not None or self._options.skip_existing:
                earlier = await self._before_sending(a, payload)
                if earlier is not None:
                    return earlier

            while True:
                if self._ever_paused:
                    await self._wait_while_paused()
                if not self._job.running:
                    return self.not_attempted(a)
                if self._journal is not None and not await self._mark_sending(
                    a, payload
                ):
                    return a.outcome(
                        OutcomeKind.FAILED, message="not sent: the journal failed"
                    )

                a.sends += 1
                a.unsure = True
                a.sent_at = time.monotonic()
                # The client reports into the worker's state, when there is one,
                # how far this create gets; what an earlier one got to is void.
                sending = a.sending = send_state.get()
                if sending is not None:
                    sending.phase = UNTRACKED
                    sending.in_call = True
                failure: Exception | None = None
                try:
                    result = await self._files.create(payload)
                except Exception as exc:
                    failure = exc
                finally:
                    if sending is not None:
                        sending.in_call = False
                if failure is not None:
                    outcome = await self._after_error(a, payload, failure)
                    if outcome is not None:
                        return outcome
                    continue
                a.unsure = False

                new_id = result.id
                if new_id is not None:
                    return self._owned(a, OutcomeKind.CREATED, new_id)
                return await self._created_without_id(a, payload)
        finally:
            self._claims.end_turn(pair)

    def _owned(
        self,
        a: Attempt,
        kind: OutcomeKind,
        id: int,
        message: str | None = None,
        *,
        reconciled: bool = False,
    ) -> Outcome:
        """A created or skipped outcome whose Id is now this record's."""
        self._claims.claim(id)
        # Built here rather than through `Attempt.outcome`: one per created record.
        return Outcome(
            kind, a.index, a.line, a.record, id, (), message, None, reconciled
        )

    def _owned_by_other(self, a: Attempt) -> Callable[[int], bool]:
        key = a.key
        return lambda id: self._claims.owned_by_other(id, key)

    async def _before_sending(
        self, a: Attempt, payload: ImportFileCreate
    ) -> Outcome | None:
        """What the journal and the existence check say; an outcome ends it here."""
        if not self._job.running:
            return self.not_attempted(a)
        if self._journal is not None and a.key is not None:
            earlier = self._from_journal(a, self._journal, a.key)
            if earlier is not None:
                return earlier
        if a.settle_at is not None:
            await self._wait_to_settle(a)
            if not self._job.running:
                return self.not_attempted(a)
        if a.unsure or self._options.skip_existing:
            return await self._check_existing(a, payload)

        return None

    async def _wait_to_settle(self, a: Attempt) -> None:
        """Wait until an earlier run's create for this record can no longer land.

        That run may have been killed while the server was still working on its
        create. A lookup before that create lands finds nothing, the record is
        sent again, and then the first one lands too: a duplicate. So the lookup
        waits until the sending mark is ``settle_time`` old. Only this record
        waits (and records of the same pair, which wait for their turn anyway).
        """
        # LIMITATION(the API offers an idempotency key or a client-chosen unique
        # field): the wait is measured from the mark, written just before the
        # create went to the client; a create the client then held back (rate
        # limiter, its own retries of a throttle) for longer than the margin, or
        # that the server took longer than settle_time to store, may still land
        # after the lookup.
        assert a.settle_at is not None
        wait = a.settle_at - time.time()
        if wait > 0:
            logger.debug(
                "%s: waiting %.1fs for an earlier run's create to settle",
                a.label,
                wait,
            )
            await anyio.sleep(wait)

    def _from_journal(self, a: Attempt, journal: Journal, key: str) -> Outcome | None:
        try:
            entry = journal.state(key)
        except Exception as exc:
            logger.error("journal read failed: %s", exc)
            self._job.halt(f"the journal failed: {exc}")
            return self.not_attempted(a)
        a.journaled = entry
        if entry is None or entry.state == "failed":
            # A failed create stored nothing; sending it again is safe.
            return None
        if entry.state in ("sending", "unknown"):
            a.unsure = True
            settle_at = entry.updated_at.timestamp() + self._options.settle_time
            if settle_at > time.time():
                a.settle_at = settle_at
            return None
        # Created or rejected: sending again would duplicate the record, or spend
        # quota on a refusal already known.
        a.from_journal = True
        message = f"{entry.state} in an earlier run"
        if entry.message:
            message += f": {entry.message}"
        return a.outcome(
            OutcomeKind.SKIPPED, id=entry.id, errors=entry.errors, message=message
        )

    async def _check_existing(
        self, a: Attempt, payload: ImportFileCreate
    ) -> Outcome | None:
        """Look the record up before sending; an outcome when nothing must be sent."""
        try:
            found = await find_stored(
                self._files, payload, strict=a.unsure, owned=self._owned_by_other(a)
            )
        except AmbiguousMatch as exc:
            return a.outcome(OutcomeKind.UNKNOWN, message=str(exc))
        except Exception as exc:
            return self._lookup_failed(a, exc, None)

        if found is None:
            # Not there: an earlier run's create never landed, so sending is safe.
            a.unsure = False
            return None
        if a.unsure:
            return self._owned(
                a,
                OutcomeKind.CREATED,
                found,
                "created by an earlier run whose answer was lost",
                reconciled=True,
            )
        return self._owned(
            a, OutcomeKind.SKIPPED, found, "a record with this name exists"
        )

    async def _created_without_id(
        self, a: Attempt, payload: ImportFileCreate
    ) -> Outcome:
        # A success without an Id: the record is there, so its Id is worth a lookup.
        try:
            found = await find_stored(
                self._files, payload, strict=False, owned=self._owned_by_other(a)
            )
        except Exception as exc:
            logger.debug("lookup of a created record's Id failed: %s", exc)
            found = None
        message = "the answer held no Id"
        if found is None:
            return a.outcome(OutcomeKind.CREATED, message=message)
        return self._owned(a, OutcomeKind.CREATED, found, f"{message}; found by lookup")

    async def _after_error(
        self, a: Attempt, payload: ImportFileCreate, exc: Exception
    ) -> Outcome | None:
        """Settle a failed create, or return None to send it again."""
        if isinstance(exc, CallWithdrawn):
            # The job stopped while the client held this create: nothing left.
            a.unsure = False
            return self.not_attempted(a)
        meaning = verdict(exc)
        if meaning is Verdict.MAYBE_STORED:
            return await self._reconcile(a, payload, exc)
        if meaning is Verdict.UNEXPECTED:
            # A fault below this layer. Looking the record up would not make a
            # second send any safer, so it is not sent again. One traceback tells
            # the story; the same fault on every record would only repeat it.
            level = logging.DEBUG if self._unexpected_seen else logging.ERROR
            self._unexpected_seen = True
            logger.log(level, "create raised %s", type(exc).__name__, exc_info=exc)
            return a.outcome(
                OutcomeKind.UNKNOWN, message=f"unexpected {type(exc).__name__}: {exc}"
            )

        # Every other verdict means the server did not act on this send.
        a.unsure = False
        if meaning is Verdict.QUOTA or meaning is Verdict.THROTTLED:
            spent = self._quota_spent(exc)
            if spent is not None:
                reason, resume_at = spent
                self._job.halt(reason, resume_at)
                if isinstance(exc, QuotaExhaustedError):
                    # The client's own limiter refused it: nothing left.
                    a.sends -= 1
                    return self.not_attempted(a)
                return self.not_attempted(a, reason, resume_at)
            assert isinstance(exc, ThrottledError)
            return self._throttled(a, exc)
        if meaning is Verdict.FATAL:
            return self._fatal(a, exc)
        if meaning is Verdict.REFUSED:
            assert isinstance(exc, APIStatusError)
            return a.outcome(
                OutcomeKind.REJECTED, errors=exc.field_errors, message=str(exc)
            )

        return a.outcome(OutcomeKind.FAILED, message=str(exc))

    def _quota_spent(self, exc: Exception) -> tuple[str, datetime] | None:
        """Why the job must stop for a spent quota and when it may go on, if so."""
        if isinstance(exc, QuotaExhaustedError):
            return str(exc), exc.resume_at
        if not isinstance(exc, ThrottledError) or exc.retry_after is None:
            return None
        wait = exc.retry_after
        if wait <= self._options.max_pause:
            return None
        # A wait this long is not a burst to ride out: the server's own quota for
        # the account is spent, often by another integration sharing it. A job
        # paused until then would sit silent for hours; stopping says when to
        # run it again instead.
        reason = (
            f"the server asked to wait {wait:.0f} seconds ({exc});"
            " its daily quota is probably spent"
        )

        return reason, datetime.now(timezone.utc) + timedelta(seconds=wait)

    def _throttled(self, a: Attempt, exc: ThrottledError) -> Outcome | None:
        # Still throttled after the client's own retries. A throttled create was not
        # processed: the whole job waits, then this one goes again.
        a.sends -= 1
        a.throttles += 1
        if a.throttles > self._options.max_throttles:
            return a.outcome(
                OutcomeKind.FAILED,
                message=f"still throttled after {a.throttles - 1} pauses: {exc}",
            )
        delay = self._options.throttle_pause
        if exc.retry_after is not None:
            delay = exc.retry_after
        until = anyio.current_time() + delay
        if until > self._paused_until:
            self._paused_until = until
            self._ever_paused = True
            logger.info("throttled: pausing every create for %.1fs", delay)

        return None

    async def _wait_while_paused(self) -> None:
        # A deadline rather than an event: a later throttle may push it further out
        # while this one waits, so it is read again after every wait. A stop of
        # the job ends the wait: the record will not be sent.
        if self._stopped is None:
            self._stopped = anyio.Event()
        stopped = self._stopped
        while (
            self._job.running
            and (wait := self._paused_until - anyio.current_time()) > 0
        ):
            with anyio.move_on_after(wait):
                await stopped.wait()

    async def _reconcile(
        self, a: Attempt, payload: ImportFileCreate, exc: Exception
    ) -> Outcome | None:
        """After a create that may have landed: look it up before anything else."""
        delay = self._options.reconcile_delay
        if _timed_out(exc):
            # No answer at all: the server may still be working on the create, and
            # may store it well after the client gave up. Look only once the send
            # is as old as an earlier run's mark must be before its lookup.
            delay = max(delay, a.sent_at + self._options.settle_time - time.monotonic())
        if delay > 0:
            # After a dropped connection or a 5xx the server has stopped talking,
            # but may be finishing the request; give it a moment before concluding
            # from its absence.
            await anyio.sleep(delay)
        try:
            found = await find_stored(
                self._files, payload, strict=True, owned=self._owned_by_other(a)
            )
        except AmbiguousMatch as ambiguity:
            return a.outcome(OutcomeKind.UNKNOWN, message=f"{exc}; {ambiguity}")
        except Exception as lookup_exc:
            return self._lookup_failed(a, lookup_exc, exc)

        # Ids other input records own (this job's, or an earlier run's per the
        # journal) were passed over: a sibling's record is not this one's.
        # LIMITATION(the API offers an idempotency key or a client-chosen unique
        # field): a record with this BusinessId and Name that was on the server
        # before the job, from outside its input, is still taken for this
        # record's lost create; and siblings that differ only in other fields
        # are told apart by which claimed an Id first, not by those fields.
        if found is not None:
            a.unsure = False
            logger.debug("%s reconciled to Id %d", a.label, found)
            return self._owned(
                a,
                OutcomeKind.CREATED,
                found,
                f"the answer was lost ({exc}); found by lookup",
                reconciled=True,
            )
        # The server has no record of this pair that no other input record owns:
        # this one's create did not land, and sending again cannot make a
        # duplicate.
        a.unsure = False
        if a.sends >= self._options.max_sends:
            return a.outcome(
                OutcomeKind.FAILED,
                message=f"sent {a.sends} times, never stored; last error: {exc}",
            )
        logger.debug("%s was not stored (%s); sending again", a.label, exc)

        return None

    def _lookup_failed(
        self, a: Attempt, exc: Exception, first: Exception | None
    ) -> Outcome:
        message = f"could not look the record up: {exc}"
        if first is not None:
            message = f"{first}; {message}"
        resume_at = None
        spent = self._quota_spent(exc)
        if spent is not None:
            reason, resume_at = spent
            self._job.halt(reason, resume_at)
        elif isinstance(exc, _FATAL):
            if not self._job.running and not a.unsure:
                return self.not_attempted(a)
            self._job.halt(_every_record_would_fail(exc))

        if a.unsure:
            return a.outcome(OutcomeKind.UNKNOWN, message=message, resume_at=resume_at)
        if resume_at is not None:
            return self.not_attempted(a, message, resume_at)
        return a.outcome(OutcomeKind.FAILED, message=message)

    def _fatal(self, a: Attempt, exc: Exception) -> Outcome:
        if self._job.running:
            self._job.halt(_every_record_would_fail(exc))
            return a.outcome(OutcomeKind.FAILED, message=str(exc))
        # Creates already in flight when the job stopped hit the same wall; the
        # first failure tells the story, these were simply not done.
        return self.not_attempted(a)

    async def _mark_sending(self, a: Attempt, payload: ImportFileCreate) -> bool:
        """Mark the record as being sent, durably, before it is; False on failure."""
        if self._journal is None or a.key is None:
            return True
        try:
            # The mark waits for the disk; a thread keeps the event loop serving
            # the other workers meanwhile.
            await anyio.to_thread.run_sync(
                self._journal.mark_sending, a.key, payload.business_id, payload.name
            )
        except Exception as exc:
            logger.error("journal write failed: %s", exc)
            self._job.halt(f"the journal failed: {exc}")
            return False
        a.marks += 1

        return True
