"""The ``nexudus-async`` command, run for real in a subprocess against the emulator.

The emulator serves from a background thread of the test process; the command is
``python -m nexudus_async`` in a child process, so exit codes, signals, standard
streams and files are exactly what a user gets.
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
import pty
import random
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from nexudus_async import _json
from nexudus_async._io import open_records
from nexudus_async.emulator import Emulator, EmulatorConfig, Faults, Limits, User

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "import-files.csv"
HEADER = ("BusinessId", "Name", "NewFileDataUrl", "Imported", "ClearFileDataFile")
#: Secrets planted in the environment; none may ever show up in any output.
PLANTED_PASSWORD = "pl4nted-Pa55word-0f-the-CLI-test"
PLANTED_TOTP = "737373"


# --- helpers -----------------------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUDUS_")}
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra)
    return env


def _login(password: str = "password") -> dict[str, str]:
    return _env(NEXUDUS_EMAIL="admin@example.com", NEXUDUS_PASSWORD=password)


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "nexudus_async", *args]


def run_cli(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 45,
) -> subprocess.CompletedProcess[str]:
    """Run the command to its end and capture everything it wrote."""
    return subprocess.run(
        _command(*args),
        cwd=cwd,
        env=dict(env) if env is not None else _login(),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )


def create(
    emulator: Emulator, input_path: str, *args: str, cwd: Path, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """``create`` against the emulator, without client-side pacing."""
    return run_cli(
        "create",
        input_path,
        "--base-url",
        emulator.base_url,
        "--limits",
        "off",
        *args,
        cwd=cwd,
        **kwargs,
    )


@contextmanager
def running(**settings: Any) -> Iterator[Emulator]:
    """An emulator without throttling unless told otherwise."""
    settings.setdefault("limits", Limits.off())
    with Emulator(EmulatorConfig(**settings)) as emulator:
        yield emulator


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh emulator without throttling."""
    with running() as emulator:
        yield emulator


def rows_named(count: int, prefix: str = "Import") -> list[dict[str, str]]:
    """Valid records with distinct names, spread over the three locations."""
    return [
        {"BusinessId": str(1 + i % 3), "Name": f"{prefix} {i:04d}"}
        for i in range(count)
    ]


def write_csv(
    path: Path,
    rows: Sequence[Mapping[str, str]],
    *,
    header: Sequence[str] = ("BusinessId", "Name"),
    delimiter: str = ",",
    bom: bool = False,
    line_end: str = "\r\n",
) -> Path:
    """Write rows as a spreadsheet program would, keyed by the header's wire names."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=line_end)
    writer.writerow(header)
    wire = [name.replace("_", "").casefold() for name in header]
    for row in rows:
        folded = {key.casefold(): value for key, value in row.items()}
        writer.writerow([folded.get(name, "") for name in wire])
    path.write_bytes(("\ufeff" if bom else "").encode() + buffer.getvalue().encode())
    return path


def write_jsonl(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """One JSON object per line."""
    path.write_bytes(b"".join(_json.dumps(dict(row)) + b"\n" for row in rows))
    return path


def results(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL results file."""
    return [_json.loads(line) for line in path.read_bytes().splitlines() if line]


def stored_names(emulator: Emulator) -> Counter[str]:
    """How many times each Name is stored."""
    return Counter(str(record["Name"]) for record in emulator.records.values())


def ids_by_name(emulator: Emulator) -> dict[str, int]:
    """The Id of each stored Name."""
    return {str(r["Name"]): int(r["Id"]) for r in emulator.records.values()}


def token_for(emulator: Emulator, password: str, totp: str | None = None) -> str:
    """An access token straight from the emulator's token endpoint."""
    fields = {"grant_type": "password", "username": "admin@example.com"}
    fields["password"] = password
    if totp is not None:
        fields["totp"] = totp
    form = urllib.parse.urlencode(fields).encode()
    with urllib.request.urlopen(f"{emulator.base_url}/api/token", form) as answer:
        return str(_json.loads(answer.read())["access_token"])


def assert_plain(text: str) -> None:
    """No carriage return and no escape code: readable in any log viewer."""
    assert "\r" not in text
    assert "\x1b" not in text


# --- the main job ------------------------------------------------------------------


