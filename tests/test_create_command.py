"""The create job's defaults and limits, checked in-process (the job itself runs in
tests/test_cli.py, as a real command)."""

from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path

import pytest

from nexudus_async._create_command import (
    EXIT_INCOMPLETE,
    EXIT_OK,
    CreateOptions,
    JobResult,
    default_journal,
    default_output,
    documented_limits,
    dry_run,
    summary_lines,
)
from nexudus_async._create_run import pacing_eta
from nexudus_async._demo import scaled_limits
from nexudus_async._limiter import RateLimits


class TestWhereFilesGo:
    @pytest.mark.parametrize(
        ("given", "output"),
        [
            ("leads.csv", "leads.results.jsonl"),
            ("data/2024/leads.jsonl", "data/2024/leads.results.jsonl"),
            ("-", "-"),
        ],
    )
    def test_results_go_beside_the_input(self, given: str, output: str) -> None:
        """The default results file is named after the input; stdin pairs with stdout."""
        assert default_output(given) == output

    @pytest.mark.parametrize(
        ("output", "given", "journal"),
        [
            ("leads.results.jsonl", "leads.csv", "leads.results.journal.sqlite"),
            ("out/run.csv", "leads.csv", "out/run.journal.sqlite"),
            ("-", "data/leads.csv", "data/leads.journal.sqlite"),
            ("-", "-", "nexudus-async-stdin.journal.sqlite"),
        ],
    )
    def test_the_journal_goes_beside_the_results(
        self, output: str, given: str, journal: str
    ) -> None:
        """Beside the results; beside the input when results go to stdout."""
        assert default_journal(output, given) == journal


class TestLimits:
    def test_the_daily_write_window_can_be_lowered(self) -> None:
        """Only the daily write window changes; every other window stays documented."""
        lowered = documented_limits(daily_writes=1200)
        documented = RateLimits.documented()

        changed = [
            (a, b)
            for a, b in zip(documented.windows, lowered.windows, strict=True)
            if a != b
        ]
        assert len(changed) == 1
        before, after = changed[0]
        assert (before.limit, after.limit) == (5000, 1200)
        assert after.writes_only
        assert after.seconds == 86400

    @pytest.mark.parametrize(
        ("remaining", "total", "seconds"),
        [
            (50, 50, 0.0),  # fits in one minute's window: no pacing wait
            (1000, 1000, 1000.0),  # 60 a minute
            (12_000, 12_000, 12_000 * 86400 / 5000),  # 5,000 a day sets the pace
            (0, 12_000, 0.0),
        ],
    )
    def test_the_eta_follows_the_tightest_write_window(
        self, remaining: int, total: int, seconds: float
    ) -> None:
        """The pacing ETA is what the write quota allows, not what the burst showed."""
        eta = pacing_eta(remaining, total, RateLimits.documented())

        assert eta == pytest.approx(seconds)

    def test_the_demo_clock_shrinks_every_window(self) -> None:
        """At 60 times, a minute's window lasts one second and keeps its limit."""
        fast = scaled_limits(RateLimits.documented(), 60)

        writes_per_minute = fast.windows[0]
        assert (writes_per_minute.limit, writes_per_minute.seconds) == (60, 1.0)
        assert len(fast.windows) == len(RateLimits.documented().windows)


class TestDryRun:
    def test_a_clean_file_exits_0(self, tmp_path: Path) -> None:
        """No problem, status 0, and the count of records."""
        source = tmp_path / "in.csv"
        source.write_text("BusinessId,Name\n1,A\n2,B\n", encoding="utf-8")
        out = io.StringIO()

        code = dry_run(CreateOptions(input=str(source)), out)

        assert code == EXIT_OK
        assert out.getvalue() == (
            "dry run: 2 records, 2 valid, 0 with problems (0 in all); nothing was sent\n"
        )

    def test_a_row_problem_is_named_as_such(self, tmp_path: Path) -> None:
        """A value beyond the header is reported against the row, with its line."""
        source = tmp_path / "in.csv"
        source.write_text("BusinessId,Name\n1,A,extra\n", encoding="utf-8")
        out = io.StringIO()

        code = dry_run(CreateOptions(input=str(source)), out)

        assert code == EXIT_INCOMPLETE
        assert out.getvalue().startswith("line 2: row: the row has 3 fields")


class TestSummary:
    def test_a_quota_stop_says_what_remains_and_when(self) -> None:
        """The quota line counts not-attempted records and gives a local time."""
        counts = dict.fromkeys(
            ("created", "rejected", "failed", "unknown", "skipped", "not_attempted"), 0
        )
        counts.update(created=5000, not_attempted=1234)
        result = JobResult(
            counts=counts,
            elapsed=86000.0,
            exit_code=EXIT_INCOMPLETE,
            output="out.jsonl",
            journal="out.journal.sqlite",
            stop_reason="the write quota is spent",
            resume_at=datetime(2030, 5, 6, 7, 8, tzinfo=timezone.utc),
        )

        lines = summary_lines(result)

        quota = next(line for line in lines if line.startswith("daily write quota"))
        assert quota.startswith(
            "daily write quota reached: 1234 records remain; resume after 2030-05-0"
        )
        assert "(07:08 UTC)" in quota
        assert "results: out.jsonl" in lines
        assert "journal: out.journal.sqlite" in lines
