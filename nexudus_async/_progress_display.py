"""What the command line shows while a job runs, and the summary it ends with.

On a terminal the progress is a tqdm bar that redraws itself in place. Anywhere else
(a log file, a CI console, a pipe) it is a plain line every few seconds, with no
carriage return and no escape code, so the log reads the same in any viewer. Both go
to the stream they are given, which is standard error: standard output may be
carrying the results.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, TextIO

import attrs
from tqdm import tqdm

__all__ = [
    "OUTCOME_NAMES",
    "BarDisplay",
    "Display",
    "DisplayLogHandler",
    "LineDisplay",
    "ProgressView",
    "QuietDisplay",
    "format_counts",
    "format_duration",
    "format_rate",
    "format_summary",
    "make_display",
    "plural",
]

#: The outcome names, in the order every display and summary lists them.
OUTCOME_NAMES: Final = (
    "created",
    "rejected",
    "failed",
    "unknown",
    "skipped",
    "not_attempted",
)


@attrs.frozen
class ProgressView:
    """One moment of a running job, as a display shows it.

    Attributes:
        done: Records that have an outcome.
        total: Records in the input, when known before the end.
        counts: Records per outcome name.
        elapsed: Seconds since the job started.
        rate: Records per second, when there is enough to measure.
        eta: Seconds until the last record is expected to finish, when known.
    """

    done: int
    total: int | None
    counts: Mapping[str, int]
    elapsed: float
    rate: float | None = None
    eta: float | None = None


def plural(count: int, noun: str) -> str:
    """The count with its noun, singular for one: ``1 record``, ``2 records``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def format_duration(seconds: float) -> str:
    """Write a duration the way people read it: ``0.4s``, ``12s``, ``4m05s``, ``2h10m``."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)

    return f"{days}d{hours:02d}h"


def format_rate(per_second: float | None) -> str:
    """Write a rate per second, switching to per minute below one a second."""
    if per_second is None:
        return "-"
    if per_second >= 1:
        return f"{per_second:.1f}/s"

    return f"{per_second * 60:.1f}/min"


def format_counts(counts: Mapping[str, int], *, keep_zero: bool = False) -> str:
    """List outcome counts in the usual order, e.g. ``created 12, rejected 1``."""
    parts = [
        f"{name} {counts.get(name, 0)}"
        for name in OUTCOME_NAMES
        if keep_zero or counts.get(name, 0)
    ]

    return ", ".join(parts) if parts else "nothing yet"


def _eta_text(view: ProgressView) -> str:
    return "-" if view.eta is None else format_duration(view.eta)


class Display(abc.ABC):
    """Where a running job reports its progress and its messages."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    @abc.abstractmethod
    def update(self, view: ProgressView) -> None:
        """Show the job's state now (a display may skip updates that come too fast)."""

    def message(self, text: str, file: TextIO | None = None) -> None:
        """Print a line of text without breaking the progress display.

        Args:
            text: The line, without its line end.
            file: Where to print it; the display's own stream by default.
        """
        print(text, file=self.stream if file is None else file, flush=True)

    def close(self) -> None:
        """Leave the display in a clean state; later text starts on a fresh line."""
        self.stream.flush()


class QuietDisplay(Display):
    """Shows no progress; messages (warnings, errors) still get through."""

    def update(self, view: ProgressView) -> None:
        """Ignore the update."""


