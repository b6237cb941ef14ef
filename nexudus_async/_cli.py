"""The ``nexudus-async`` command: ``create``, ``emulator`` and ``demo``.

Standard output carries what the user asked for (results with ``--output -``,
the dry-run report, the emulator's banner, the demo's story); progress, log lines,
the summary of ``create`` and errors go to standard error. Exit status: 0 when every
record ended created or skipped, 1 when some did not, 2 for usage, configuration or
input-file errors (and a server that cannot be reached), 128 plus the signal number
when interrupted (130 for Ctrl-C, 143 for SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import math
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Final

from ._constants import DEFAULT_BASE_URL, DEFAULT_TIMEOUT
from ._create_command import (
    DOCUMENTED_DAILY_WRITES,
    EXIT_INCOMPLETE,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    CreateOptions,
    JobResult,
    documented_limits,
    dry_run,
    run_create,
    summary_lines,
)
from ._credentials import CredentialsError, credentials_from_environment
from ._errors import InputFileError, JournalError
from ._progress_display import Display, DisplayLogHandler, make_display
from ._version import __version__

__all__ = ["build_parser", "main"]

ENV_BASE_URL: Final = "NEXUDUS_BASE_URL"
EXIT_INTERRUPTED: Final = 130

_DELIMITER_NAMES: Final = {
    "comma": ",",
    "semicolon": ";",
    "tab": "\t",
    "\\t": "\t",
    "pipe": "|",
}


# --- option types ------------------------------------------------------------------


def _delimiter(text: str) -> str:
    value = _DELIMITER_NAMES.get(text.lower(), text)
    if len(value) != 1 or value in '\r\n"':
        raise argparse.ArgumentTypeError(
            f"expected one character, or comma, semicolon, tab or pipe; not {text!r}"
        )
    return value


def _at_least_one(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number, not {text!r}"
        ) from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, not {number}")
    return number


def _seconds(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, not {text!r}") from None
    if not 0 < number < math.inf:
        raise argparse.ArgumentTypeError(
            f"expected a finite number of seconds above 0, not {text}"
        )
    return number


# --- the parser --------------------------------------------------------------------


def _add_output_options(parser: argparse.ArgumentParser, quiet_help: str) -> None:
    shown = parser.add_argument_group("what is shown")
    quietness = shown.add_mutually_exclusive_group()
    quietness.add_argument("-q", "--quiet", action="store_true", help=quiet_help)
    quietness.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="debug log lines on standard error (never credentials)",
    )
    shown.add_argument(
        "--progress-interval",
        type=_seconds,
        default=5.0,
        metavar="SECONDS",
        help="seconds between progress lines when standard error is not a terminal"
        " (default: %(default)s)",
    )


def _add_create_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    parser = commands.add_parser(
        "create",
        help="create import files from a CSV or JSONL file",
        description=(
            "Create one CrmOpportunityImportFile per record of INPUT, pacing itself"
            " to the API's limits, and write one result per record. Credentials come"
            " from NEXUDUS_EMAIL and NEXUDUS_PASSWORD (plus NEXUDUS_TOTP with"
            " two-factor authentication) or NEXUDUS_TOKEN, else from a prompt on a"
            " terminal. Run the same command again to resume an interrupted job."
        ),
    )
    parser.add_argument(
        "input", metavar="INPUT", help="CSV or JSONL file of records, or - for stdin"
    )

    reading = parser.add_argument_group("reading the input")
    reading.add_argument(
        "--format",
        choices=("csv", "jsonl"),
        help="input format (default: from the extension; stdin: from the first line)",
    )
    reading.add_argument(
        "--delimiter",
        type=_delimiter,
        metavar="CHAR",
        help="CSV delimiter: a character, or comma, semicolon, tab, pipe"
        " (default: found from the header line)",
    )
    reading.add_argument(
        "--dry-run",
        action="store_true",
        help="check every record locally, list every problem on stdout, send nothing",
    )

    files = parser.add_argument_group("results and journal")
    files.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="results file, .jsonl or .csv, or - for stdout"
        " (default: INPUT's name with .results.jsonl; stdout for stdin)",
    )
    journal = files.add_mutually_exclusive_group()
    journal.add_argument(
        "--journal",
        metavar="FILE",
        help="SQLite journal that makes re-runs of the same input resume"
        " (default: beside INPUT, named after it: leads.csv gives"
        " leads.journal.sqlite; for stdin, nexudus-async-stdin.journal.sqlite"
        " in the current folder)",
    )
    journal.add_argument(
        "--no-journal",
        action="store_true",
        help="run without a journal: a re-run sends everything again",
    )

    api = parser.add_argument_group("the API")
    api.add_argument(
        "--base-url",
        default=os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL,
        metavar="URL",
        help=f"root of the API (default: ${ENV_BASE_URL} or {DEFAULT_BASE_URL})",
    )
    api.add_argument(
        "--allow-http",
        action="store_true",
        help="allow plain http to hosts other than loopback ones",
    )
    api.add_argument(
        "--limits",
        choices=("documented", "off"),
        default="documented",
        help="client-side pacing: the documented 60 writes a minute and 5,000 a day,"
        " or none (default: %(default)s)",
    )
    api.add_argument(
        "--daily-writes",
        type=_at_least_one,
        default=DOCUMENTED_DAILY_WRITES,
        metavar="N",
        help="writes this run may use in any 24 hours, with --limits documented;"
        " each run counts from zero. Lower it to leave room for other integrations"
        " on the account (default: %(default)s)",
    )
    api.add_argument(
        "--concurrency",
        type=_at_least_one,
        default=8,
        metavar="N",
        help="records in progress at once (default: %(default)s)",
    )
    api.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="seconds of silence allowed per request (default: %(default)s)",
    )

    policy = parser.add_argument_group("policy")
    policy.add_argument(
        "--skip-existing",
        action="store_true",
        help="look each record up by BusinessId and Name first; skip it if it exists"
        " (one extra read per record)",
    )
    policy.add_argument(
        "--stop-after-failures",
        type=_at_least_one,
        metavar="N",
        help="stop after N records ended failed or unknown; the rest are not attempted",
    )
    _add_output_options(
        parser, "no progress; the summary only when something went wrong"
    )
    parser.set_defaults(handler=_create)


def _add_emulator_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    from .emulator import add_emulator_arguments

    parser = commands.add_parser(
        "emulator",
        help="serve a local emulator of the Nexudus API",
        description="Serve a local emulator of the Nexudus REST API until Ctrl-C."
        " Point the create command at it with --base-url.",
    )
    add_emulator_arguments(parser)
    parser.set_defaults(handler=_emulator)


def _add_demo_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    parser = commands.add_parser(
        "demo",
        help="run the create job on the example file against an in-process emulator",
        description=(
            "Start the emulator in this process, import the example CSV with the"
            " documented limits on a faster clock, show the progress and the"
            " summary, then list what was created. Nothing leaves this machine."
        ),
    )
    parser.add_argument(
        "--input",
        metavar="FILE",
        help="the records to import (default: the example file, examples/import-files.csv)",
    )
    parser.add_argument(
        "--time-scale",
        type=_seconds,
        default=60.0,
        metavar="X",
        help="run the API's clock X times faster; 60 turns the 60 writes a minute"
        " into 60 a second (default: %(default)s)",
    )
    parser.add_argument(
        "--show",
        type=int,
        default=20,
        metavar="N",
        help="created records to list; 0 lists all (default: %(default)s)",
    )
    _add_output_options(parser, "no progress bar")
    parser.set_defaults(handler=_demo)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``nexudus-async`` and its sub-commands."""
    parser = argparse.ArgumentParser(
        prog="nexudus-async",
        description="Bulk-create Nexudus CRM opportunity import files from CSV or"
        " JSONL, resumably and within the API's limits.",
        epilog="Exit status: 0 all records created or skipped; 1 some were not; 2 usage,"
        " configuration or input-file error; 130 interrupted (143 on SIGTERM).",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_create_parser(commands)
    _add_emulator_parser(commands)
    _add_demo_parser(commands)

    return parser


# --- shared plumbing ---------------------------------------------------------------


def _error(message: str) -> None:
    print(f"nexudus-async: error: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _logging_to(display: Display, args: argparse.Namespace) -> Iterator[None]:
    """Route the package's log records through the display while a command runs.

    By default that is INFO and up: warnings, and the few INFO lines that say why
    the job is waiting (a throttle, a retry and its delay). ``--quiet`` keeps
    warnings only; ``--verbose`` adds every DEBUG line.
    """
    logger = logging.getLogger("nexudus_async")
    handler = DisplayLogHandler(display)
    if args.verbose:
        level = logging.DEBUG
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    else:
        level = logging.WARNING if args.quiet else logging.INFO
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def _ask_totp() -> str | None:
    if not sys.stdin.isatty():
        return None
    return getpass.getpass("Two-factor code: ", stream=sys.stderr).strip() or None


def _report(result: JobResult, quiet: bool) -> None:
    if quiet and result.exit_code == EXIT_OK:
        return
    for line in summary_lines(result):
        print(line, file=sys.stderr)
    sys.stderr.flush()


# --- the commands ------------------------------------------------------------------


def _create_options(args: argparse.Namespace) -> CreateOptions:
    return CreateOptions(
        input=args.input,
        format=args.format,
        delimiter=args.delimiter,
        output=args.output,
        journal=args.journal,
        use_journal=not args.no_journal,
        base_url=args.base_url,
        allow_http=args.allow_http,
        concurrency=args.concurrency,
        skip_existing=args.skip_existing,
        stop_after_failures=args.stop_after_failures,
        rate_limits=None
        if args.limits == "off"
        else documented_limits(daily_writes=args.daily_writes),
        timeout=args.timeout,
        progress_interval=args.progress_interval if not sys.stderr.isatty() else 0.2,
    )


def _create(args: argparse.Namespace) -> int:
    options = _create_options(args)
    try:
        if args.dry_run:
            if sys.stdout is None:
                raise CommandError(
                    "standard output is closed: the dry run has no"
                    " place to write its report"
                )
            return dry_run(options, sys.stdout)
        auth = credentials_from_environment(os.environ)
    except (CommandError, InputFileError, CredentialsError) as exc:
        _error(str(exc))
        return EXIT_USAGE

    display = make_display(
        sys.stderr, quiet=args.quiet, interval=args.progress_interval
    )
    with _logging_to(display, args):
        try:
            result = asyncio.run(run_create(options, auth, display, ask_totp=_ask_totp))
        except CommandError as exc:
            display.close()
            _error(str(exc))
            return exc.exit_code
        except (InputFileError, JournalError) as exc:
            display.close()
            _error(str(exc))
            return EXIT_USAGE
        except KeyboardInterrupt:
            display.close()
            _error("interrupted; run the same command again to resume")
            return EXIT_INTERRUPTED
    _report(result, args.quiet)
    if result.input_error is not None:
        _error(result.input_error)

    return result.exit_code


def _emulator(args: argparse.Namespace) -> int:
    from .emulator import config_from_args, run_server

    try:
        config_from_args(args)
    except ValueError as exc:
        _error(str(exc))
        return EXIT_USAGE
    try:
        asyncio.run(run_server(args))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        _error(f"cannot serve on {args.host}:{args.port}: {exc}")
        return EXIT_INCOMPLETE

    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    display = make_display(
        sys.stderr,
        quiet=args.quiet,
        interval=args.progress_interval if not sys.stderr.isatty() else 0.2,
    )
    with _logging_to(display, args):
        try:
            return asyncio.run(
                run_demo(
                    display,
                    input_path=args.input,
                    time_scale=args.time_scale,
                    show=args.show,
                )
            )
        except (CommandError, InputFileError) as exc:
            display.close()
            _error(str(exc))
            return EXIT_USAGE
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: The arguments, without the program name; ``sys.argv[1:]`` by default.

    Returns:
        The exit status.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # --help and --version exit 0, usage errors 2; keep those codes.
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_usage(sys.stderr)
        _error("a command is required: create, emulator or demo")
        return EXIT_USAGE

    try:
        code: int = args.handler(args)
        # None when descriptor 1 was closed at start: nothing to flush then.
        if sys.stdout is not None:
            sys.stdout.flush()
    except KeyboardInterrupt:
        # Outside a running job (a dry run, a prompt): nothing to flush.
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Whatever reads standard output has gone (`| head`). What it did not
        # read is not wanted; the job, if one ran, has said what it could.
        _forget_stdout()
        return EXIT_INCOMPLETE
    except OSError as exc:
        # Standard output refused what it was given (a full disk): every other
        # file the commands write reports its own failures.
        _forget_stdout()
        _error(f"cannot write to standard output: {exc}")
        return EXIT_INCOMPLETE

    return code


def _forget_stdout() -> None:
    """Point standard output at nothing, so exiting does not flush into a closed pipe."""
    nothing = os.open(os.devnull, os.O_WRONLY)
    os.dup2(nothing, sys.stdout.fileno())
    os.close(nothing)
