"""Streaming bulk creation of import files: one outcome per input record.

A job runs a fixed pool of worker tasks in one anyio task group. Each worker takes
the next record straight from the input, settles it, and hands its outcome to the
consumer through a small bounded queue, an `Outbox`. So the input is read only as
fast as records are settled (the look-ahead is one record per worker), the first
create goes out as soon as the first record is read, and the number of tasks never
grows past the concurrency, however long the input.

Everything that accounts for a record (journal, stop policy, counts, progress, the
caller's hook) happens synchronously in `BulkJob._record`, before the outcome is
handed over, so a cancellation can never leave a record half accounted for.
"""

from __future__ import annotations

import logging
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sized,
)
from datetime import datetime
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, NoReturn, Protocol, TypedDict

import anyio
import anyio.lowlevel

from ._bulk_record import Attempt, Creator, SettleOptions, Settler, prepare
from ._constants import DEFAULT_TIMEOUT
from ._errors import ClientStateError
from ._io import RecordKeys, SourceRecord
from ._models import ImportFileCreate
from ._outbox import EMPTY, Outbox
from ._outcomes import BulkReport, Outcome, OutcomeKind
from ._progress import Progress, ProgressCallback, ProgressTracker
from ._retry import caller_throttle_patience
from ._sending import WAITING, SendState, send_state

if TYPE_CHECKING:
    from anyio.abc import TaskGroup
    from typing_extensions import Unpack

    from ._journal import Journal, JournalEntry

__all__ = ["SETTLE_MARGIN", "BulkJob", "BulkOptions", "bulk_create", "create_all"]

logger = logging.getLogger(__name__)

#: Records read and marked not attempted between two yields to the event loop
#: while the rest of the input of a stopped job is drained.
DRAIN_BATCH: Final = 256

_END: Final = object()

#: Seconds added to the client's timeout to make the default ``settle_time``: the
#: server may store a create a little after the client stopped waiting for it.
SETTLE_MARGIN: Final = 5.0

_JournalState = Literal["created", "rejected", "failed", "unknown"]
#: What the journal records for each outcome that changed something. A record found
#: on the server is journaled as created, so the next run skips it without a lookup.
_JOURNAL_STATE: Final[Mapping[OutcomeKind, _JournalState]] = {
    OutcomeKind.CREATED: "created",
    OutcomeKind.SKIPPED: "created",
    OutcomeKind.REJECTED: "rejected",
    OutcomeKind.FAILED: "failed",
    OutcomeKind.UNKNOWN: "unknown",
}


class _ClientLike(Protocol):
    @property
    def import_files(self) -> Creator: ...


def _interrupted_by(exc: BaseException | None) -> str:
    if exc is None:
        return "the job was closed before its end"
    if isinstance(exc, anyio.get_cancelled_exc_class()):
        return "the job was cancelled"
    if isinstance(exc, Exception):
        return f"the job was left on an error ({type(exc).__name__})"
    return f"the job was interrupted ({type(exc).__name__})"


