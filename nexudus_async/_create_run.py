"""One run of the ``create`` job: outcomes to the results file, progress, interrupts.

Every outcome is written in the bulk creator's ``on_outcome`` hook, which sees each
record exactly once, including those settled while the job is being stopped; the
iteration only drives the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any, Final

from ._bulk import BulkJob, bulk_create
from ._client import NexudusClient
from ._errors import InputFileError
from ._io import ResultRow, ResultsWriter, SourceRecord
from ._journal import Journal
from ._limiter import RateLimits
from ._outcomes import Outcome, OutcomeKind
from ._progress_display import OUTCOME_NAMES, Display, ProgressView

#: How long an interrupted run may spend reading the rest of the input to give
#: every record its not_attempted line.
_DRAIN_SECONDS = 120.0

__all__ = ["EXIT_INCOMPLETE", "EXIT_OK", "EXIT_USAGE", "JobRun", "pacing_eta"]

EXIT_OK: Final = 0
EXIT_INCOMPLETE: Final = 1
EXIT_USAGE: Final = 2


def pacing_eta(remaining: int, total: int, limits: RateLimits) -> float:
    """Seconds the write windows alone need for ``remaining`` more records.

    A rough model: each write window that the whole job overflows caps it, in the
    long run, at ``limit / seconds`` writes a second, and the tightest one sets the
    pace. It ignores the burst a fresh window allows, so it errs on the long side,
    the side a person planning around an import wants.
    """
    rates = [
        window.limit / window.seconds
        for window in limits.windows
        if window.writes_only and total > window.limit
    ]

    return remaining / min(rates) if rates and remaining > 0 else 0.0


def _result_row(outcome: Outcome, kind: str, message: str | None) -> ResultRow:
    return ResultRow(
        line=outcome.line,
        index=outcome.index,
        outcome=kind,
        id=outcome.id,
        errors=tuple(
            {
                "PropertyName": error.property_name,
                "Message": error.message,
                "AttemptedValue": error.attempted_value,
            }
            for error in outcome.errors
        ),
        message=message,
    )


@contextlib.contextmanager
def _signals(handler: Callable[[int], None]) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    installed: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, handler, signum)
        except (NotImplementedError, RuntimeError):
            # No signal handlers on this platform's loop: Ctrl-C raises as usual.
            continue
        installed.append(signum)
    try:
        yield
    finally:
        for number in installed:
            loop.remove_signal_handler(number)


class JobRun:
    """The state of one run: counts, results, progress and the interrupt handling.

    Args:
        writer: Where each record's result goes.
        journal: The journal the job uses, if any.
        display: Where progress and messages go.
        limits: The client's pacing, for an ETA that knows the quota.
        total: Records in the input, when known.
    """

    def __init__(
        self,
        writer: ResultsWriter,
        journal: Journal | None,
        display: Display,
        *,
        limits: RateLimits | None,
        total: int | None,
    ) -> None:
        self.writer = writer
        self.journal = journal
        self.display = display
        self.limits = limits
        self.total = total
        self.counts: dict[str, int] = dict.fromkeys(OUTCOME_NAMES, 0)
        self.job: BulkJob | None = None
        self.signal: int | None = None
        self.input_error: InputFileError | None = None
        #: Why the results file stopped taking rows, if it did.
        self.write_error: OSError | None = None
        self.rows_written = 0

    @property
    def exit_code(self) -> int:
        """The status the command ends with, once the job is over."""
        if self.signal is not None:
            return 128 + self.signal
        if self.input_error is not None:
            return EXIT_USAGE
        if self.write_error is not None:
            # Every record may have been created, but not every row is written.
            return EXIT_INCOMPLETE
        done = self.counts["created"] + self.counts["skipped"]

        return EXIT_OK if done == sum(self.counts.values()) else EXIT_INCOMPLETE

    async def run(
        self,
        client: NexudusClient,
        records: Any,
        *,
        concurrency: int,
        stop_after: int | None,
        skip_existing: bool,
        progress_interval: float,
    ) -> None:
        """Run the bulk job to its end, writing every outcome as it comes."""
        self.job = job = bulk_create(
            client,
            records,
            concurrency=concurrency,
            stop_after=stop_after,
            skip_existing=skip_existing,
            journal=self.journal,
            on_outcome=self.on_outcome,
            total=self.total,
            # A file ends, and every record of it needs its line in the results,
            # so an interrupted run may take longer to mark the rest not_attempted
            # than a library caller feeding an endless stream would want to wait.
            drain_timeout=_DRAIN_SECONDS,
        )
        with _signals(self.interrupt):
            async with job:
                ticker = asyncio.create_task(self._tick(progress_interval))
                try:
                    async for _ in job:
                        pass
                except InputFileError as exc:
                    # Only standard input gets here: a file was checked whole first.
                    self.input_error = exc
                finally:
                    ticker.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await ticker
                    self.display.update(self.view())
                    self.display.close()

    def on_outcome(self, outcome: Outcome) -> None:
        """Write the outcome's row at once and count it."""
        kind, message = outcome.kind.value, outcome.message
        if outcome.kind is OutcomeKind.SKIPPED and self._rejected_before(outcome):
            # Not sent again (it would be refused again), but not created either:
            # the run must not end as if it had been.
            kind = OutcomeKind.REJECTED.value
            message = (
                f"{message}; not sent again: change the record, or delete the"
                " journal, to send it"
            )
        self.counts[kind] += 1
        if self.write_error is not None:
            return
        try:
            self.writer.write(_result_row(outcome, kind, message))
        except OSError as exc:
            self._results_failed(exc)
        else:
            self.rows_written += 1

    def _results_failed(self, exc: OSError) -> None:
        # A full disk or a closed pipe: the rows from here on would be lost, so no
        # more creates go out. Those in flight finish, and reach the journal.
        self.write_error = exc
        reason = f"the results could not be written: {exc}"
        self.display.message(f"{reason}; stopping")
        if self.job is not None:
            self.job.stop(reason)

    def _rejected_before(self, outcome: Outcome) -> bool:
        record = outcome.record
        if self.journal is None or not isinstance(record, SourceRecord):
            return False
        entry = self.journal.state(record.key)

        return entry is not None and entry.state == "rejected"

    def view(self) -> ProgressView:
        """The display's view of the job now."""
        assert self.job is not None
        snapshot = self.job.snapshot()
        done = sum(self.counts.values())
        eta = snapshot.eta
        if self.total is not None and self.limits is not None:
            paced = pacing_eta(self.total - done, self.total, self.limits)
            eta = paced if eta is None else max(eta, paced)

        return ProgressView(
            done=done,
            total=self.total,
            counts=dict(self.counts),
            elapsed=snapshot.elapsed,
            rate=snapshot.rate,
            eta=eta,
        )

    async def _tick(self, interval: float) -> None:
        # On a timer rather than per outcome: a job held back by the quota still
        # shows it is alive, and a fast one does not redraw a thousand times a second.
        while True:
            await asyncio.sleep(interval)
            self.display.update(self.view())

    def interrupt(self, signum: int) -> None:
        """First signal: cancel the job, keeping every outcome. Second: leave now."""
        if self.signal is not None:
            self.display.message("interrupted again: exiting without waiting")
            with contextlib.suppress(Exception):
                self.writer.flush()
                if self.journal is not None:
                    self.journal.commit()
            os._exit(128 + signum)

        self.signal = signum
        name = signal.Signals(signum).name
        self.display.message(
            f"{name}: stopping; records in flight end 'unknown' and are looked up"
            " by the next run. Interrupt again to exit at once."
        )
        if self.job is not None:
            self.job.cancel(f"interrupted by {name}")
