"""``nexudus-async demo``: the create job, end to end, with nothing to set up.

The emulator runs in this process on a loopback port, with the documented limits
on a faster clock, so the job paces itself exactly as it would against the real
API, only sooner. The files the job writes go to a fresh temporary folder, named
at the end.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any, Final

import attrs

from ._auth import PasswordAuth
from ._client import NexudusClient
from ._create_command import CommandError, CreateOptions, run_create, summary_lines
from ._json import loads
from ._limiter import RateLimits
from ._progress_display import Display, plural
from .emulator import Emulator, EmulatorConfig

__all__ = [
    "PACKAGED_EXAMPLE",
    "REPOSITORY_EXAMPLE",
    "example_file",
    "run_demo",
    "scaled_limits",
]

#: The sample input as shipped in the wheel, which copies it into the package.
PACKAGED_EXAMPLE: Final = (
    Path(__file__).resolve().parent / "_examples" / "import-files.csv"
)
#: The same file in a source checkout, where an editable install finds it.
REPOSITORY_EXAMPLE: Final = (
    Path(__file__).resolve().parent.parent / "examples" / "import-files.csv"
)

_EMAIL: Final = "admin@example.com"
_PASSWORD: Final = "password"
_REJECTED_SHOWN: Final = 12
#: Exit statuses above this one mean a signal stopped the job.
_SIGNAL_BASE: Final = 128


def scaled_limits(limits: RateLimits, time_scale: float) -> RateLimits:
    """The same limits on a clock running ``time_scale`` times faster."""
    windows = tuple(
        attrs.evolve(window, seconds=window.seconds / time_scale)
        for window in limits.windows
    )

    return attrs.evolve(limits, windows=windows)


def example_file() -> Path:
    """The sample input: the installed copy, else the one in the source checkout.

    When neither exists the packaged path is returned, so the error names where
    an installed demo looked.
    """
    for candidate in (PACKAGED_EXAMPLE, REPOSITORY_EXAMPLE):
        if candidate.is_file():
            return candidate

    return PACKAGED_EXAMPLE


def _say(display: Display, text: str = "") -> None:
    # The story goes to standard output; only the progress stays on standard error.
    display.message(text, sys.stdout)


async def _list_created(
    display: Display, client: NexudusClient, show: int, results: str
) -> None:
    rows: list[tuple[str, str, str]] = []
    count = 0
    async for record in client.import_files.iterate(size=100):
        count += 1
        if show == 0 or len(rows) < show:
            rows.append((str(record.id), str(record.business_id), record.name))

    _say(display)
    _say(display, f"The emulator now stores {count} import files:")
    header = ("Id", "BusinessId", "Name")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(2)]
    _say(display, f"  {header[0]:>{widths[0]}}  {header[1]:>{widths[1]}}  {header[2]}")
    for id_, business_id, name in rows:
        _say(display, f"  {id_:>{widths[0]}}  {business_id:>{widths[1]}}  {name}")
    if count > len(rows):
        _say(display, f"  ... and {count - len(rows)} more; every id is in {results}")


def _reason(row: dict[str, Any]) -> str:
    errors = row["errors"]
    if not errors:
        return str(row["message"] or "refused")
    first = errors[0]

    return (
        f"{first['PropertyName']}: {first['Message']} (got {first['AttemptedValue']!r})"
    )


def _show_rejected(display: Display, results: str) -> None:
    rejected = []
    with open(results, "rb") as lines:
        for text in lines:
            row = loads(text)
            if row["outcome"] == "rejected":
                rejected.append(row)
    if not rejected:
        return

    # One example of each kind of mistake, in file order.
    examples: dict[str, dict[str, Any]] = {}
    for row in sorted(rejected, key=lambda row: row["line"] or 0):
        errors = row["errors"]
        kind = f"{errors[0]['PropertyName']}: {errors[0]['Message']}" if errors else ""
        examples.setdefault(kind, row)
    _say(display)
    _say(
        display,
        f"{plural(len(rejected), 'record')}"
        f" {'was' if len(rejected) == 1 else 'were'} refused, on purpose: the example"
        " file holds mistakes real exports make. One of each kind:",
    )
    for row in list(examples.values())[:_REJECTED_SHOWN]:
        local = row["message"] == "the record failed local validation"
        where = "" if local else "  <- only the server could tell"
        _say(display, f"  line {row['line']}: {_reason(row)}{where}")


async def run_demo(
    display: Display,
    *,
    input_path: str | None = None,
    time_scale: float = 60.0,
    show: int = 20,
) -> int:
    """Run the demo; see the module docs.

    Args:
        display: Where progress and every line of the demo go.
        input_path: The records to import; the example file by default.
        time_scale: How much faster than real time the API's clock runs.
        show: Created records to list; 0 lists all.

    Returns:
        0 when the demo ran (records refused on purpose do not make it fail), or
        128 plus the signal number when it was interrupted.

    Raises:
        CommandError: The input file cannot be found.
    """
    source = Path(input_path) if input_path else example_file()
    if not source.is_file():
        raise CommandError(
            f"cannot find the records to import at {source}; pass --input FILE"
        )
    folder = Path(tempfile.mkdtemp(prefix="nexudus-demo-"))
    results = str(folder / f"{source.stem}.results.jsonl")
    limits = scaled_limits(RateLimits.documented(), time_scale)

    async with Emulator(EmulatorConfig(time_scale=time_scale)) as emulator:
        _say(
            display,
            f"Nexudus API emulator running in this process at {emulator.base_url}",
        )
        _say(
            display,
            f"The documented limits apply (60 writes a minute, 5,000 a day), on a"
            f" clock {time_scale:g} times faster than real time.",
        )
        _say(display, f"Importing {source} ...")
        _say(display)
        options = CreateOptions(
            input=str(source),
            output=results,
            journal=str(folder / f"{source.stem}.journal.sqlite"),
            base_url=emulator.base_url,
            rate_limits=limits,
            progress_interval=0.2,
        )
        auth = PasswordAuth(_EMAIL, _PASSWORD)
        result = await run_create(options, auth, display)

        _say(display)
        for line in summary_lines(result):
            _say(display, line)
        if result.exit_code > _SIGNAL_BASE:
            return result.exit_code
        _show_rejected(display, results)

        async with NexudusClient(
            auth=auth, base_url=emulator.base_url, rate_limits=limits
        ) as client:
            await _list_created(display, client, show, results)

    _say(display)
    _say(display, f"The results are in {result.output}")
    _say(display, f"The journal is {result.journal}")
    _say(
        display,
        "Next: nexudus-async create --dry-run YOUR.csv, then the same without"
        " --dry-run and with NEXUDUS_EMAIL and NEXUDUS_PASSWORD set.",
    )

    return 0