class BulkJob:
    """A running bulk creation; made by `bulk_create`, used as an async context manager.

    Iterating the job yields one `Outcome` per input record, in the order records
    finish. Leaving the ``async with`` block before the last outcome (``break``, an
    exception, a cancellation) stops the job: creates in flight are cancelled and
    end ``unknown`` (those the client still held, waiting for its rate limiter, a
    token or a free connection, end ``not_attempted``), the rest of the input is
    read and marked ``not_attempted`` (for at most ``drain_timeout`` seconds), and
    each of those outcomes still reaches the journal, the progress callback and
    ``on_outcome``. To stop and still see every outcome in the loop, call `cancel`
    (or `stop`) and keep iterating.

    If reading the input raises, the records read before finish, and then the
    iteration raises that exception.
    """

    def __init__(
        self,
        files: Creator,
        records: Iterable[Any] | AsyncIterable[Any],
        *,
        options: SettleOptions,
        concurrency: int,
        stop_after: int | None,
        journal: Journal | None,
        progress: ProgressCallback | None,
        progress_interval: float,
        on_outcome: Callable[[Outcome], object] | None,
        total: int | None,
        drain_timeout: float,
    ) -> None:
        _check_count("concurrency", concurrency, 1)
        if stop_after is not None:
            _check_count("stop_after", stop_after, 1)
        _check_count("max_sends", options.max_sends, 1)
        _check_count("max_throttles", options.max_throttles, 0)
        for name, seconds in (
            ("progress_interval", progress_interval),
            ("drain_timeout", drain_timeout),
            ("reconcile_delay", options.reconcile_delay),
            ("throttle_pause", options.throttle_pause),
            ("max_pause", options.max_pause),
            ("settle_time", options.settle_time),
        ):
            _check_seconds(name, seconds)
        if isinstance(records, (str, bytes, Mapping, ImportFileCreate, SourceRecord)):
            raise TypeError("records must be an iterable of records, not one record")

        self._sync_input: Iterator[Any] | None = None
        self._async_input: AsyncIterator[Any] | None = None
        if isinstance(records, AsyncIterable):
            self._async_input = aiter(records)
        elif isinstance(records, Iterable):
            self._sync_input = iter(records)
        else:
            raise TypeError(f"records must be iterable, not {type(records).__name__}")
        if total is None and isinstance(records, Sized):
            total = len(records)

        self._settler = Settler(files, self, journal=journal, options=options)
        self._max_pause = options.max_pause
        self._concurrency = concurrency
        self._stop_after = stop_after
        self._journal = journal
        self._on_outcome = on_outcome
        self._drain_timeout = drain_timeout
        self._progress = progress
        self._progress_interval = progress_interval
        self._total = total

        self._entered = False
        self._task_group: TaskGroup | None = None
        self._outbox: Outbox[Outcome] | None = None
        self._tracker: ProgressTracker | None = None
        self._started_at = 0.0
        self._ended_at: float | None = None
        self._finished = False
        self._reached_end = False

        self._running = True
        self._aborting = False
        self._stop_reason: str | None = None
        self._resume_at: datetime | None = None
        self._failures = 0
        self._hook_failed = False
        # Each worker's cancel scope, with the state the client reports into.
        self._worker_scopes: dict[anyio.CancelScope, SendState] = {}
        self._worker_states: list[SendState] = []

        self._position = 0
        self._input_lock = anyio.Lock()
        self._input_done = False
        self._input_error: BaseException | None = None
        self._read_scope: anyio.CancelScope | None = None
        # Keys for records given as models or mappings, made as a file reader makes
        # them. The database behind them opens only if such a record comes, and
        # `_finish` closes it.
        self._keys = RecordKeys() if journal is not None else None

    # --- public surface ----------------------------------------------------------

    async def __aenter__(self) -> BulkJob:
        if self._entered:
            raise ClientStateError("a bulk job runs only once; make a new one")
        self._entered = True
        self._started_at = anyio.current_time()
        self._tracker = ProgressTracker(
            self._progress,
            interval=self._progress_interval,
            total=self._total,
            clock=anyio.current_time,
        )
        # Room for one finished outcome per worker: a consumer that is briefly busy
        # does not stall the workers, one that stops reading soon does.
        self._outbox = Outbox(self._concurrency, senders=self._concurrency)
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        for _ in range(self._concurrency):
            task_group.start_soon(self._worker)

        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task_group, outbox = self._task_group, self._outbox
        if task_group is None or outbox is None:
            return
        self._task_group = None

        left_early = not self._reached_end
        if left_early:
            self._abort(_interrupted_by(exc), quiet=True)
            # Workers waiting to hand over an outcome give up at once; what they
            # settled is already accounted for.
            outbox.close()
            task_group.cancel_scope.cancel()
        try:
            # The body's exception is not passed in: it propagates from here as it
            # was, not wrapped in an exception group.
            await task_group.__aexit__(None, None, None)
        finally:
            outbox.close()
            try:
                if left_early:
                    await self._drain()
            finally:
                # Whatever the drain met, the job ends here, and its record keys
                # release their database.
                self._finish()

    def __aiter__(self) -> BulkJob:
        return self

    async def __anext__(self) -> Outcome:
        outbox = self._outbox
        if outbox is None:
            raise ClientStateError(
                "iterate a bulk job inside 'async with bulk_create(...) as job'"
            )
        # A ready outcome is taken without a trip through the event loop.
        outcome = outbox.get_nowait()
        if outcome is EMPTY:
            outcome = await outbox.get()
        if isinstance(outcome, Outcome):
            return outcome
        self._end_of_stream()

    def _end_of_stream(self) -> NoReturn:
        self._reached_end = True
        self._finish()
        error, self._input_error = self._input_error, None
        if error is not None:
            raise error
        raise StopAsyncIteration

    def cancel(self, reason: str = "the job was cancelled") -> None:
        """Stop at once: creates in flight are cancelled and end ``unknown``.

        Records not yet started end ``not_attempted`` with ``reason``, and so do
        those whose create the client still held unsent, waiting for its rate
        limiter, a token or a free connection. Keep iterating to receive their
        outcomes; the iteration then ends normally.
        """
        self._abort(reason, quiet=True)

    def stop(self, reason: str = "the job was stopped") -> None:
        """Stop sending: creates in flight finish, the rest end ``not_attempted``.

        Creates the client still holds unsent are withdrawn: they do not leave.
        """
        self._halt(reason, quiet=True)

    @property
    def running(self) -> bool:
        """Whether the job still sends creates (False once it stops or ends)."""
        return self._running and not self._finished

    @property
    def counts(self) -> Mapping[OutcomeKind, int]:
        """Records finished so far, per outcome kind (a read-only live view)."""
        if self._tracker is None:
            return MappingProxyType(dict.fromkeys(OutcomeKind, 0))
        return MappingProxyType(self._tracker.counts)

    @property
    def done(self) -> int:
        """Records finished so far."""
        return 0 if self._tracker is None else self._tracker.done

    @property
    def elapsed(self) -> float:
        """Seconds since the job started (until it ended, once it has)."""
        if not self._entered:
            return 0.0
        end = self._ended_at if self._ended_at is not None else anyio.current_time()
        return end - self._started_at

    @property
    def stop_reason(self) -> str | None:
        """Why the job stopped before its end, or None while it has not."""
        return self._stop_reason

    @property
    def resume_at(self) -> datetime | None:
        """When writes are allowed again, if the job stopped on a spent quota.

        The quota is the client's own limits, or the server's when it asked for a
        wait longer than ``max_pause``.
        """
        return self._resume_at

    def snapshot(self) -> Progress:
        """The job's progress now, as the progress callback would receive it."""
        if self._tracker is None:
            raise ClientStateError("the bulk job has not started")
        return self._tracker.snapshot(final=self._finished)

    # --- stopping ----------------------------------------------------------------

    def halt(self, reason: str, resume_at: datetime | None = None) -> None:
        """Stop sending because of a problem; creates in flight finish."""
        self._halt(reason, resume_at, quiet=False)

    def _halt(
        self, reason: str, resume_at: datetime | None = None, *, quiet: bool
    ) -> None:
        if not self._running:
            return
        self._running = False
        # Creates the client still holds for the workers (behind the rate limiter,
        # a token or a free connection) must not leave now, to meet whatever
        # stopped the job. Withdrawn, they cannot: the client checks just before
        # sending. And a worker whose create waits in the client is cancelled, so
        # as not to sit out its turn for nothing; nothing of it has left, so it
        # ends not attempted. Should the client let go of it first, the
        # withdrawal stops it, and the cancel lands on awaits that, the job
        # having stopped, lead only to records not attempted.
        for state in self._worker_states:
            state.withdrawn = True
        for scope, state in self._worker_scopes.items():
            if state.in_call and state.phase is WAITING:
                scope.cancel()
        # Those waiting out a server's pause before their next create go on at
        # once, to find the job stopped.
        self._settler.job_stopped()
        # The first reason is the one every remaining record reports.
        self._stop_reason = reason
        self._resume_at = resume_at
        if not self._finished:
            # A stop the caller asked for is no news to them.
            logger.log(
                logging.DEBUG if quiet else logging.WARNING,
                "bulk job stopping: %s",
                reason,
            )

    def _abort(self, reason: str, *, quiet: bool) -> None:
        self._halt(reason, quiet=quiet)
        if self._aborting:
            return
        self._aborting = True
        for scope in self._worker_scopes:
            scope.cancel()
        if self._read_scope is not None:
            # A read in progress may finish, but not hang the stop.
            self._read_scope.deadline = anyio.current_time() + self._drain_timeout

    # --- the workers -------------------------------------------------------------

    async def _worker(self) -> None:
        settler, outbox = self._settler, self._outbox
        assert outbox is not None
        attempt: Attempt | None = None
        # The client reports into this how far the create in hand got, so that a
        # cancelled one it never sent ends not attempted. Set in this task, it is
        # seen by everything the task awaits and by no other worker.
        sending = SendState()
        self._worker_states.append(sending)
        send_state.set(sending)
        # The job sits out a long throttle of a create for all its creates at
        # once, or stops for it; the client must hand such a throttle up rather
        # than sleep on it in its retry loop, where the job cannot see it.
        caller_throttle_patience.set(self._max_pause)
        try:
            while True:
                # One cancel scope per worker rather than per record, for speed.
                # `cancel` cancels it; every await inside that is not shielded
                # belongs to the record in hand, or comes before one is taken. The
                # loop is written out here, not in a helper coroutine, because each
                # await of a create resumes through every coroutine above it.
                scope = anyio.CancelScope()
                self._worker_scopes[scope] = sending
                try:
                    with scope:
                        while True:
                            if self._sync_input is not None:
                                item = self._next_sync()
                            else:
                                item = await self._next_async(shielded=True)
                            if item is _END:
                                return
                            attempt = prepare(item, self._next_position(), self._keys)
                            outcome = await settler.settle(attempt)
                            self._record(attempt, outcome)
                            attempt = None
                            handed = outbox.put_nowait(outcome)
                            if handed is None:
                                handed = await outbox.put(outcome)
                            if not handed:
                                # The consumer has left the job. Reading on would
                                # only mark records not attempted, and with nothing
                                # awaited in between, an endless input would hold
                                # the event loop forever; the drain marks the rest,
                                # within its deadline.
                                return
                except BaseException:
                    # Torn down from outside (the job is being left, or a sibling
                    # crashed): account for the record in hand while nothing needs
                    # to be awaited.
                    if attempt is not None:
                        self._record(attempt, settler.interrupted(attempt))
                    raise
                finally:
                    del self._worker_scopes[scope]

                # `cancel` stopped this worker: the record in hand ends interrupted,
                # and the worker carries on, now marking every record not attempted.
                if attempt is not None:
                    outcome = settler.interrupted(attempt)
                    self._record(attempt, outcome)
                    attempt = None
                    if not await outbox.put(outcome):
                        return
        finally:
            # Once every worker is done, the consumer sees the end.
            outbox.sender_done()

    # --- the input ---------------------------------------------------------------

    def _next_position(self) -> int:
        position = self._position
        self._position += 1
        return position

    def _next_sync(self) -> Any:
        """The next item of a sync input, or `_END`; an input that raises has ended."""
        if self._input_done:
            return _END
        assert self._sync_input is not None
        try:
            return next(self._sync_input)
        except StopIteration:
            self._input_done = True
        except Exception as exc:
            self._input_failed(exc)
        return _END

    async def _next_async(self, *, shielded: bool) -> Any:
        """The next item of an async input, or `_END`; one that raises has ended."""
        assert self._async_input is not None
        async with self._input_lock:
            if self._input_done:
                return _END
            # Shielded: cancelling a read would throw into the caller's iterator and
            # close it, and the records after it could never be accounted for.
            with anyio.CancelScope(shield=shielded) as scope:
                self._read_scope = scope
                try:
                    return await self._async_input.__anext__()
                except StopAsyncIteration:
                    self._input_done = True
                except Exception as exc:
                    self._input_failed(exc)
                finally:
                    self._read_scope = None
            if scope.cancelled_caught:
                self._input_done = True
                logger.warning("stopped waiting for the input: it did not answer")
            return _END

    def _input_failed(self, exc: BaseException) -> None:
        self._input_done = True
        if self._input_error is None:
            self._input_error = exc
            self.halt(f"reading the input failed: {exc}")

    async def _drain(self) -> None:
        """Mark the input not yet read as not attempted, within ``drain_timeout``."""
        if self._input_done:
            return
        with anyio.CancelScope(shield=True) as scope:
            scope.deadline = anyio.current_time() + self._drain_timeout
            count = 0
            while True:
                if self._sync_input is not None:
                    item = self._next_sync()
                else:
                    item = await self._next_async(shielded=False)
                if item is _END:
                    break
                attempt = prepare(item, self._next_position(), self._keys)
                self._record(attempt, self._settler.not_attempted(attempt))
                count += 1
                if count % DRAIN_BATCH == 0:
                    await anyio.lowlevel.checkpoint()
        if scope.cancelled_caught:
            self._input_done = True
            logger.warning(
                "gave up reading the input after %.0fs: records after the first %d"
                " have no outcome",
                self._drain_timeout,
                self._position,
            )
            await self._close_input()

    async def _close_input(self) -> None:
        if self._sync_input is not None:
            close = getattr(self._sync_input, "close", None)
            if callable(close):
                close()
            return
        aclose = getattr(self._async_input, "aclose", None)
        if callable(aclose):
            with anyio.move_on_after(1.0, shield=True):
                await aclose()

    # --- accounting --------------------------------------------------------------

    def _record(self, attempt: Attempt, outcome: Outcome) -> None:
        """Account for one settled record: journal, stop policy, progress, hook."""
        kind = outcome.kind
        # A record not attempted changed nothing on the server, so its outcome is
        # not journaled: an entry an earlier run left "sending" stays so, to be
        # reconciled next time. The mark this run wrote before a create the client
        # then held unsent (the job stopped while it waited for the rate limiter,
        # a token or a free connection) is taken back instead, so that the next
        # run sends the record at once rather than look it up once the mark is
        # `settle_time` old. Only when that create was the record's only one of
        # this run, over an entry that stored nothing: after a lost answer, or an
        # earlier run's mark, an earlier create may still land, and the mark stays.
        if (
            self._journal is not None
            and attempt.key is not None
            and not attempt.from_journal
        ):
            if kind is not OutcomeKind.NOT_ATTEMPTED:
                self._journal_done(self._journal, attempt.key, outcome)
            elif attempt.mark_unsent:
                self._journal_unsent(self._journal, attempt.key, attempt.journaled)

        if kind is OutcomeKind.FAILED or kind is OutcomeKind.UNKNOWN:
            self._failures += 1
            if self._stop_after is not None and self._failures >= self._stop_after:
                self.halt(
                    f"reached the limit of {self._failures} failed or unknown records"
                )

        assert self._tracker is not None
        self._tracker.add(kind)
        if self._on_outcome is not None:
            try:
                self._on_outcome(outcome)
            except Exception as exc:
                # The hook still sees every later outcome, and a hook that failed
                # once (a full disk) often fails on each: one traceback tells it.
                if self._hook_failed:
                    logger.debug("on_outcome hook failed again: %s", exc)
                else:
                    logger.error("on_outcome hook failed", exc_info=exc)
                self._hook_failed = True
                self.halt(f"the on_outcome hook failed: {exc}")

    def _journal_done(self, journal: Journal, key: str, outcome: Outcome) -> None:
        try:
            journal.mark_done(
                key,
                _JOURNAL_STATE[outcome.kind],
                outcome.id,
                outcome.message,
                outcome.errors,
            )
        except Exception as exc:
            logger.error("journal write failed: %s", exc)
            self.halt(f"the journal failed: {exc}")

    def _journal_unsent(
        self, journal: Journal, key: str, before: JournalEntry | None
    ) -> None:
        try:
            journal.unmark_sending(key, before)
        except Exception as exc:
            # The mark stays: the next run looks the record up before sending it.
            logger.error("journal write failed: %s", exc)
            self.halt(f"the journal failed: {exc}")

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._ended_at = anyio.current_time()
        if self._keys is not None:
            self._keys.close()
        self._settler.close()
        assert self._tracker is not None
        self._tracker.report(final=True)
        logger.debug(
            "bulk job ended after %.2fs: %s",
            self._ended_at - self._started_at,
            ", ".join(f"{n} {k.value}" for k, n in self._tracker.counts.items() if n),
        )