class LineDisplay(Display):
    """A plain line at most every ``interval`` seconds: for logs, pipes and CI.

    Args:
        stream: Where the lines go.
        interval: Least number of seconds between two lines.
        clock: Monotonic clock, replaceable in tests.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(stream)
        self.interval = interval
        self._clock = clock
        self._last: float | None = None

    def update(self, view: ProgressView) -> None:
        """Print the state when the interval has passed since the last line."""
        now = self._clock()
        if self._last is not None and now - self._last < self.interval:
            return
        self._last = now

        if view.total:
            where = f"{view.done}/{view.total} ({100 * view.done // view.total}%)"
        else:
            where = f"{view.done} done"
        print(
            f"progress: {where}; {format_counts(view.counts)}; "
            f"rate {format_rate(view.rate)}; eta {_eta_text(view)}; "
            f"elapsed {format_duration(view.elapsed)}",
            file=self.stream,
            flush=True,
        )


class BarDisplay(Display):
    """A tqdm bar on a terminal, with the outcome counts, the rate and the ETA.

    The bar is drawn from the first update on, so that messages printed before the
    job starts (or an error that keeps it from starting) come without an empty bar.
    """

    # The job's figures travel in the description: tqdm would put a comma before a
    # postfix, and its own rate and ETA would ignore the job's pacing.
    _FORMAT: Final = "{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{desc}]"
    _FORMAT_NO_TOTAL: Final = "{n_fmt} records [{desc}]"

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._bar: tqdm[Any] | None = None

    def _start(self, total: int | None) -> tqdm[Any]:
        return tqdm(
            total=total,
            file=self.stream,
            unit="rec",
            dynamic_ncols=True,
            bar_format=self._FORMAT if total else self._FORMAT_NO_TOTAL,
            mininterval=0.1,
        )

    def update(self, view: ProgressView) -> None:
        """Move the bar and refresh the counts beside it."""
        bar = self._bar
        if bar is None:
            bar = self._bar = self._start(view.total)
        bar.set_description_str(
            f"{format_counts(view.counts)} | {format_rate(view.rate)} | "
            f"eta {_eta_text(view)}",
            refresh=False,
        )
        bar.update(view.done - bar.n)

    def message(self, text: str, file: TextIO | None = None) -> None:
        """Print the line above the bar, which then redraws below it."""
        if self._bar is None:
            super().message(text, file)
        else:
            self._bar.write(text, file=self.stream if file is None else file)

    def close(self) -> None:
        """Draw the bar a last time and leave it on screen."""
        bar, self._bar = self._bar, None
        if bar is not None:
            bar.refresh()
            bar.close()
        super().close()


def make_display(stream: TextIO, *, quiet: bool, interval: float) -> Display:
    """Choose the display for a stream: nothing, a bar on a terminal, else lines.

    Args:
        stream: Where progress goes (standard error).
        quiet: Show no progress at all.
        interval: Seconds between plain lines when the stream is not a terminal.

    Returns:
        The display; close it when the job ends.
    """
    if quiet:
        return QuietDisplay(stream)
    if stream.isatty():
        return BarDisplay(stream)

    return LineDisplay(stream, interval=interval)


class DisplayLogHandler(logging.Handler):
    """Sends log records through a display, so they never tear the progress bar."""

    def __init__(self, display: Display, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.display = display

    def emit(self, record: logging.LogRecord) -> None:
        """Print the formatted record as a message of the display."""
        try:
            self.display.message(self.format(record))
        except Exception:  # a log line must never break the job it describes
            self.handleError(record)


def format_summary(
    counts: Mapping[str, int], *, elapsed: float, title: str = "summary"
) -> list[str]:
    """The end-of-job lines: records per outcome, the elapsed time and the rate.

    The rate counts the records the job worked on (created, rejected, failed and
    unknown); skipped and not attempted records cost no time.

    Args:
        counts: Records per outcome name.
        elapsed: Seconds the job ran.
        title: The first word of the first line.

    Returns:
        The lines, without line ends.
    """
    total = sum(counts.values())
    worked = sum(counts.get(name, 0) for name in OUTCOME_NAMES[:4])
    rate = worked / elapsed if elapsed > 0 else None
    head = f"{title}: {plural(total, 'record')} in {format_duration(elapsed)}"
    if worked != total:
        head += f"; {worked} processed"
    lines = [f"{head}, {format_rate(rate)}"]
    width = max(len(name) for name in OUTCOME_NAMES)
    lines.extend(
        f"  {name:<{width}}  {counts.get(name, 0):>7}" for name in OUTCOME_NAMES
    )

    return lines
