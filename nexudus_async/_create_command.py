"""The ``create`` command's job: records in from a file, one result per record out.

The steps, in the order a user meets their failures:

1. The input is read through once (unless it is standard input): a bad header, a
   byte that is not UTF-8 or a line that is not JSON stops everything here, before
   a single request; the count gives the progress display its total. A dry run
   ends here, listing every problem of every record.
2. The journal is opened; a second run on the same journal is refused. (Before
   any of this, a results file or journal that is the input, or each other, is
   refused.)
3. One bare connection checks that the server can be reached; then the client
   signs in and lists one record. An unreachable server, wrong credentials or a
   missing role end the command with one clear error, and no results file is
   touched.
4. The records stream through the bulk creator (see `JobRun`); each outcome is
   written to the results file the moment it is settled.

A first SIGINT or SIGTERM cancels the job: creates in flight end ``unknown`` (the
journal says so, and the next run looks them up), the rest end ``not_attempted``
(creates the client still held unsent, waiting for the rate limiter or a token,
among them; the next run sends those at once, unless an earlier create of the
record may still land), every one of them is written, and the summary follows. A
second signal exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import PurePath
from typing import Any, Final, TextIO

import anyio
import anyio.to_thread
import attrs
from yarl import URL

from ._auth import Auth, BearerAuth, PasswordAuth
from ._client import NexudusClient, _is_loopback
from ._constants import DEFAULT_BASE_URL, DEFAULT_TIMEOUT
from ._create_run import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE, JobRun
from ._credentials import ENV_TOKEN, ENV_TOTP
from ._errors import (
    AuthenticationError,
    AuthError,
    ConnectError,
    FieldProblem,
    NexudusError,
    PermissionDeniedError,
)
from ._io import FileFormat, SourceRecord, open_records, open_results
from ._journal import Journal
from ._limiter import RateLimits
from ._progress_display import Display, format_counts, format_summary, plural

__all__ = [
    "DOCUMENTED_DAILY_WRITES",
    "EXIT_INCOMPLETE",
    "EXIT_OK",
    "EXIT_USAGE",
    "CommandError",
    "CreateOptions",
    "JobResult",
    "ScanReport",
    "default_journal",
    "default_output",
    "documented_limits",
    "dry_run",
    "run_create",
    "scan_input",
    "summary_lines",
]

_RESULT_SUFFIXES: Final = frozenset({".jsonl", ".ndjson", ".csv"})
_STDIN_JOURNAL: Final = "nexudus-async-stdin.journal.sqlite"
# The input is either stdin or a file; from stdin nothing is known in advance.
_STDIN: Final = "-"


class CommandError(Exception):
    """The command cannot run as asked: bad options, input, journal or credentials.

    Attributes:
        exit_code: The process exit status to end with.
    """

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@attrs.frozen(kw_only=True)
class CreateOptions:
    """Everything the ``create`` job is told, already checked by the parser.

    Attributes:
        input: The input path, or ``"-"`` for standard input.
        format: ``"csv"`` or ``"jsonl"``; None to go by the extension.
        delimiter: The CSV delimiter; None to find it from the header line.
        output: The results file, ``"-"`` for standard output; None for the default
            (see `default_output`).
        journal: The journal file; None for the default (see `default_journal`).
        use_journal: False runs without a journal: no resuming.
        base_url: Root of the API.
        allow_http: Allow plain http to hosts other than loopback ones.
        concurrency: Records in progress at once.
        skip_existing: Look each record up first and skip it when it exists.
        stop_after_failures: Stop after this many failed or unknown records.
        rate_limits: Client-side pacing; None for none.
        timeout: Seconds of silence allowed per request.
        progress_interval: Seconds between progress updates.
    """

    input: str
    format: FileFormat | None = None
    delimiter: str | None = None
    output: str | None = None
    journal: str | None = None
    use_journal: bool = True
    base_url: str = DEFAULT_BASE_URL
    allow_http: bool = False
    concurrency: int = 8
    skip_existing: bool = False
    stop_after_failures: int | None = None
    rate_limits: RateLimits | None = attrs.field(factory=RateLimits.documented)
    timeout: float = DEFAULT_TIMEOUT
    progress_interval: float = 5.0


@attrs.frozen
class ScanReport:
    """What one read through the input found.

    Attributes:
        records: Records in the input.
        invalid: Records with at least one problem.
        problems: Problems in all, each with its line.
    """

    records: int
    invalid: int
    problems: int


@attrs.frozen
class JobResult:
    """How a ``create`` run ended.

    Attributes:
        counts: Records per outcome name, every name present.
        elapsed: Seconds the bulk job ran, from its start to its last outcome.
        exit_code: The exit status the command ends with.
        output: The results file, ``"-"`` for standard output.
        journal: The journal file, or None without one.
        stop_reason: Why the job stopped early, when it did.
        resume_at: When the write quota allows writes again, if it stopped the job.
        input_error: The problem that ended standard input early, when one did.
        results_error: Why the results file stopped taking rows, when it did.
        rows_written: Rows the results file took.
    """

    counts: Mapping[str, int]
    elapsed: float
    exit_code: int
    output: str
    journal: str | None
    stop_reason: str | None = None
    resume_at: datetime | None = None
    input_error: str | None = None
    results_error: str | None = None
    rows_written: int = 0


#: The daily write quota Nexudus documents.
DOCUMENTED_DAILY_WRITES: Final = 5000
_DAY: Final = 86400.0


def documented_limits(*, daily_writes: int = DOCUMENTED_DAILY_WRITES) -> RateLimits:
    """The documented limits, with the daily write window set to ``daily_writes``.

    A job sharing its account with other integrations leaves them room this way.
    """
    limits = RateLimits.documented()
    windows = tuple(
        attrs.evolve(window, limit=daily_writes)
        if window.writes_only and window.seconds == _DAY
        else window
        for window in limits.windows
    )

    return attrs.evolve(limits, windows=windows)


# --- where things go ---------------------------------------------------------------


def default_output(input_path: str) -> str:
    """Results go beside the input: ``leads.csv`` gives ``leads.results.jsonl``.

    From standard input they go to standard output (``"-"``).
    """
    if input_path == _STDIN:
        return _STDIN
    path = PurePath(input_path)

    return str(path.with_name(f"{path.stem}.results.jsonl"))


def default_journal(input_path: str) -> str:
    """The journal goes beside the input: ``leads.csv`` gives ``leads.journal.sqlite``.

    Named after the input, not the results, so a re-run of the same input resumes
    whatever results file it writes. From standard input it is
    ``nexudus-async-stdin.journal.sqlite`` in the current directory.
    """
    if input_path == _STDIN:
        return _STDIN_JOURNAL
    path = PurePath(input_path)

    return str(path.with_name(f"{path.stem}.journal.sqlite"))


def _same_file(first: str, second: str) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:
        # One of them does not exist yet: compare where they would be.
        return os.path.realpath(first) == os.path.realpath(second)


def _check_distinct(input_path: str, output: str, journal: str | None) -> None:
    """Refuse a results file or journal that is the input, or each other.

    Opening the results file empties it, and the journal is a database: either one
    on top of the input would destroy it before it is read.
    """
    files = [("the input", input_path), ("the results file", output)]
    if journal is not None:
        files.append(("the journal", journal))
    named = [(role, path) for role, path in files if path != _STDIN]
    for i, (role, path) in enumerate(named):
        for other_role, other in named[i + 1 :]:
            if _same_file(path, other):
                raise CommandError(
                    f"{other_role} would be {role} ({other}): give a different"
                    f" {'--journal' if other_role == 'the journal' else '--output'}"
                )


def _check_output(output: str) -> None:
    if output == _STDIN:
        return
    path = PurePath(output)
    if path.suffix.lower() not in _RESULT_SUFFIXES:
        raise CommandError(
            f"cannot tell the results format from {output!r}: name it .jsonl or .csv"
        )
    folder = path.parent
    if not os.path.isdir(folder):
        raise CommandError(f"the folder of the results file does not exist: {folder}")


# --- reading the input -------------------------------------------------------------


def _open(options: CreateOptions) -> Any:
    try:
        return open_records(
            options.input, format=options.format, delimiter=options.delimiter
        )
    except OSError as exc:
        raise CommandError(
            f"cannot read {options.input}: {exc.strerror or exc}"
        ) from None


def _describe(problem: FieldProblem) -> str:
    where = "row" if problem.field == "$" else problem.field
    if problem.value in (None, ""):
        return f"{where}: {problem.message}"

    return f"{where}: {problem.message} (got {problem.value!r:.80})"


def scan_input(
    options: CreateOptions, report: Callable[[str], object] | None = None
) -> ScanReport:
    """Read the whole input once, checking every record locally.

    Args:
        options: Where and how to read.
        report: Called with one line per problem (``line N: Field: message``);
            None to only count.

    Returns:
        The counts.

    Raises:
        InputFileError: A problem of the file itself, with its line.
        CommandError: The file cannot be opened.
    """
    records = invalid = problems = 0
    with _open(options) as reader:
        for record in reader:
            records += 1
            if not record.problems:
                continue
            invalid += 1
            problems += len(record.problems)
            if report is not None:
                for problem in record.problems:
                    report(f"line {record.line}: {_describe(problem)}")

    return ScanReport(records, invalid, problems)


def dry_run(options: CreateOptions, out: TextIO) -> int:
    """Check every record locally, list every problem on ``out``; send nothing.

    Returns:
        ``EXIT_OK`` when every record is valid, else ``EXIT_INCOMPLETE``.
    """
    report = scan_input(options, lambda text: print(text, file=out))
    print(
        f"dry run: {plural(report.records, 'record')},"
        f" {report.records - report.invalid} valid,"
        f" {report.invalid} with problems ({report.problems} in all); nothing was sent",
        file=out,
        flush=True,
    )

    return EXIT_OK if report.invalid == 0 else EXIT_INCOMPLETE


async def _in_thread(reader: Iterator[SourceRecord]) -> AsyncIterator[SourceRecord]:
    # A pipe may keep the next line waiting for as long as it likes; waiting for it
    # on a worker thread keeps the requests in flight moving meanwhile.
    while (record := await anyio.to_thread.run_sync(next, reader, None)) is not None:
        yield record


# --- the client --------------------------------------------------------------------


def _client(options: CreateOptions, auth: Auth) -> NexudusClient:
    url = URL(options.base_url)
    if (
        url.scheme == "http"
        and url.host
        and not options.allow_http
        and not _is_loopback(url.host)
    ):
        raise CommandError(
            f"--base-url: refusing plain http to {url.host!r}: only loopback hosts"
            " may use it unless --allow-http is given"
        )
    try:
        return NexudusClient(
            auth=auth,
            base_url=options.base_url,
            rate_limits=options.rate_limits,
            timeout=options.timeout,
            allow_http=options.allow_http,
        )
    except ValueError as exc:
        raise CommandError(f"--base-url: {exc}") from None


def _connect_failure(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror) or not exc.errno:
        return exc.strerror or str(exc)
    # asyncio words a refusal "Connect call failed (address)"; the errno says why.
    return os.strerror(exc.errno)


async def _check_reachable(options: CreateOptions) -> None:
    """Open one bare connection to the API's host and close it.

    A server that cannot be reached at all then fails at once, with one message,
    instead of after the client's retries.
    """
    url = URL(options.base_url)
    try:
        with anyio.fail_after(options.timeout):
            _, writer = await asyncio.open_connection(url.host, url.port)
    except TimeoutError:
        # Before OSError, of which it is a subclass, and which has nothing to say
        # about it.
        raise CommandError(
            f"cannot reach the API at {options.base_url}:"
            f" no answer in {options.timeout:g}s"
        ) from None
    except OSError as exc:
        raise CommandError(
            f"cannot reach the API at {options.base_url}: {_connect_failure(exc)}"
        ) from None
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def _sign_in_error(exc: NexudusError, base_url: str, auth: Auth) -> CommandError:
    if isinstance(exc, AuthError):
        hint = "check the email and password (NEXUDUS_EMAIL, NEXUDUS_PASSWORD)"
        if exc.error == "two_factor_auth_check":
            hint = f"set {ENV_TOTP} to the current two-factor code"
        elif exc.error == "must_reset_password":
            hint = "sign in to Nexudus once to set a new password"
        return CommandError(f"authentication failed: {exc}; {hint}")
    if isinstance(exc, AuthenticationError) and isinstance(auth, BearerAuth):
        # A token given as it is cannot be renewed, and tokens expire: that is
        # the likelier cause of a 401 than a missing role.
        return CommandError(
            f"authentication failed: {exc}; the token in {ENV_TOKEN} may be"
            " mistyped or expired (sign in again for a new one), or the account"
            " lacks the CrmOpportunityImportFile List and Create roles"
        )
    if isinstance(exc, (AuthenticationError, PermissionDeniedError)):
        return CommandError(
            f"authentication failed: {exc}; the account needs the"
            " CrmOpportunityImportFile List and Create roles, or full admin rights"
        )
    if isinstance(exc, ConnectError):
        # Nothing could be sent, as with wrong credentials: a setup problem.
        return CommandError(f"cannot reach the API at {base_url}: {exc}")

    return CommandError(
        f"cannot reach the API at {base_url}: {exc}", exit_code=EXIT_INCOMPLETE
    )


async def _signed_in_client(
    options: CreateOptions,
    auth: Auth,
    ask_totp: Callable[[], str | None] | None,
) -> NexudusClient:
    """An open client whose credentials work, asking for a two-factor code if needed.

    Signing in and reading one record before any write makes wrong credentials, a
    missing role or a mistyped host fail once, with one message, instead of failing
    the first record and stopping the job. A server that cannot be reached fails
    the same way, before the client's retries.
    """
    await _check_reachable(options)
    for attempt in (1, 2):
        client = await _client(options, auth).open()
        try:
            await client.import_files.list(page=1, size=1)
        except NexudusError as exc:
            await client.close()
            # One second chance, for the one refusal a person can fix on the spot.
            if (
                attempt == 1
                and isinstance(exc, AuthError)
                and exc.error == "two_factor_auth_check"
                and isinstance(auth, PasswordAuth)
                and ask_totp is not None
            ):
                code = ask_totp()
                if code:
                    auth = attrs.evolve(auth, totp=code)
                    continue
            raise _sign_in_error(exc, options.base_url, auth) from None
        except BaseException:
            await client.close()
            raise
        return client

    raise AssertionError("unreachable")  # pragma: no cover


# --- the whole job ------------------------------------------------------------------


async def run_create(
    options: CreateOptions,
    auth: Auth,
    display: Display,
    *,
    ask_totp: Callable[[], str | None] | None = None,
) -> JobResult:
    """Run the ``create`` job from start to end; see the module docs for the steps.

    Args:
        options: What to do.
        auth: The credentials.
        display: Where progress and messages go.
        ask_totp: Asks the user for a two-factor code when the server wants one;
            None when there is nobody to ask.

    Returns:
        How it ended, with the exit status.

    Raises:
        CommandError: The job could not start: input, results path, journal,
            base URL or credentials.
        InputFileError: A file turned out to be malformed (found before anything
            is sent).
        JournalError: The journal is in use by another run, or not a journal.
    """
    output = options.output or default_output(options.input)
    _check_output(output)
    journal_path = None
    if options.use_journal:
        journal_path = options.journal or default_journal(options.input)
    _check_distinct(options.input, output, journal_path)
    _client(options, auth)  # a bad base URL fails here, before anything is opened
    total = None if options.input == _STDIN else scan_input(options).records

    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(_open(options))
        journal = None
        if journal_path is not None:
            journal = stack.enter_context(Journal(journal_path))
        client = await _signed_in_client(options, auth, ask_totp)
        try:
            try:
                writer = stack.enter_context(open_results(output))
            except OSError as exc:
                # Nothing sent yet: a place to write the results is setup, like
                # the input.
                raise CommandError(
                    f"cannot write the results to {output}: {exc}"
                ) from None
            run = JobRun(
                writer, journal, display, limits=options.rate_limits, total=total
            )
            await run.run(
                client,
                reader if options.input != _STDIN else _in_thread(reader),
                concurrency=options.concurrency,
                stop_after=options.stop_after_failures,
                skip_existing=options.skip_existing,
                progress_interval=options.progress_interval,
            )
        finally:
            await client.close()

    assert run.job is not None
    return JobResult(
        counts=dict(run.counts),
        elapsed=run.job.elapsed,
        exit_code=run.exit_code,
        output=output,
        journal=journal_path,
        stop_reason=run.job.stop_reason,
        resume_at=run.job.resume_at,
        input_error=None if run.input_error is None else str(run.input_error),
        results_error=None if run.write_error is None else str(run.write_error),
        rows_written=run.rows_written,
    )


def _local_and_utc(moment: datetime) -> str:
    """The local time, with the UTC time beside it unless they are the same."""
    local = moment.astimezone()
    text = f"{local:%Y-%m-%d %H:%M %Z}"
    if local.utcoffset():
        text += f" ({moment.astimezone(timezone.utc):%H:%M} UTC)"

    return text


def summary_lines(result: JobResult) -> list[str]:
    """The end-of-run report: counts, time, rate, files, and why it stopped."""
    lines = format_summary(result.counts, elapsed=result.elapsed)
    lines.append(
        f"results: {'standard output' if result.output == '-' else result.output}"
    )
    if result.journal is not None:
        lines.append(f"journal: {result.journal}")

    remaining = result.counts["not_attempted"]
    if result.resume_at is not None:
        remain = "remains" if remaining == 1 else "remain"
        lines.append(
            f"daily write quota reached: {plural(remaining, 'record')} {remain};"
            f" resume after {_local_and_utc(result.resume_at)} by running the same"
            " command again"
        )
    elif result.exit_code > 128:
        lines.append(
            f"interrupted: {format_counts(result.counts)}. Run the same command"
            " again to resume."
        )
    elif result.stop_reason:
        lines.append(f"stopped early: {result.stop_reason}")
    if result.results_error is not None:
        lines.append(
            f"the results could not be written ({result.results_error}): they hold"
            f" the first {plural(result.rows_written, 'row')} only, and the"
            f" {plural(sum(result.counts.values()) - result.rows_written, 'record')}"
            " that finished after those have none"
        )
        if result.journal is not None:
            lines.append(
                "the journal has every outcome: run the same command again, with an"
                " output that can be written, to resume"
            )
    if result.counts["unknown"] and result.journal is not None:
        lines.append(
            "records marked unknown are looked up, not re-sent, by the next run"
        )

    return lines