def _check_count(name: str, value: object, minimum: int) -> None:
    # A float would fail much later, deep in a task group, as a TypeError that
    # names nothing the caller wrote; bool is an int but never meant as one.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


def _check_seconds(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    # NaN fails every comparison, so it must be refused by name.
    if not value >= 0:
        raise ValueError(f"{name} must be a number of seconds >= 0, got {value}")


class BulkOptions(TypedDict, total=False):
    """The keyword arguments of `bulk_create`, which documents each one.

    `create_all` takes them as they are and passes them on, so the two cannot
    drift apart. A caller may also build one to share settings between jobs.
    """

    concurrency: int
    stop_after: int | None
    skip_existing: bool
    journal: Journal | None
    progress: ProgressCallback | None
    progress_interval: float
    on_outcome: Callable[[Outcome], object] | None
    total: int | None
    max_sends: int
    reconcile_delay: float
    throttle_pause: float
    max_throttles: int
    max_pause: float
    settle_time: float | None
    drain_timeout: float


def bulk_create(
    client: _ClientLike,
    records: Iterable[Any] | AsyncIterable[Any],
    *,
    concurrency: int = 8,
    stop_after: int | None = None,
    skip_existing: bool = False,
    journal: Journal | None = None,
    progress: ProgressCallback | None = None,
    progress_interval: float = 1.0,
    on_outcome: Callable[[Outcome], object] | None = None,
    total: int | None = None,
    max_sends: int = 3,
    reconcile_delay: float = 0.5,
    throttle_pause: float = 5.0,
    max_throttles: int = 10,
    max_pause: float = 900.0,
    settle_time: float | None = None,
    drain_timeout: float = 5.0,
) -> BulkJob:
    """Create import files from a stream of records, one outcome per record.

    Use the job as an async context manager and iterate it::

        async with bulk_create(client, records, concurrency=8) as job:
            async for outcome in job:
                ...

    Outcomes arrive as records finish, not in input order; each carries the
    record's ``index``, its source ``line`` and the record itself. Nothing is kept
    once handed over, so memory stays flat however long the input.

    What each record ends as:

    * ``created``: stored, with its Id. A create whose answer was lost (timeout,
      dropped connection, 5xx, a 2xx with a broken body) is looked up by
      BusinessId and exact Name before anything else: found means created, with
      ``reconciled`` set; not found means it was safely sent again (at most
      ``max_sends`` times in all). It is never sent again blindly. A match whose
      Id another input record already owns (created by this job, or by an
      earlier run per the journal) is that record's, not this one's, so
      identical rows stay distinct records; records sharing a BusinessId and
      Name are settled one at a time for that reason.
    * ``rejected``: the server refused the values (400, ``WasSuccessful`` false, a
      real 409), or local validation did; ``errors`` lists every field.
    * ``failed``: given up without storing: the connection could not be made, the
      server answered an error that is not about the values, or credentials were
      refused (which also stops the job).
    * ``unknown``: the create may have been stored and a lookup could not settle
      it (the lookup failed, or only a near-identical name was found), or the job
      was cancelled while it was in flight. A create the client still held when
      the job was cancelled (waiting for its rate limiter, a token or a free
      connection, nothing sent) ends ``not_attempted`` instead.
    * ``skipped``: not sent: the journal says an earlier run created (or rejected)
      it, or ``skip_existing`` found it on the server (under an Id no other
      input record owns). One rejected earlier carries that run's ``errors``.
    * ``not_attempted``: the job had stopped. ``message`` says why: "not sent: "
      and the stop reason for a record the job never sent, the refusal itself
      for the one whose create met a spent quota. For a spent quota,
      ``resume_at`` says when writes are allowed again.

    Stopping. Refused credentials (401, 403, a refused token) and a host name that
    does not resolve stop the job at the first occurrence: that record fails and
    the rest are ``not_attempted``, rather than each failing the same way. When
    the client's rate limiter reports the write quota spent, the job stops the
    same way with ``resume_at``. ``stop_after`` stops it after that many failed or
    unknown records. A throttle of a create that outlasts the client's own
    retries, or asks for a longer wait than the client sits out in full (its
    ``RetryPolicy.retry_after_max``), pauses every create of the job for the
    whole Retry-After, then the record is sent again; but one whose Retry-After
    is longer than ``max_pause`` stops the job as the quota does, at once.

    Known limitation: without an idempotency key, a lookup cannot tell a lost
    create from a record with the same BusinessId and Name that was already on
    the server before the job (not from its input); that record is taken as the
    lost create's result. Lookups also wait for requests that may still land
    (see ``settle_time``), but a server that stores a create later than that
    can still cause a duplicate.

    Args:
        client: An open `NexudusClient`. Its rate limiter paces every request of
            the job, lookups included.
        records: A sync or async iterable of `ImportFileCreate`, mappings keyed by
            wire names (validated locally; failures are ``rejected`` unsent), or
            `SourceRecord` from a file reader. Read lazily, one record ahead per
            worker.
        concurrency: Records in progress at once, which is also the number of
            worker tasks.
        stop_after: Stop sending after this many failed or unknown records; None
            never stops for failures. Creates in flight then still finish, so a
            job may end with more.
        skip_existing: Look each record up by BusinessId and Name first, and skip
            it when it exists. Costs one GET (more for common names) per record.
        journal: A `Journal`: records created or rejected by an earlier run are
            skipped, records it left in flight are looked up first, and every
            create is marked as sending, durably, before it goes out. A record's
            first create of the job that the client still held unsent when the
            job stopped has its mark taken back, so the next run sends it at once.
        progress: Called with a `Progress` snapshot at most every
            ``progress_interval`` seconds while records finish, and once at the
            end. It runs on the event loop and must return quickly.
        progress_interval: Seconds between progress snapshots.
        on_outcome: Called with every outcome as it is settled, including those
            settled while the job is being left early, which the iteration no
            longer sees. Runs on the event loop.
        total: Number of records, for the progress ETA; taken from ``len()`` when
            the input has one.
        max_sends: Most times one record is sent when each send is lost and each
            lookup shows it was not stored.
        reconcile_delay: Seconds to wait after a dropped connection, a 5xx or a
            broken answer before looking the record up, so that a request still
            running on the server can finish. After a timeout the wait is longer:
            see ``settle_time``.
        throttle_pause: Seconds the job pauses on a throttle that gave no
            Retry-After.
        max_throttles: Pauses one record may cause before it is failed.
        max_pause: Longest Retry-After, in seconds, the job pauses for (default 15
            minutes). A throttle asking for longer means the server's daily quota
            is probably spent, for instance by another integration using the same
            account: the job stops, that record and the rest end
            ``not_attempted``, and ``resume_at`` is now plus the Retry-After.
        settle_time: Seconds after which a create that got no answer is taken
            to have landed or never to land. A record the journal shows in flight
            (``sending`` or ``unknown``) from an earlier run is looked up only once
            that mark is this old, since the server may still be storing the
            create of a run that was killed; only such records wait. After a
            timeout in this run, the lookup likewise waits until the send is this
            old. None (default) means the client's ``timeout`` plus
            `SETTLE_MARGIN` seconds (30 + 5 when the client has no timeout).
        drain_timeout: When the job is left early: seconds allowed for reading the
            rest of the input to mark it ``not_attempted``. An endless or stalled
            input cannot be read to its end: past this, the job ends and logs how
            many records it read, and the records after those get no outcome.

    Returns:
        The job, not yet started; ``async with`` starts it.

    Raises:
        ValueError: A count below its minimum (1, or 0 for ``max_throttles``), or
            a number of seconds that is negative or NaN.
        TypeError: ``records`` is not iterable, or is a single record; a count
            that is not a whole number, or seconds that are not a number.
    """
    if settle_time is None:
        # Fakes and other client-likes may have no timeout; so may a client that
        # waits forever, and then the server's own patience is the only bound.
        timeout = getattr(client, "timeout", None)
        if not isinstance(timeout, (int, float)):
            timeout = DEFAULT_TIMEOUT
        settle_time = timeout + SETTLE_MARGIN
    options = SettleOptions(
        skip_existing=skip_existing,
        max_sends=max_sends,
        reconcile_delay=reconcile_delay,
        throttle_pause=throttle_pause,
        max_throttles=max_throttles,
        max_pause=max_pause,
        settle_time=settle_time,
    )
    return BulkJob(
        client.import_files,
        records,
        options=options,
        concurrency=concurrency,
        stop_after=stop_after,
        journal=journal,
        progress=progress,
        progress_interval=progress_interval,
        on_outcome=on_outcome,
        total=total,
        drain_timeout=drain_timeout,
    )


async def create_all(
    client: _ClientLike,
    records: Iterable[Any] | AsyncIterable[Any],
    *,
    ordered: bool = False,
    keep_created: bool = False,
    **options: Unpack[BulkOptions],
) -> BulkReport:
    """Create import files from records and return a report once all are done.

    A wrapper over `bulk_create`, which documents the outcomes and every other
    keyword argument (``concurrency``, ``journal``, ``max_pause``, ...). Only
    outcomes other than ``created`` are kept, unless asked, so memory grows with
    the problems, not with the input.

    Args:
        client: An open `NexudusClient`.
        records: As for `bulk_create`.
        ordered: Sort the kept outcomes by input index; otherwise they are in the
            order records finished.
        keep_created: Keep the ``created`` outcomes too.
        **options: Any keyword argument of `bulk_create` (see `BulkOptions`),
            with the same defaults.

    Returns:
        The counts per outcome kind and the kept outcomes.

    Raises:
        ValueError: As for `bulk_create`: an option out of its range.
        TypeError: As for `bulk_create`: ``records`` is not iterable or is a single
            record, or an option is not a number.
        Exception: Whatever reading ``records`` raised, after the records read
            before it finished.
    """
    kept: list[Outcome] = []
    job = bulk_create(client, records, **options)
    async with job:
        async for outcome in job:
            if keep_created or outcome.kind is not OutcomeKind.CREATED:
                kept.append(outcome)
    if ordered:
        kept.sort(key=lambda outcome: outcome.index)

    return BulkReport(
        counts=MappingProxyType(dict(job.counts)),
        outcomes=tuple(kept),
        elapsed=job.elapsed,
        total=job.done,
        stop_reason=job.stop_reason,
        resume_at=job.resume_at,
    )