class TestEndToEnd:
    def test_csv_end_to_end_writes_one_exact_result_per_record(
        self, tmp_path: Path
    ) -> None:
        """Every record gets one result line; ids are exact, errors keep their fields."""
        rows = rows_named(40)
        rows[5] = {"BusinessId": "abc", "Name": "Bad id"}
        rows[9] = {"BusinessId": "2", "Name": ""}
        rows[13] = {"BusinessId": "9", "Name": "No such location"}
        source = write_csv(tmp_path / "leads.csv", rows)
        big = 2**53 + 1  # not exact as a float: a float anywhere would show

        with running(first_id=big) as emulator:
            done = create(emulator, str(source), cwd=tmp_path)
            stored = ids_by_name(emulator)

        assert done.returncode == 1, done.stderr
        rows_out = results(tmp_path / "leads.results.jsonl")
        assert sorted(r["line"] for r in rows_out) == list(range(2, 42))
        by_line = {r["line"]: r for r in rows_out}
        for number, row in enumerate(rows):
            result = by_line[number + 2]
            if number in (5, 9, 13):
                assert result["outcome"] == "rejected"
                assert result["id"] is None
                continue
            assert result["outcome"] == "created"
            assert result["id"] == stored[row["Name"]]
        assert min(stored.values()) == big
        assert by_line[7]["errors"] == [
            {
                "PropertyName": "BusinessId",
                "Message": "must be a positive integer written as plain digits",
                "AttemptedValue": "abc",
            }
        ]
        assert by_line[15]["errors"][0]["PropertyName"] == "BusinessId"
        assert by_line[15]["errors"][0]["AttemptedValue"] == 9
        assert "summary: 40 records" in done.stderr
        assert "created             37" in done.stderr
        assert "rejected             3" in done.stderr
        assert done.stdout == ""

    def test_a_clean_run_exits_0_and_a_rerun_skips_everything(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """A re-run of a finished job sends nothing and reports the same ids."""
        source = write_csv(tmp_path / "in.csv", rows_named(25))
        first = create(emulator, str(source), cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        ids = {r["line"]: r["id"] for r in results(tmp_path / "in.results.jsonl")}
        writes = emulator.stats.writes

        second = create(emulator, str(source), cwd=tmp_path)

        assert second.returncode == 0, second.stderr
        again = results(tmp_path / "in.results.jsonl")
        assert {r["outcome"] for r in again} == {"skipped"}
        assert {r["line"]: r["id"] for r in again} == ids
        assert emulator.stats.writes == writes
        assert (tmp_path / "in.journal.sqlite").exists()

    def test_a_record_the_server_refused_stays_refused_on_a_rerun(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """A refused record is not sent again, and the re-run still exits 1."""
        rows = [*rows_named(3), {"BusinessId": "7", "Name": "Closed location"}]
        source = write_csv(tmp_path / "in.csv", rows)
        assert create(emulator, str(source), cwd=tmp_path).returncode == 1
        writes = emulator.stats.writes

        again = create(emulator, str(source), cwd=tmp_path)

        assert again.returncode == 1
        assert emulator.stats.writes == writes
        outcomes = Counter(r["outcome"] for r in results(tmp_path / "in.results.jsonl"))
        assert outcomes == {"skipped": 3, "rejected": 1}

    @pytest.mark.parametrize(
        ("header", "options", "delimiter", "bom", "line_end"),
        [
            (("BusinessId", "Name", "Imported"), (), ";", True, "\r\n"),
            (("business_id", "NAME", "imported"), (), "\t", False, "\n"),
            (
                ("businessid", "name", "Imported"),
                ("--delimiter", "semicolon"),
                ";",
                True,
                "\r\n",
            ),
        ],
        ids=["bom-semicolon-crlf", "tab-snake-case", "forced-delimiter"],
    )
    def test_csv_as_spreadsheets_export_it(
        self,
        emulator: Emulator,
        tmp_path: Path,
        header: tuple[str, ...],
        options: tuple[str, ...],
        delimiter: str,
        bom: bool,
        line_end: str,
    ) -> None:
        """BOM, delimiters, header spellings and quoted delimiters and line breaks."""
        rows = [
            {"BusinessId": "1", "Name": "Plain", "Imported": "yes"},
            {"BusinessId": "2", "Name": "Semi; colon, comma\tand tab", "Imported": ""},
            {
                "BusinessId": "3",
                "Name": 'Two\r\nlines and "quotes"',
                "Imported": "FALSE",
            },
        ]
        source = write_csv(
            tmp_path / "sheet.csv",
            rows,
            header=header,
            delimiter=delimiter,
            bom=bom,
            line_end=line_end,
        )

        done = create(emulator, str(source), *options, cwd=tmp_path)

        assert done.returncode == 0, done.stderr
        stored = {r["Name"]: r for r in emulator.records.values()}
        assert set(stored) == {row["Name"] for row in rows}
        assert stored["Plain"]["Imported"] is True
        assert stored['Two\r\nlines and "quotes"']["Imported"] is False

    def test_jsonl_from_stdin_gives_results_on_stdout_only(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """With stdin in, results go to stdout as pure JSONL; the rest to stderr."""
        rows: list[dict[str, Any]] = [
            {"BusinessId": 1 + i % 3, "name": f"Piped {i}"} for i in range(12)
        ]
        rows.append({"BusinessId": True, "Name": "Boolean id"})
        text = b"".join(_json.dumps(row) + b"\n" for row in rows).decode()

        done = create(
            emulator, "-", "--progress-interval", "0.05", cwd=tmp_path, stdin=text
        )

        assert done.returncode == 1, done.stderr
        lines = [_json.loads(line) for line in done.stdout.splitlines()]
        assert len(lines) == 13
        assert Counter(r["outcome"] for r in lines) == {"created": 12, "rejected": 1}
        assert "summary: 13 records" in done.stderr
        assert (tmp_path / "nexudus-async-stdin.journal.sqlite").exists()

    def test_results_as_csv_by_extension(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """A .csv output gets a header and the errors as JSON in one cell."""
        rows = [*rows_named(3), {"BusinessId": "x", "Name": "Broken"}]
        source = write_csv(tmp_path / "in.csv", rows)

        done = create(emulator, str(source), "--output", "out.csv", cwd=tmp_path)

        assert done.returncode == 1
        with open(tmp_path / "out.csv", newline="", encoding="utf-8") as handle:
            table = list(csv.DictReader(handle))
        assert list(table[0]) == ["line", "outcome", "id", "errors", "message"]
        assert len(table) == 4
        broken = next(row for row in table if row["outcome"] == "rejected")
        assert broken["line"] == "5"
        assert _json.loads(broken["errors"])[0]["AttemptedValue"] == "x"
        assert (tmp_path / "in.journal.sqlite").exists()

    def test_stop_after_failures_leaves_the_rest_not_attempted(
        self, tmp_path: Path
    ) -> None:
        """The stop policy stops the job; every record still gets a result."""
        source = write_csv(tmp_path / "in.csv", rows_named(30))
        faults = Faults(rate=1.0, kinds=("status:404",), scope="creates")
        with running(faults=faults) as emulator:
            done = create(
                emulator,
                str(source),
                "--stop-after-failures",
                "2",
                "--concurrency",
                "1",
                cwd=tmp_path,
            )

        assert done.returncode == 1
        outcomes = Counter(r["outcome"] for r in results(tmp_path / "in.results.jsonl"))
        assert outcomes == {"failed": 2, "not_attempted": 28}
        assert (
            "stopped early: reached the limit of 2 failed or unknown records"
            in done.stderr
        )


# --- bad input files ---------------------------------------------------------------

BAD_FILES: dict[str, tuple[str, bytes, Sequence[str]]] = {
    "unknown header": (
        "in.csv",
        b"BusinessId,Name,Colour\r\n1,A,red\r\n",
        ("unknown column 'Colour'", "'BusinessId', 'Name', 'Colour'"),
    ),
    "repeated header": (
        "in.csv",
        b"BusinessId;Name;name\n1;A;B\n",
        ("repeated column 'Name' and 'name'", "'BusinessId', 'Name', 'name'"),
    ),
    "missing required header": (
        "in.csv",
        b"Name,Imported\nA,yes\n",
        ("missing required column BusinessId", "'Name', 'Imported'"),
    ),
    "empty file": ("in.csv", b"", ("empty",)),
    "bytes that are not UTF-8": (
        "in.csv",
        b"BusinessId,Name\n1,Fine\n2,Caf\xe9\n",
        ("line 3", "not valid utf-8"),
    ),
    "a JSONL line that is not an object": (
        "in.jsonl",
        b'{"BusinessId": 1, "Name": "A"}\n{"BusinessId": 2, "Name": "B"}\n[3, "C"]\n',
        ("line 3", "expected a JSON object"),
    ),
    "broken JSON on the last line": (
        "in.jsonl",
        b'{"BusinessId": 1, "Name": "A"}\n' * 20 + b'{"BusinessId": 2, "Name": \n',
        ("line 21", "not valid JSON"),
    ),
    "an extension that says nothing": ("in.xlsx", b"PK\x03\x04", ("extension",)),
}


class TestBadInput:
    @pytest.mark.parametrize("case", list(BAD_FILES), ids=list(BAD_FILES))
    def test_a_bad_file_exits_2_before_anything_is_sent(
        self, emulator: Emulator, tmp_path: Path, case: str
    ) -> None:
        """File-level problems are reported with what was seen, and nothing is sent."""
        name, data, expected = BAD_FILES[case]
        (tmp_path / name).write_bytes(data)

        done = create(emulator, name, cwd=tmp_path)

        assert done.returncode == 2, done.stderr
        for text in expected:
            assert text.lower() in done.stderr.lower()
        assert "Traceback" not in done.stderr
        assert emulator.stats.requests == 0
        assert not (tmp_path / "in.results.jsonl").exists()

    def test_stdin_broken_midway_keeps_what_came_before_and_exits_2(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """Standard input cannot be checked ahead: records before the break finish."""
        text = (
            '{"BusinessId": 1, "Name": "Before 1"}\n'
            '{"BusinessId": 2, "Name": "Before 2"}\n'
            '{"BusinessId": 3, "Name": \n'
        )

        done = create(emulator, "-", "--concurrency", "1", cwd=tmp_path, stdin=text)

        assert done.returncode == 2
        assert "<stdin>, line 3: not valid JSON" in done.stderr
        lines = [_json.loads(line) for line in done.stdout.splitlines()]
        assert [r["outcome"] for r in lines] == ["created", "created"]
        assert set(stored_names(emulator)) == {"Before 1", "Before 2"}

    def test_a_missing_file_exits_2(self, tmp_path: Path) -> None:
        """An input that does not exist is a usage error, named in the message."""
        done = run_cli("create", "nowhere.csv", cwd=tmp_path)

        assert done.returncode == 2
        assert "nowhere.csv" in done.stderr

    def test_a_results_file_of_unknown_kind_exits_2(self, tmp_path: Path) -> None:
        """The results format must follow from the extension."""
        source = write_csv(tmp_path / "in.csv", rows_named(1))

        done = run_cli("create", str(source), "--output", "out.txt", cwd=tmp_path)

        assert done.returncode == 2
        assert ".jsonl or .csv" in done.stderr


# --- dry run -----------------------------------------------------------------------


class TestDryRun:
    def test_every_problem_is_listed_with_its_line_and_nothing_is_sent(
        self, tmp_path: Path
    ) -> None:
        """No credentials and no server needed: the check is local."""
        rows = rows_named(6)
        rows[1] = {"BusinessId": "", "Name": "No location", "Imported": "1"}
        rows[4] = {"BusinessId": "1.5", "Name": "Decimal id", "Imported": "maybe"}
        source = write_csv(
            tmp_path / "in.csv", rows, header=("BusinessId", "Name", "Imported")
        )

        done = run_cli("create", str(source), "--dry-run", cwd=tmp_path, env=_env())

        assert done.returncode == 1
        lines = done.stdout.splitlines()
        assert lines[:3] == [
            "line 3: BusinessId: is required and may not be blank",
            "line 6: BusinessId: must be a positive integer written as plain digits"
            " (got '1.5')",
            "line 6: Imported: must be true or false (also yes/no, y/n, 1/0)"
            " (got 'maybe')",
        ]
        assert lines[3] == (
            "dry run: 6 records, 4 valid, 2 with problems (3 in all); nothing was sent"
        )
        assert not list(tmp_path.glob("*.results.*"))

    def test_the_example_file_checks_as_expected(self, tmp_path: Path) -> None:
        """The shipped example has the planned mistakes, each listed once."""
        with open_records(EXAMPLE) as reader:
            expected = sum(len(record.problems) for record in reader)

        done = run_cli("create", str(EXAMPLE), "--dry-run", cwd=tmp_path, env=_env())

        assert done.returncode == 1
        listed = [line for line in done.stdout.splitlines() if line.startswith("line ")]
        assert len(listed) == expected > 10
        assert "dry run: 300 records" in done.stdout


# --- credentials -------------------------------------------------------------------


def _assert_no_secret(secrets: Sequence[str], *texts: str | bytes) -> None:
    for text in texts:
        data = text.encode() if isinstance(text, str) else text
        for secret in secrets:
            assert secret.encode() not in data


class TestCredentials:
    def test_no_credentials_and_no_terminal_exits_2_naming_the_variables(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """Without a terminal to ask on, the message says what to set."""
        source = write_csv(tmp_path / "in.csv", rows_named(1))

        done = create(emulator, str(source), cwd=tmp_path, env=_env())

        assert done.returncode == 2
        for name in ("NEXUDUS_EMAIL", "NEXUDUS_PASSWORD", "NEXUDUS_TOKEN"):
            assert name in done.stderr
        assert emulator.stats.requests == 0

    def test_a_wrong_password_is_one_clear_error_and_leaks_nothing(
        self, tmp_path: Path
    ) -> None:
        """Refused credentials end the command once, before any write."""
        source = write_csv(tmp_path / "in.csv", rows_named(5))
        with running(users=[User("admin@example.com", PLANTED_PASSWORD)]) as emulator:
            done = create(
                emulator,
                str(source),
                "--verbose",
                cwd=tmp_path,
                env=_login("wrong-" + PLANTED_PASSWORD),
            )
            writes = emulator.stats.writes

        assert done.returncode == 2
        errors = [line for line in done.stderr.splitlines() if "error:" in line]
        assert len(errors) == 1
        assert "authentication failed" in errors[0]
        assert "invalid_grant" in errors[0]
        assert writes == 0
        assert not (tmp_path / "in.results.jsonl").exists()
        _assert_no_secret([PLANTED_PASSWORD], done.stdout, done.stderr)

    def test_password_and_two_factor_code_never_reach_any_output(
        self, tmp_path: Path
    ) -> None:
        """With debug logs on, no output, results file or journal holds a secret."""
        rows = [*rows_named(8), {"BusinessId": "5", "Name": "Refused"}]
        source = write_csv(tmp_path / "in.csv", rows)
        user = User("admin@example.com", PLANTED_PASSWORD, totp=PLANTED_TOTP)
        env = _login(PLANTED_PASSWORD)
        env["NEXUDUS_TOTP"] = PLANTED_TOTP
        with running(users=[user]) as emulator:
            done = create(emulator, str(source), "--verbose", cwd=tmp_path, env=env)
            token = token_for(emulator, PLANTED_PASSWORD, PLANTED_TOTP)  # same format

        assert done.returncode == 1, done.stderr
        assert "DEBUG" in done.stderr
        _assert_no_secret(
            [PLANTED_PASSWORD, PLANTED_TOTP, "Bearer ", token[:12]],
            done.stdout,
            done.stderr,
            (tmp_path / "in.results.jsonl").read_bytes(),
            (tmp_path / "in.journal.sqlite").read_bytes(),
        )

    def test_a_refused_token_says_it_may_have_expired_and_is_not_shown(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """A 401 for NEXUDUS_TOKEN points at the token first, and never prints it."""
        source = write_csv(tmp_path / "in.csv", rows_named(3))
        planted = "planted-" + token_for(emulator, "password")[::-1]

        done = create(
            emulator, str(source), "-v", cwd=tmp_path, env=_env(NEXUDUS_TOKEN=planted)
        )

        assert done.returncode == 2
        errors = [line for line in done.stderr.splitlines() if "error:" in line]
        assert len(errors) == 1
        assert "authentication failed" in errors[0]
        assert "NEXUDUS_TOKEN" in errors[0]
        assert "expired" in errors[0]
        assert emulator.stats.writes == 0
        _assert_no_secret([planted, planted[8:20]], done.stdout, done.stderr)

    def test_a_token_from_the_environment_is_used_and_never_shown(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """NEXUDUS_TOKEN alone is enough, and it appears nowhere."""
        source = write_csv(tmp_path / "in.csv", rows_named(4))
        token = token_for(emulator, "password")

        done = create(
            emulator, str(source), "-v", cwd=tmp_path, env=_env(NEXUDUS_TOKEN=token)
        )

        assert done.returncode == 0, done.stderr
        assert len(emulator.records) == 4
        _assert_no_secret(
            [token],
            done.stdout,
            done.stderr,
            (tmp_path / "in.results.jsonl").read_bytes(),
            (tmp_path / "in.journal.sqlite").read_bytes(),
        )


# --- journal, crashes, signals, quota ------------------------------------------------


def _start(
    emulator: Emulator,
    source: Path,
    cwd: Path,
    *args: str,
    preexec_fn: Callable[[], object] | None = None,
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _command(
            "create",
            str(source),
            "--base-url",
            emulator.base_url,
            "--limits",
            "off",
            *args,
        ),
        cwd=cwd,
        env=_login(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        preexec_fn=preexec_fn,
    )


def _result_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


class TestResume:
    def test_kill_9_at_random_moments_then_resume_loses_and_repeats_nothing(
        self, tmp_path: Path
    ) -> None:
        """After SIGKILLs anywhere in a run, re-running until done stores each record once."""
        rng = random.Random(5150)
        rows = rows_named(300, prefix="Crash test")
        source = write_csv(tmp_path / "in.csv", rows)
        # Each create waits on the server before it is stored, so kills land while
        # creates are in flight, and some are stored after their sender died.
        slow = Faults(rate=1.0, kinds=("delay:0.04",), scope="creates", seed=3)
        kills = 0
        # A short timeout keeps short the wait a re-run makes before looking up
        # the records a killed run left in flight.
        fast = ("--concurrency", "6", "-q", "--timeout", "1")
        with running(faults=slow) as emulator:
            for _ in range(8):
                job = _start(emulator, source, tmp_path, *fast)
                time.sleep(rng.uniform(0.4, 2.0))
                if job.poll() is None:
                    job.kill()
                    kills += 1
                job.communicate(timeout=10)
            for _ in range(3):
                final = _start(emulator, source, tmp_path, *fast)
                _, err = final.communicate(timeout=45)
                if final.returncode == 0:
                    break
            stored = stored_names(emulator)
            ids = ids_by_name(emulator)

        assert final.returncode == 0, err
        assert kills >= 4
        assert set(stored) == {row["Name"] for row in rows}
        assert max(stored.values()) == 1
        last = results(tmp_path / "in.results.jsonl")
        assert len(last) == 300
        assert {r["outcome"] for r in last} <= {"created", "skipped"}
        for result in last:
            assert result["id"] == ids[rows[result["line"] - 2]["Name"]]

    @pytest.mark.parametrize(
        ("signum", "status"),
        [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
        ids=["ctrl-c", "sigterm"],
    )
    def test_an_interrupt_flushes_every_outcome_and_a_rerun_completes(
        self, tmp_path: Path, signum: int, status: int
    ) -> None:
        """In flight ends unknown, the rest not attempted, a summary; then resume."""
        rows = rows_named(200, prefix="Interrupted")
        source = write_csv(tmp_path / "in.csv", rows)
        output = tmp_path / "in.results.jsonl"
        slow = Faults(rate=1.0, kinds=("delay:0.05",), scope="creates")
        with running(faults=slow) as emulator:
            job = _start(emulator, source, tmp_path, "--concurrency", "4")
            deadline = time.monotonic() + 20
            while _result_lines(output) < 20 and time.monotonic() < deadline:
                time.sleep(0.02)
            job.send_signal(signum)
            _, err = job.communicate(timeout=20)
            first = results(output)

            again = create(emulator, str(source), "--timeout", "1", cwd=tmp_path)
            stored = stored_names(emulator)

        assert job.returncode == status, err
        assert len(first) == 200
        outcomes = Counter(r["outcome"] for r in first)
        assert outcomes["not_attempted"] > 0
        assert set(outcomes) <= {"created", "unknown", "not_attempted"}
        assert "interrupted:" in err
        assert "summary: 200 records" in err
        assert again.returncode == 0, again.stderr
        assert set(stored) == {row["Name"] for row in rows}
        assert max(stored.values()) == 1

    def test_the_daily_quota_stops_the_run_with_what_remains_and_when(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """The quota message counts the records left and says when to go on."""
        source = write_csv(tmp_path / "in.csv", rows_named(12))

        done = run_cli(
            "create",
            str(source),
            "--base-url",
            emulator.base_url,
            "--limits",
            "documented",
            "--daily-writes",
            "5",
            "--concurrency",
            "2",
            cwd=tmp_path,
        )

        assert done.returncode == 1, done.stderr
        assert (
            "daily write quota reached: 7 records remain; resume after" in done.stderr
        )
        outcomes = Counter(r["outcome"] for r in results(tmp_path / "in.results.jsonl"))
        assert outcomes == {"created": 5, "not_attempted": 7}
        assert len(emulator.records) == 5


# --- what is shown -----------------------------------------------------------------


class TestProgress:
    def test_off_a_terminal_progress_is_plain_lines_every_interval(
        self, tmp_path: Path
    ) -> None:
        """Several progress lines, no carriage returns, no escape codes."""
        source = write_csv(tmp_path / "in.csv", rows_named(60))
        slow = Faults(rate=1.0, kinds=("delay:0.05",), scope="creates")
        with running(faults=slow) as emulator:
            done = create(
                emulator,
                str(source),
                "--concurrency",
                "2",
                "--progress-interval",
                "0.3",
                cwd=tmp_path,
            )

        assert done.returncode == 0, done.stderr
        progress = [
            line for line in done.stderr.splitlines() if line.startswith("progress:")
        ]
        assert len(progress) >= 3
        assert "/60 (" in progress[-1]
        assert "created" in progress[-1]
        assert_plain(done.stderr)

    def test_on_a_terminal_progress_is_a_bar(self, tmp_path: Path) -> None:
        """With stderr on a terminal, a redrawn bar shows counts, rate and ETA."""
        source = write_csv(tmp_path / "in.csv", rows_named(40))
        slow = Faults(rate=1.0, kinds=("delay:0.04",), scope="creates")
        main, side = pty.openpty()
        fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
        with running(faults=slow) as emulator:
            job = subprocess.Popen(
                _command(
                    "create",
                    str(source),
                    "--base-url",
                    emulator.base_url,
                    "--limits",
                    "off",
                    "--concurrency",
                    "2",
                ),
                cwd=tmp_path,
                env=_login(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=side,
            )
            os.close(side)
            screen = b""
            while True:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # the other side closed: the child is done
                    break
                if not chunk:
                    break
                screen += chunk
            os.close(main)
            stdout, _ = job.communicate(timeout=20)

        assert job.returncode == 0
        text = screen.decode("utf-8", "replace")
        assert "\r" in text
        assert "40/40" in text
        assert "%|" in text
        assert "created 40" in text
        assert "eta" in text
        assert "summary: 40 records" in text
        assert stdout == b""

    def test_quiet_says_nothing_when_all_went_well(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """--quiet: no progress and no summary on success."""
        source = write_csv(tmp_path / "in.csv", rows_named(5))

        done = create(emulator, str(source), "--quiet", cwd=tmp_path)

        assert done.returncode == 0
        assert done.stderr == ""
        assert done.stdout == ""


# --- the command line itself -------------------------------------------------------


class TestUsage:
    def test_version(self, tmp_path: Path) -> None:
        """--version prints the version and exits 0."""
        done = run_cli("--version", cwd=tmp_path)

        assert done.returncode == 0
        assert done.stdout.startswith("nexudus-async ")

    @pytest.mark.parametrize(
        "args",
        [
            (),
            ("create",),
            ("create", "in.csv", "--concurrency", "0"),
            ("create", "in.csv", "--timeout", "0"),
            ("create", "in.csv", "--timeout", "inf"),
            ("create", "in.csv", "--delimiter", "ab"),
            ("create", "in.csv", "--journal", "j.sqlite", "--no-journal"),
            ("launch",),
        ],
        ids=[
            "no-command",
            "no-input",
            "zero-concurrency",
            "zero-timeout",
            "endless-timeout",
            "long-delimiter",
            "journal-twice",
            "unknown",
        ],
    )
    def test_usage_errors_exit_2(self, tmp_path: Path, args: tuple[str, ...]) -> None:
        """Whatever the mistake on the command line, exit 2 with a usage message."""
        done = run_cli(*args, cwd=tmp_path)

        assert done.returncode == 2
        assert "usage:" in done.stderr or "error:" in done.stderr


class TestClosedOutput:
    def test_a_reader_that_leaves_early_gets_no_traceback(self, tmp_path: Path) -> None:
        """A dry run piped into a reader that closes at once: exit 1, no traceback."""
        source = tmp_path / "in.csv"
        rows = "".join(f"1,Row {n}\n" for n in range(2000))
        source.write_text("BusinessId,Name\n" + rows, encoding="utf-8")
        job = subprocess.Popen(
            _command("create", "--dry-run", str(source)),
            cwd=tmp_path,
            env=_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert job.stdout is not None
        job.stdout.close()
        _, err = job.communicate(timeout=30)

        assert job.returncode == 1
        assert b"Traceback" not in err
        assert b"BrokenPipeError" not in err

    @pytest.mark.parametrize(
        ("args", "expected"),
        [
            (("-o", "-"), "cannot write the results to -: "),
            (("--dry-run",), "the dry run has no place to write its report"),
        ],
        ids=["results", "dry-run"],
    )
    def test_a_closed_standard_output_is_a_setup_error(
        self,
        emulator: Emulator,
        tmp_path: Path,
        args: tuple[str, ...],
        expected: str,
    ) -> None:
        """Descriptor 1 closed, and stdout wanted: exit 2, one message, nothing sent."""
        source = write_csv(tmp_path / "in.csv", rows_named(3))
        # Closed in the child only, after the standard streams are set up.
        job = _start(emulator, source, tmp_path, *args, preexec_fn=lambda: os.close(1))
        _, err = job.communicate(timeout=45)

        assert job.returncode == 2, err
        assert "Traceback" not in err
        assert err.count("error:") == 1
        assert expected in err
        assert "standard output is closed" in err
        assert emulator.stats.writes == 0

    @pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
    def test_a_full_disk_on_standard_output_is_one_message(
        self, tmp_path: Path
    ) -> None:
        """A dry run into a full disk: exit 1 and one line saying so, no traceback."""
        source = tmp_path / "in.csv"
        source.write_text("BusinessId,Name\n1,A\n2,B\n", encoding="utf-8")
        with open("/dev/full", "wb") as full:
            done = subprocess.run(
                _command("create", "--dry-run", str(source)),
                cwd=tmp_path,
                env=_env(),
                stdin=subprocess.DEVNULL,
                stdout=full,
                stderr=subprocess.PIPE,
                timeout=30,
            )

        assert done.returncode == 1
        assert b"cannot write to standard output: [Errno 28]" in done.stderr
        assert b"Traceback" not in done.stderr


class TestOtherCommands:
    def test_demo_imports_the_example_and_lists_what_was_created(
        self, tmp_path: Path
    ) -> None:
        """The README's main-job command works with nothing set up."""
        done = run_cli("demo", cwd=tmp_path, env=_env(), timeout=55)

        assert done.returncode == 0, done.stderr
        story = done.stdout
        assert "summary: 300 records" in story
        assert "Id  BusinessId  Name" in story
        assert "were refused, on purpose" in story
        assert "progress:" in done.stderr
        written = story.rsplit("The results are in ", 1)[1].splitlines()[0]
        journal = story.rsplit("The journal is ", 1)[1].splitlines()[0]
        folder = Path(written).parent
        assert Path(journal).parent == folder
        assert Path(journal).is_file()
        assert f"journal: {journal}" in story
        rows_out = results(Path(written))
        shutil.rmtree(folder)
        assert len(rows_out) == 300
        assert Counter(r["outcome"] for r in rows_out)["created"] > 250
        assert list(tmp_path.iterdir()) == []

    def test_emulator_serves_until_interrupted(self, tmp_path: Path) -> None:
        """The emulator sub-command prints its URL, serves, and stops on Ctrl-C."""
        server = subprocess.Popen(
            _command("emulator", "--port", "0", "--limits", "off"),
            cwd=tmp_path,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            first = server.stdout.readline()
            assert first.startswith(
                "Nexudus API emulator listening on http://127.0.0.1:"
            )
            url = first.split()[-1]
            source = write_csv(tmp_path / "in.csv", rows_named(3))
            done = run_cli("create", str(source), "--base-url", url, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
        finally:
            server.send_signal(signal.SIGINT)
            server.communicate(timeout=10)
        assert server.returncode == 0

    def test_the_example_file_is_what_its_script_makes(self) -> None:
        """The committed example CSV is reproducible from its generator."""
        done = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "make_example.py"), "--check"],
            capture_output=True,
            text=True,
            check=False,
        )

        assert done.returncode == 0, done.stderr
