"""The create job's defaults, limits and summary, checked in-process (the job as a
real command runs in tests/test_cli.py)."""

from __future__ import annotations

import csv
import io
import os
import socket
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import attrs
import pytest

from nexudus_async._auth import PasswordAuth
from nexudus_async._create_command import (
    EXIT_INCOMPLETE,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    CreateOptions,
    JobResult,
    default_journal,
    default_output,
    documented_limits,
    dry_run,
    run_create,
    summary_lines,
)
from nexudus_async._create_run import JobRun, pacing_eta
from nexudus_async._demo import scaled_limits
from nexudus_async._errors import ThrottledError
from nexudus_async._io import open_records, open_results
from nexudus_async._json import loads
from nexudus_async._limiter import RateLimits
from nexudus_async._models import ImportFileCreate, WriteResult
from nexudus_async._progress_display import QuietDisplay
from nexudus_async.emulator import Emulator, EmulatorConfig, Limits

EMAIL = "admin@example.com"
PASSWORD = "password"


@pytest.fixture
def local_zone() -> Iterator[Callable[[str], None]]:
    """Set the process's local time zone for one test, then restore it."""
    before = os.environ.get("TZ")

    def set_zone(name: str) -> None:
        os.environ["TZ"] = name
        time.tzset()

    yield set_zone
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


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
        ("given", "journal"),
        [
            ("leads.csv", "leads.journal.sqlite"),
            ("data/2024/leads.jsonl", "data/2024/leads.journal.sqlite"),
            ("-", "nexudus-async-stdin.journal.sqlite"),
        ],
    )
    def test_the_journal_goes_beside_the_input(self, given: str, journal: str) -> None:
        """The journal is named after the input, whatever the results file."""
        assert default_journal(given) == journal


def _options(tmp_path: Path, **changes: Any) -> CreateOptions:
    return CreateOptions(
        input=str(tmp_path / "in.csv"),
        rate_limits=None,
        progress_interval=60.0,
        **changes,
    )


def _names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


async def _create(options: CreateOptions, base_url: str = "http://127.0.0.1:9") -> Any:
    display = QuietDisplay(io.StringIO())
    options = attrs.evolve(options, base_url=base_url)

    return await run_create(options, PasswordAuth(EMAIL, PASSWORD), display)


class TestFilesThatWouldCollide:
    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"output": "in.csv"}, "the results file would be the input"),
            ({"journal": "in.csv"}, "the journal would be the input"),
            (
                {"output": "out.csv", "journal": "out.csv"},
                "the journal would be the results file",
            ),
            ({"output": "./sub/../in.csv"}, "the results file would be the input"),
        ],
        ids=["output-is-input", "journal-is-input", "journal-is-output", "by-path"],
    )
    async def test_a_collision_is_refused_before_anything_is_written(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        changes: dict[str, str],
        message: str,
    ) -> None:
        """Same file twice: exit 2, the input intact, no other file created."""
        monkeypatch.chdir(tmp_path)
        (tmp_path / "sub").mkdir()
        text = "BusinessId,Name\n1,A\n"
        (tmp_path / "in.csv").write_text(text, encoding="utf-8")

        with pytest.raises(CommandError, match=message) as raised:
            await _create(_options(tmp_path, **changes))

        assert raised.value.exit_code == EXIT_USAGE
        assert (tmp_path / "in.csv").read_text(encoding="utf-8") == text
        assert _names(tmp_path) == ["in.csv", "sub"]

    async def test_a_link_to_the_input_is_the_input(self, tmp_path: Path) -> None:
        """A results path that is a symbolic link to the input is refused too."""
        text = "BusinessId,Name\n1,A\n"
        (tmp_path / "in.csv").write_text(text, encoding="utf-8")
        (tmp_path / "link.csv").symlink_to(tmp_path / "in.csv")

        with pytest.raises(CommandError, match="would be the input"):
            await _create(_options(tmp_path, output=str(tmp_path / "link.csv")))

        assert (tmp_path / "in.csv").read_text(encoding="utf-8") == text


