"""What the command line shows: durations, rates, plain progress lines, the summary."""

from __future__ import annotations

import io
import logging

import pytest

from nexudus_async._progress_display import (
    BarDisplay,
    DisplayLogHandler,
    LineDisplay,
    ProgressView,
    QuietDisplay,
    format_counts,
    format_duration,
    format_rate,
    format_summary,
    make_display,
    plural,
)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _view(done: int, total: int | None = 10, **counts: int) -> ProgressView:
    return ProgressView(
        done=done,
        total=total,
        counts=counts or {"created": done},
        elapsed=3.0,
        rate=2.5,
        eta=4.0,
    )


class TestFormats:
    @pytest.mark.parametrize(
        ("seconds", "text"),
        [
            (0.42, "0.4s"),
            (12.4, "12s"),
            (245, "4m05s"),
            (2 * 3600 + 600, "2h10m"),
            (83 * 3600, "3d11h"),
        ],
    )
    def test_durations_read_as_people_say_them(self, seconds: float, text: str) -> None:
        """Seconds, minutes, hours and days, each at a useful precision."""
        assert format_duration(seconds) == text

    def test_slow_rates_are_per_minute(self) -> None:
        """Below one a second the rate is given per minute, as the quota is."""
        assert format_rate(12.34) == "12.3/s"
        assert format_rate(0.5) == "30.0/min"
        assert format_rate(None) == "-"

    def test_counts_follow_the_outcome_order_and_skip_zeros(self) -> None:
        """Zero counts are left out unless asked for."""
        counts = {"skipped": 2, "created": 5, "failed": 0}

        assert format_counts(counts) == "created 5, skipped 2"
        assert format_counts({}) == "nothing yet"
        assert format_counts(counts, keep_zero=True).startswith("created 5, rejected 0")

    def test_the_summary_lists_every_outcome_with_time_and_rate(self) -> None:
        """All six outcomes appear; the rate ignores records that cost nothing."""
        lines = format_summary(
            {"created": 8, "skipped": 90, "rejected": 2}, elapsed=4.0
        )

        assert lines[0] == "summary: 100 records in 4.0s; 10 processed, 2.5/s"
        assert [line.split()[0] for line in lines[1:]] == [
            "created",
            "rejected",
            "failed",
            "unknown",
            "skipped",
            "not_attempted",
        ]
        assert lines[1].split() == ["created", "8"]

    def test_one_record_is_singular(self) -> None:
        """A job of one record says "1 record", never "1 records"."""
        lines = format_summary({"created": 1}, elapsed=0.5)

        assert lines[0].startswith("summary: 1 record in 0.5s")
        assert (plural(0, "record"), plural(2, "file")) == ("0 records", "2 files")


class TestLineDisplay:
    def test_prints_at_most_one_line_per_interval(self) -> None:
        """Updates that come too soon are dropped; the next one after it prints."""
        stream, clock = io.StringIO(), _Clock()
        display = LineDisplay(stream, interval=5.0, clock=clock)

        display.update(_view(1))
        clock.now = 4.9
        display.update(_view(2))
        clock.now = 5.0
        display.update(_view(3))

        lines = stream.getvalue().splitlines()
        assert len(lines) == 2
        assert lines[1] == (
            "progress: 3/10 (30%); created 3; rate 2.5/s; eta 4.0s; elapsed 3.0s"
        )

    def test_lines_are_plain_text(self) -> None:
        """No carriage return or escape code, even without a known total."""
        stream = io.StringIO()
        display = LineDisplay(stream, interval=0.0)

        display.update(_view(4, total=None))
        display.message("a warning")
        display.close()

        text = stream.getvalue()
        assert "progress: 4 done;" in text
        assert "a warning\n" in text
        assert "\r" not in text
        assert "\x1b" not in text


class TestChoice:
    def test_a_terminal_gets_a_bar_anything_else_lines(self) -> None:
        """The display follows the stream, and quiet wins over both."""
        assert isinstance(
            make_display(_Terminal(), quiet=False, interval=1), BarDisplay
        )
        assert isinstance(
            make_display(io.StringIO(), quiet=False, interval=1), LineDisplay
        )
        assert isinstance(
            make_display(_Terminal(), quiet=True, interval=1), QuietDisplay
        )

    def test_quiet_shows_messages_but_no_progress(self) -> None:
        """Warnings still reach the user when progress is off."""
        stream = io.StringIO()
        display = QuietDisplay(stream)

        display.update(_view(5))
        display.message("warning: something")

        assert stream.getvalue() == "warning: something\n"

    def test_the_bar_is_drawn_from_the_first_update_and_left_on_screen(self) -> None:
        """Before the job starts, messages come without an empty bar."""
        stream = _Terminal()
        display = BarDisplay(stream)

        display.message("before")
        assert stream.getvalue() == "before\n"
        display.update(_view(10, created=9, rejected=1))
        display.close()

        text = stream.getvalue()
        assert "10/10" in text
        assert "created 9, rejected 1 | 2.5/s | eta 4.0s" in text


class TestLogHandler:
    def test_log_records_go_through_the_display(self) -> None:
        """Library log lines are printed as display messages, formatted."""
        stream = io.StringIO()
        handler = DisplayLogHandler(QuietDisplay(stream))
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        logger = logging.getLogger("nexudus_async.test_progress_display")
        logger.addHandler(handler)
        try:
            logger.warning("paused for %ss", 5)
        finally:
            logger.removeHandler(handler)

        assert stream.getvalue() == "WARNING: paused for 5s\n"
