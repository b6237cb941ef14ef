"""Write ``examples/import-files.csv``, the sample input of ``nexudus-async demo``.

The file is what a spreadsheet program saves as "CSV UTF-8": a byte-order mark,
comma-separated, CRLF line ends, fields quoted where they hold a comma or a quote.
It holds a few hundred plausible import-file records; about one in twelve is wrong
on purpose, in the ways real exports go wrong: most of them a dry run finds, and a
few (a location id that does not exist) only the server can refuse.

The output is the same on every run (a fixed seed, no clock), so the committed file
can be checked against this script::

    python examples/make_example.py            # rewrite examples/import-files.csv
    python examples/make_example.py --check    # exit 1 if the file is out of date
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
from pathlib import Path

HEADER = ["BusinessId", "Name", "NewFileDataUrl", "Imported", "ClearFileDataFile"]
DEFAULT_PATH = Path(__file__).resolve().parent / "import-files.csv"
RECORDS = 300
SEED = 20240917

SOURCES = [
    "Website enquiries",
    "Open day sign-ups",
    "Broker referrals",
    "Meeting-room leads",
    "Event wait list",
    "Virtual office requests",
    "Hot-desk trial users",
    "LinkedIn campaign",
    "Partner referrals (Acme Realty)",
    "Newsletter replies",
    "Walk-ins, front desk",
    'Tour requests "priority"',
    "Corporate RFP contacts",
    "Café loyalty sign-ups",
    "Salón de eventos \u2013 leads",
    "Zürich pop-up visitors",
]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
LOCATIONS = {1: "Lisbon", 2: "Porto", 3: "Madrid"}

# Each entry spoils one field of an otherwise good record, as real exports do.
MISTAKES: list[tuple[str, str]] = [
    ("BusinessId", ""),  # a blank cell
    ("BusinessId", "Lisbon"),  # the location's name instead of its id
    ("BusinessId", "2.0"),  # a spreadsheet turned the id into a decimal
    ("BusinessId", "1E+3"),  # ... or into scientific notation
    ("Name", ""),
    ("Name", "   "),
    ("NewFileDataUrl", "files.example.com/imports/leads.csv"),  # no scheme
    ("NewFileDataUrl", "ftp://files.example.com/imports/leads.csv"),
    ("Imported", "pending"),
    ("ClearFileDataFile", "maybe"),
    # Well-formed, so a dry run passes them; only the server knows these locations
    # do not exist (the demo's emulator has locations 1, 2 and 3).
    ("BusinessId", "9"),
    ("BusinessId", "12"),
]


def _slug(text: str) -> str:
    kept = "".join(c.lower() if c.isascii() and c.isalnum() else "-" for c in text)
    return "-".join(part for part in kept.split("-") if part)


def _record(rng: random.Random, number: int) -> dict[str, str]:
    business_id = rng.choice(list(LOCATIONS))
    source = rng.choice(SOURCES)
    year = rng.choice([2023, 2024])
    month = rng.choice(MONTHS)
    # The running number keeps every name distinct, which makes a run easy to check.
    name = f"{LOCATIONS[business_id]} {source} {month} {year} #{number:03d}"

    url = ""
    if rng.random() < 0.7:
        extension = rng.choice(["csv", "csv", "xlsx"])
        url = (
            f"https://files.example.com/imports/{year}/"
            f"{_slug(source)}-{number:03d}.{extension}"
        )
    imported = rng.choice(["", "", "false", "FALSE", "no", "true", "Yes"])
    clear = rng.choice(["", "", "", "", "false", "true"])

    return {
        "BusinessId": str(business_id),
        "Name": name,
        "NewFileDataUrl": url,
        "Imported": imported,
        "ClearFileDataFile": clear,
    }


def build(records: int = RECORDS, seed: int = SEED) -> str:
    """Return the whole CSV document as text (without the byte-order mark)."""
    rng = random.Random(seed)
    rows = [_record(rng, number) for number in range(1, records + 1)]

    # Spoil one row in twelve, spread through the file, one mistake each in turn.
    spoiled = sorted(rng.sample(range(records), records // 12))
    for turn, index in enumerate(spoiled):
        field, value = MISTAKES[turn % len(MISTAKES)]
        rows[index][field] = value

    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=HEADER, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)

    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Write the example file, or with ``--check`` compare it with the committed one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)

    data = ("\ufeff" + build()).encode("utf-8")
    if args.check:
        current = args.output.read_bytes() if args.output.exists() else b""
        if current != data:
            print(f"{args.output} is out of date; run {sys.argv[0]}", file=sys.stderr)
            return 1
        return 0

    args.output.write_bytes(data)
    print(f"wrote {RECORDS} records to {args.output}")

    return 0


if __name__ == "__main__":
    sys.exit(main())