class TestResuming:
    async def test_a_rerun_with_another_output_skips_what_is_done(
        self, tmp_path: Path
    ) -> None:
        """The default journal follows the input, so a new -o resumes, not repeats."""
        (tmp_path / "in.csv").write_text(
            "BusinessId,Name\n1,A\n2,B\n3,C\n", encoding="utf-8"
        )
        config = EmulatorConfig(limits=Limits.off())
        async with Emulator(config) as emulator:
            first = await _create(
                _options(tmp_path, output=str(tmp_path / "first.jsonl")),
                emulator.base_url,
            )
            second = await _create(
                _options(tmp_path, output=str(tmp_path / "second.csv")),
                emulator.base_url,
            )
            stored = len(emulator.records)

        assert first.exit_code == second.exit_code == EXIT_OK
        assert first.journal == second.journal == str(tmp_path / "in.journal.sqlite")
        assert stored == 3
        assert second.counts["skipped"] == 3
        rows = _csv_rows(tmp_path / "second.csv")
        assert [row["outcome"] for row in rows] == ["skipped"] * 3
        assert [row["errors"] for row in rows] == ["[]"] * 3

    async def test_a_rerun_reports_the_refusal_with_its_errors(
        self, tmp_path: Path
    ) -> None:
        """A record refused in the first run is rejected again with the same errors."""
        (tmp_path / "in.csv").write_text(
            "BusinessId,Name\n1,A\n9,Zoë\n", encoding="utf-8"
        )
        config = EmulatorConfig(limits=Limits.off())
        async with Emulator(config) as emulator:
            first = await _create(
                _options(tmp_path, output=str(tmp_path / "first.jsonl")),
                emulator.base_url,
            )
            second = await _create(
                _options(tmp_path, output=str(tmp_path / "second.jsonl")),
                emulator.base_url,
            )

        assert first.exit_code == second.exit_code == EXIT_INCOMPLETE
        before, after = (
            {row["line"]: row for row in map(loads, path.read_text().splitlines())}
            for path in (tmp_path / "first.jsonl", tmp_path / "second.jsonl")
        )
        assert before[3]["outcome"] == after[3]["outcome"] == "rejected"
        assert "not sent again" in after[3]["message"]
        assert before[3]["errors"][0]["PropertyName"] == "BusinessId"
        assert before[3]["errors"][0]["AttemptedValue"] == 9
        assert after[3]["errors"] == before[3]["errors"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
class TestResultsCannotBeWritten:
    async def test_a_full_disk_stops_the_run_and_the_rerun_resumes(
        self, tmp_path: Path
    ) -> None:
        """Rows that cannot be written stop the job, fail the run, and lose nothing."""
        rows = "".join(f"1,Row {n}\n" for n in range(60))
        (tmp_path / "in.csv").write_text("BusinessId,Name\n" + rows, encoding="utf-8")
        (tmp_path / "full.jsonl").symlink_to("/dev/full")
        config = EmulatorConfig(limits=Limits.off())
        async with Emulator(config) as emulator:
            failed = await _create(
                _options(tmp_path, output=str(tmp_path / "full.jsonl"), concurrency=4),
                emulator.base_url,
            )
            stored_then = len(emulator.records)
            again = await _create(
                _options(tmp_path, output=str(tmp_path / "again.jsonl")),
                emulator.base_url,
            )
            stored = sorted(row["Name"] for row in emulator.records.values())

        assert failed.exit_code == EXIT_INCOMPLETE
        assert failed.results_error is not None
        assert "No space left" in failed.results_error
        assert failed.stop_reason is not None
        assert "results could not be written" in failed.stop_reason
        # Every record is counted, and sending stopped at the first failed row.
        assert sum(failed.counts.values()) == 60
        assert failed.counts["created"] == stored_then < 60
        assert failed.counts["not_attempted"] == 60 - stored_then
        summary = "\n".join(summary_lines(failed))
        assert "the results could not be written" in summary
        assert "they hold the first 0 rows only" in summary
        assert f"the {60} records that finished after those have none" in summary
        assert "the journal has every outcome" in summary
        # The journal knew what was created: nothing twice, nothing missing.
        assert again.exit_code == EXIT_OK
        assert again.counts["skipped"] == stored_then
        assert stored == sorted(f"Row {n}" for n in range(60))
        lines = (tmp_path / "again.jsonl").read_text().splitlines()
        outcomes = [loads(line)["outcome"] for line in lines]
        assert len(outcomes) == 60

    async def test_a_results_file_that_takes_no_header_is_a_setup_error(
        self, tmp_path: Path
    ) -> None:
        """A CSV results file whose header cannot be written: exit 2, one message."""
        (tmp_path / "in.csv").write_text("BusinessId,Name\n1,A\n", encoding="utf-8")
        (tmp_path / "full.csv").symlink_to("/dev/full")
        config = EmulatorConfig(limits=Limits.off())
        async with Emulator(config) as emulator:
            with pytest.raises(CommandError) as raised:
                await _create(
                    _options(tmp_path, output=str(tmp_path / "full.csv")),
                    emulator.base_url,
                )
            stored = len(emulator.records)

        assert raised.value.exit_code == EXIT_USAGE
        assert str(raised.value).startswith(
            f"cannot write the results to {tmp_path / 'full.csv'}: [Errno 28]"
        )
        assert stored == 0

    def test_the_summary_names_the_failure_without_a_journal(self) -> None:
        """Without a journal the summary still says which rows are missing."""
        result = JobResult(
            counts={
                "created": 2,
                "rejected": 0,
                "failed": 0,
                "unknown": 0,
                "skipped": 0,
                "not_attempted": 3,
            },
            elapsed=1.0,
            exit_code=EXIT_INCOMPLETE,
            output="out.jsonl",
            journal=None,
            results_error="[Errno 32] Broken pipe",
            rows_written=2,
        )
        summary = "\n".join(summary_lines(result))
        assert "the results could not be written ([Errno 32] Broken pipe)" in summary
        assert "the first 2 rows only, and the 3 records" in summary
        assert "journal" not in summary


class TestCannotStart:
    async def test_a_server_that_refuses_connections_is_a_setup_error(
        self, tmp_path: Path
    ) -> None:
        """Nothing listening: one error naming the URL, exit 2, no results, no wait."""
        (tmp_path / "in.csv").write_text("BusinessId,Name\n1,A\n", encoding="utf-8")
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
        base_url = f"http://127.0.0.1:{port}"
        started = time.monotonic()

        with pytest.raises(CommandError) as raised:
            await _create(_options(tmp_path), base_url)

        assert time.monotonic() - started < 3
        assert raised.value.exit_code == EXIT_USAGE
        assert str(raised.value) == (
            f"cannot reach the API at {base_url}: Connection refused"
        )
        assert not (tmp_path / "in.results.jsonl").exists()

    async def test_a_connection_that_takes_too_long_says_so(
        self, tmp_path: Path
    ) -> None:
        """A connection not made within the timeout: the message names the wait."""
        (tmp_path / "in.csv").write_text("BusinessId,Name\n1,A\n", encoding="utf-8")
        with socket.socket() as listening:
            listening.bind(("127.0.0.1", 0))
            listening.listen()
            base_url = f"http://127.0.0.1:{listening.getsockname()[1]}"

            with pytest.raises(CommandError) as raised:
                await _create(_options(tmp_path, timeout=1e-9), base_url)

        assert str(raised.value) == (
            f"cannot reach the API at {base_url}: no answer in 1e-09s"
        )
        assert not (tmp_path / "in.results.jsonl").exists()

    async def test_plain_http_to_a_remote_host_names_the_flag(
        self, tmp_path: Path
    ) -> None:
        """The refusal tells the user about --allow-http, and nothing is created."""
        (tmp_path / "in.csv").write_text("BusinessId,Name\n1,A\n", encoding="utf-8")

        with pytest.raises(CommandError, match="unless --allow-http is given"):
            await _create(_options(tmp_path), "http://nexudus.example.com")

        assert _names(tmp_path) == ["in.csv"]


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
    @staticmethod
    def _quota_line(not_attempted: int) -> str:
        counts = dict.fromkeys(
            ("created", "rejected", "failed", "unknown", "skipped", "not_attempted"), 0
        )
        counts.update(created=5000, not_attempted=not_attempted)
        result = JobResult(
            counts=counts,
            elapsed=86000.0,
            exit_code=EXIT_INCOMPLETE,
            output="out.jsonl",
            journal="in.journal.sqlite",
            stop_reason="the write quota is spent",
            resume_at=datetime(2030, 5, 6, 7, 8, tzinfo=timezone.utc),
        )
        lines = summary_lines(result)
        assert "results: out.jsonl" in lines
        assert "journal: in.journal.sqlite" in lines

        return next(line for line in lines if line.startswith("daily write quota"))

    def test_a_quota_stop_says_what_remains_and_when(
        self, local_zone: Callable[[str], None]
    ) -> None:
        """Away from UTC, the quota line gives the local time and the UTC one."""
        local_zone("CET-1CEST,M3.5.0,M10.5.0/3")  # a rule: no zone database needed

        quota = self._quota_line(1234)

        assert quota == (
            "daily write quota reached: 1234 records remain; resume after"
            " 2030-05-06 09:08 CEST (07:08 UTC) by running the same command again"
        )

    def test_in_utc_the_resume_time_is_given_once(
        self, local_zone: Callable[[str], None]
    ) -> None:
        """When local time is UTC the time is not repeated; one record is singular."""
        local_zone("UTC")

        quota = self._quota_line(1)

        assert quota == (
            "daily write quota reached: 1 record remains; resume after"
            " 2030-05-06 07:08 UTC by running the same command again"
        )

    def test_one_record_is_singular_in_the_dry_run(self, tmp_path: Path) -> None:
        """A file of one record is counted as "1 record"."""
        source = tmp_path / "in.csv"
        source.write_text("BusinessId,Name\n1,A\n", encoding="utf-8")
        out = io.StringIO()

        dry_run(CreateOptions(input=str(source)), out)

        assert out.getvalue().startswith("dry run: 1 record, 1 valid,")

    async def test_a_server_asking_to_wait_hours_gets_the_quota_line(
        self, tmp_path: Path
    ) -> None:
        """A 409 with a Retry-After of 2 hours ends the run with when to resume."""

        class SpentAccount:
            """Answers every create as the API does once the day's writes are spent."""

            async def create(self, record: ImportFileCreate) -> WriteResult:
                raise ThrottledError(
                    method="POST",
                    path="/api/crm/crmopportunityimportfiles",
                    status=409,
                    retry_after=7200,
                )

            async def list(self, **query: Any) -> Any:
                raise AssertionError("nothing is looked up")

        source = tmp_path / "in.csv"
        source.write_text("BusinessId,Name\n1,A\n1,B\n1,C\n", encoding="utf-8")
        output = tmp_path / "in.results.jsonl"
        client: Any = SimpleNamespace(import_files=SpentAccount())
        with open_records(source) as reader, open_results(output) as writer:
            run = JobRun(
                writer, None, QuietDisplay(io.StringIO()), limits=None, total=3
            )
            await run.run(
                client,
                reader,
                concurrency=1,
                stop_after=None,
                skip_existing=False,
                progress_interval=60.0,
            )
        assert run.job is not None
        # Built as run_create builds it from the finished job.
        result = JobResult(
            counts=dict(run.counts),
            elapsed=run.job.elapsed,
            exit_code=run.exit_code,
            output=str(output),
            journal=None,
            stop_reason=run.job.stop_reason,
            resume_at=run.job.resume_at,
        )

        lines = summary_lines(result)

        assert result.exit_code == EXIT_INCOMPLETE
        assert result.resume_at is not None
        expected = datetime.now(timezone.utc) + timedelta(hours=2)
        assert abs(result.resume_at - expected) < timedelta(seconds=5)
        quota = next(line for line in lines if line.startswith("daily write quota"))
        assert "3 records remain" in quota
        assert f"{result.resume_at:%H:%M} UTC" in quota
        rows = [loads(line) for line in output.read_text().splitlines()]
        assert [row["outcome"] for row in rows] == ["not_attempted"] * 3
        assert all("asked to wait 7200 seconds" in row["message"] for row in rows)
