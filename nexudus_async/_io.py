"""Input records from CSV and JSONL files, and the results file written back.

Reading streams: one physical line at a time from the binary file, decoded line by
line so that a bad byte is reported with its line number, and handed to the `csv`
module (or the JSON decoder) as it arrives. Memory does not grow with the input;
the only state that does is the count of identical records (see `SourceRecord.key`),
and that lives in a temporary on-disk SQLite table.

A problem with the file itself (its header, its encoding, a line that is not a JSON
object) raises `InputFileError` as soon as it is seen. A problem with one record does
not raise: it travels in `SourceRecord.problems`, so the record can be reported as
rejected, with its line, while the others go on.
"""

from __future__ import annotations

import codecs
import csv
import errno
import hashlib
import io
import logging
import os
import sqlite3
import sys
from collections.abc import Generator, Iterable, Iterator, Mapping
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, BinaryIO, Final, Literal

import attrs

from ._closing import ClosesOnExit
from ._convert import wire_name
from ._errors import FieldProblem, InputFileError, RecordValidationError
from ._json import JSONDecodeError, dumps_escaping, loads, repeated_keys
from ._models import ImportFileCreate
from ._validate import validate_create

if TYPE_CHECKING:
    from _csv import Reader

__all__ = [
    "RESULT_COLUMNS",
    "ROW",
    "FileFormat",
    "RecordKeys",
    "RecordReader",
    "ResultRow",
    "ResultsWriter",
    "SourceRecord",
    "open_records",
    "open_results",
    "problem_errors",
]

_LOG = logging.getLogger(__name__)

FileFormat = Literal["csv", "jsonl"]

#: The longest physical line accepted, in bytes: a file without line breaks must not
#: be read into memory whole.
MAX_LINE_BYTES: Final = 1 << 20

_INPUT_EXTENSIONS: Final[Mapping[str, FileFormat]] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_RESULT_EXTENSIONS: Final[Mapping[str, FileFormat]] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_DELIMITERS: Final = ",;\t"
_SNIFF_BYTES: Final = 8192
RESULT_COLUMNS: Final = ("line", "outcome", "id", "errors", "message")

#: The field every problem about a whole row (rather than one field) is filed under.
ROW: Final = "$"


def _field_spellings() -> tuple[tuple[str, ...], tuple[str, ...], dict[str, str]]:
    """Wire names in model order, the required ones, and every accepted spelling."""
    fields = attrs.fields(ImportFileCreate)
    names = tuple(wire_name(field.name) for field in fields)
    required = tuple(
        wire_name(field.name) for field in fields if field.default is attrs.NOTHING
    )
    spellings = {}
    for field in fields:
        wire = wire_name(field.name)
        spellings[wire.casefold()] = wire
        spellings[field.name.casefold()] = wire
    return names, required, spellings


_WIRE_NAMES, _REQUIRED, _SPELLINGS = _field_spellings()


def _to_wire_name(name: str) -> str | None:
    """Map a header or JSON key to its wire name: any case, PascalCase or snake_case."""
    return _SPELLINGS.get(name.strip().casefold())


# --- records ----------------------------------------------------------------------


@attrs.frozen
class SourceRecord:
    """One record read from the input, checked locally.

    Attributes:
        index: 0-based position among the records of the input (blank lines are
            not records).
        line: 1-based line where the record starts. In a CSV file the header is
            line 1 and a record spanning lines (a quoted line break) has the line
            of its first one.
        raw: The record as read, keys mapped to wire names. CSV values are the text
            of the cells (a missing trailing cell is ``""``); JSONL values are as
            decoded. Keys that name no field are kept as they were spelled.
        payload: The create payload, or None when the record has problems.
        problems: Everything wrong with the record, empty when it is valid.
        key: Stable identity of the record for the journal: the SHA-256 of the
            record's non-empty raw values (canonical JSON, keys sorted), then ``-``
            and the occurrence number of that content in the input (1 for its
            first appearance). Two identical rows are two records with two keys,
            and the same input read again yields the same keys in any row order.
    """

    index: int
    line: int | None
    raw: Mapping[str, Any]
    payload: ImportFileCreate | None
    problems: tuple[FieldProblem, ...]
    key: str


class RecordKeys(ClosesOnExit):
    """Numbers repeated identical records, so that identical rows are distinct records.

    Gives each record its journal key (see `SourceRecord.key`): the digest of its
    content, then how many times that content has come so far. The counts are
    kept in a temporary SQLite database on disk, not in memory, so memory stays
    flat however long the input. The database is opened by the first key asked
    for and held until `close` (or the end of a ``with`` block).
    """

    def __init__(self) -> None:
        self._db: sqlite3.Connection | None = None
        self._closed = False

    def _open(self) -> sqlite3.Connection:
        if self._closed:
            raise sqlite3.ProgrammingError("the record keys are closed")
        # An empty name makes a private temporary database that SQLite keeps in its
        # (bounded) page cache and spills to a file it deletes on close.
        db = sqlite3.connect("", check_same_thread=False)
        db.executescript(
            "PRAGMA journal_mode = OFF;"
            "PRAGMA synchronous = OFF;"
            "PRAGMA cache_size = -2048;"
            "CREATE TABLE seen (digest BLOB PRIMARY KEY, count INTEGER NOT NULL)"
            " WITHOUT ROWID;"
        )
        self._db = db

        return db

    def key_for(self, raw: Mapping[str, Any]) -> str:
        """The key of the next record with this content (wire names as keys).

        Raises:
            TypeError: A value (or key) has no JSON form.
            ValueError: A float that is not finite, in a record that also
                holds a lone surrogate.
            sqlite3.ProgrammingError: The keys are closed.
        """
        # Empty values are left out so that adding or dropping an empty column
        # between runs does not change which records count as done.
        content = {
            name: raw[name] for name in sorted(raw) if raw[name] not in ("", None)
        }
        digest = hashlib.sha256(dumps_escaping(content)).digest()
        db = self._db or self._open()
        (count,) = db.execute(
            "INSERT INTO seen VALUES (?, 1)"
            " ON CONFLICT (digest) DO UPDATE SET count = count + 1 RETURNING count",
            (digest,),
        ).fetchone()

        return f"{digest.hex()}-{count}"

    def close(self) -> None:
        """Drop the counts and close the database; closing again does nothing."""
        self._closed = True
        db, self._db = self._db, None
        if db is not None:
            db.close()


class _Lines(Iterator[str]):
    """Decoded physical lines of a binary stream; ``number`` is the last one's."""

    def __init__(self, stream: BinaryIO, encoding: str, path: str | None) -> None:
        self._stream = stream
        self._encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)("strict")
        self._path = path
        self._replay: list[str] = []
        self.number = 0

    def __next__(self) -> str:
        if self._replay:
            self.number += 1
            return self._replay.pop(0)

        data = self._stream.readline(MAX_LINE_BYTES + 1)
        if not data:
            raise StopIteration
        self.number += 1
        if len(data) > MAX_LINE_BYTES:
            raise self._error(f"line is longer than {MAX_LINE_BYTES} bytes")
        if self.number == 1 and data.startswith(
            (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
        ):
            raise self._error("the file is UTF-16 or UTF-32 text; save it as UTF-8")
        try:
            # Each line ends in a newline byte, so no character straddles two lines.
            return self._decoder.decode(data, final=True)
        except UnicodeDecodeError as exc:
            bad = data[exc.start : exc.end]
            raise self._error(
                f"byte {exc.start + 1} of the line ({bad!r}) is not valid "
                f"{self._encoding} text"
            ) from None

    def first_content(self) -> str | None:
        """Peek at the first non-blank line; it and the lines before stay unread."""
        seen: list[str] = []
        found = None
        for text in self:
            seen.append(text)
            if text.strip():
                found = text
                break
        self.number -= len(seen)
        self._replay[:0] = seen

        return found

    def _error(self, message: str) -> InputFileError:
        return InputFileError(message, path=self._path, line=self.number)


def _check_encoding(encoding: str) -> None:
    """Refuse encodings whose newline is not the single byte the reader splits on."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r}") from None
    if b"\n,;\t".decode(encoding, "replace") != "\n,;\t":
        raise ValueError(
            f"encoding {encoding!r} is not supported: lines must end in a newline byte"
        )


def _sniff_delimiter(first_line: str) -> str:
    """Pick the delimiter from the header line, else let csv.Sniffer guess, else ','."""
    # Field names never contain a delimiter, so a valid header holds exactly one kind.
    present = [d for d in _DELIMITERS if d in first_line]
    if len(present) == 1:
        return present[0]
    try:
        return csv.Sniffer().sniff(first_line[:_SNIFF_BYTES], _DELIMITERS).delimiter
    except csv.Error:
        return ","


def _columns(what: str, names: list[str]) -> str:
    noun = "column" if len(names) == 1 else "columns"

    return f"{what} {noun} {', '.join(names)}"


def _format_from_name(path: str) -> FileFormat:
    suffix = PurePath(path).suffix.lower()
    found = _INPUT_EXTENSIONS.get(suffix)
    if found is None:
        raise InputFileError(
            f"cannot tell the format from the extension {suffix or '(none)'!r};"
            " name the file .csv or .jsonl, or give the format (--format on the command"
            " line)",
            path=path,
        )
    return found


def _times(count: int) -> str:
    return "twice" if count == 2 else f"{count} times"


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null"


class RecordReader(ClosesOnExit, Iterator[SourceRecord]):
    """The records of one input, read lazily; closes the file when done.

    Made by `open_records`. Iterate it once; use it as a context manager (or call
    `close`) so the file is closed if iteration stops early.

    Attributes:
        path: The input as given (``"-"`` for standard input), or None.
        format: ``"csv"`` or ``"jsonl"``.
        delimiter: The CSV delimiter in use, or None for JSONL.
        headers: The CSV header cells as they were written (empty for JSONL).
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        owned: bool,
        path: str | None,
        format: FileFormat | None,
        delimiter: str | None,
        encoding: str,
    ) -> None:
        self.path = path
        self.delimiter: str | None = None
        self.headers: tuple[str, ...] = ()
        self._stream = stream
        self._owned = owned
        self._lines = _Lines(stream, encoding, path)
        self._keys = RecordKeys()
        self._index = 0
        self._records: Generator[SourceRecord, None, None] | None = None
        try:
            self.format: FileFormat = format or self._sniff_format()
            if self._lines.first_content() is None:
                raise InputFileError("the file is empty", path=path)
            if self.format == "csv":
                self._records = self._csv_records(*self._csv_start(delimiter))
            else:
                self._records = self._jsonl_records()
        except BaseException:
            self._release()
            raise
        _LOG.debug("reading %s as %s, delimiter %r", path, self.format, self.delimiter)

    def __next__(self) -> SourceRecord:
        if self._records is None:
            raise StopIteration
        return next(self._records)

    def close(self) -> None:
        """Stop reading and close the file (standard input is left open)."""
        records, self._records = self._records, None
        if records is not None:
            records.close()
        self._release()

    def _release(self) -> None:
        self._keys.close()
        if self._owned and not self._stream.closed:
            self._stream.close()

    # -- shared -------------------------------------------------------------------

    def _sniff_format(self) -> FileFormat:
        if self._owned and self.path is not None:
            return _format_from_name(self.path)
        if self.path is not None:
            # A stream: its name may still tell (an open ".csv" file).
            found = _INPUT_EXTENSIONS.get(PurePath(self.path).suffix.lower())
            if found is not None:
                return found
        first = self._lines.first_content()
        if first is None:
            raise InputFileError("the input is empty", path=self.path)
        return "jsonl" if first.lstrip().startswith("{") else "csv"

    def _record(
        self, line: int, raw: dict[str, Any], problems: list[FieldProblem]
    ) -> SourceRecord:
        payload = None
        try:
            payload = validate_create(raw, line=line)
        except RecordValidationError as exc:
            problems.extend(exc.problems)
        record = SourceRecord(
            index=self._index,
            line=line,
            raw=raw,
            payload=None if problems else payload,
            problems=tuple(problems),
            key=self._keys.key_for(raw),
        )
        self._index += 1

        return record

    # -- CSV ----------------------------------------------------------------------

    def _csv_start(self, delimiter: str | None) -> tuple[Reader, list[str | None]]:
        """Read and check the header; return the csv reader and the column names."""
        if delimiter is None:
            delimiter = _sniff_delimiter(self._lines.first_content() or "")
        self.delimiter = delimiter

        reader = csv.reader(self._lines, delimiter=delimiter, strict=True)
        while True:
            start = reader.line_num + 1
            header = self._next_row(reader, start)
            if header is None:
                raise InputFileError("the file has no header row", path=self.path)
            if any(cell.strip() for cell in header):
                break
        self.headers = tuple(header)

        return reader, self._map_header(header, start)

    def _map_header(self, header: list[str], line: int) -> list[str | None]:
        columns: list[str | None] = []
        first_spelling: dict[str, str] = {}
        unknown: list[str] = []
        repeated: list[str] = []
        for cell in header:
            name = cell.strip()
            wire = _to_wire_name(name) if name else None
            if name and wire is None:
                unknown.append(repr(name))
            elif wire is not None and wire in first_spelling:
                repeated.append(f"{first_spelling[wire]!r} and {name!r}")
                wire = None
            elif wire is not None:
                first_spelling[wire] = name
            columns.append(wire)
        missing = [name for name in _REQUIRED if name not in first_spelling]

        faults = []
        if unknown:
            faults.append(_columns("unknown", unknown))
        if repeated:
            faults.append(_columns("repeated", repeated))
        if missing:
            faults.append(_columns("missing required", missing))
        if faults:
            seen = ", ".join(repr(cell) for cell in header)
            raise InputFileError(
                f"bad header: {'; '.join(faults)}. Headers seen (split on"
                f" {self.delimiter!r}): {seen}. Expected: {', '.join(_WIRE_NAMES)},"
                " in any case or in snake_case",
                path=self.path,
                line=line,
            )

        return columns

    def _next_row(self, reader: Reader, start: int) -> list[str] | None:
        try:
            row = next(reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            where = ""
            if reader.line_num != start:
                where = f" (found while reading line {reader.line_num})"
            raise InputFileError(
                f"malformed CSV in the record starting here: {exc}{where}",
                path=self.path,
                line=start,
            ) from None
        return row

    def _csv_records(
        self, reader: Reader, columns: list[str | None]
    ) -> Generator[SourceRecord, None, None]:
        try:
            while True:
                start = reader.line_num + 1
                row = self._next_row(reader, start)
                if row is None:
                    return
                if not any(cell.strip() for cell in row):
                    continue
                yield self._csv_record(start, row, columns)
        finally:
            self._release()

    def _csv_record(
        self, line: int, row: list[str], columns: list[str | None]
    ) -> SourceRecord:
        raw: dict[str, Any] = {}
        problems: list[FieldProblem] = []
        for position, wire in enumerate(columns):
            value = row[position] if position < len(row) else ""
            if wire is not None:
                raw[wire] = value
            elif value.strip():
                problems.append(
                    FieldProblem(
                        ROW,
                        f"column {position + 1} has a value but no known header",
                        value,
                    )
                )
        extra = row[len(columns) :]
        # Trailing empty cells carry nothing; a value beyond the header would be lost.
        if any(cell.strip() for cell in extra):
            problems.append(
                FieldProblem(
                    ROW,
                    f"the row has {len(row)} fields but the header has {len(columns)}",
                    extra,
                )
            )

        return self._record(line, raw, problems)

    # -- JSONL --------------------------------------------------------------------

    def _jsonl_records(self) -> Generator[SourceRecord, None, None]:
        try:
            for text in self._lines:
                if text.strip():
                    yield self._jsonl_record(self._lines.number, text)
        finally:
            self._release()

    def _jsonl_record(self, line: int, text: str) -> SourceRecord:
        try:
            document = loads(text)
        except JSONDecodeError as exc:
            raise InputFileError(
                f"not valid JSON: {exc}", path=self.path, line=line
            ) from None
        if not isinstance(document, dict):
            raise InputFileError(
                f"expected a JSON object, found {_json_type(document)}",
                path=self.path,
                line=line,
            )

        raw: dict[str, Any] = {}
        spelled: dict[str, str] = {}
        problems: list[FieldProblem] = []
        # The decoder keeps the last of the values a repeated key has; which one
        # the writer meant is not for the reader to guess.
        for key, values in repeated_keys(text, document).items():
            problems.append(
                FieldProblem(
                    _to_wire_name(key) or key,
                    f"given {_times(len(values))}, as {key!r}",
                    values,
                )
            )
        for key, value in document.items():
            wire = _to_wire_name(key) or key
            if wire in raw:
                problems.append(
                    FieldProblem(
                        wire,
                        f"given twice, as {spelled[wire]!r} and {key!r}",
                        [raw[wire], value],
                    )
                )
                continue
            raw[wire] = value
            spelled[wire] = key

        return self._record(line, raw, problems)


def open_records(
    path: str | os.PathLike[str] | BinaryIO,
    *,
    format: FileFormat | None = None,
    delimiter: str | None = None,
    encoding: str = "utf-8-sig",
) -> RecordReader:
    """Open an input file of records to create, for streaming.

    The file is opened and, for CSV, its header read and checked before this
    returns; records are read only as the reader is iterated.

    CSV: a header row of field names (``BusinessId``, ``Name``, ``NewFileDataUrl``,
    ``ClearFileDataFile``, ``Imported``) in any case, or in snake_case. A byte-order
    mark, CRLF line ends, and quoted fields holding delimiters and line breaks are
    all accepted. Blank lines and rows of empty cells are skipped. A row shorter
    than the header has empty values for the missing cells; a row with values
    beyond the header is a problem of that record.

    JSONL: one JSON object per line, keys spelled as for CSV headers; blank lines
    are skipped. An unknown or repeated key is a problem of that record.

    Args:
        path: A file path, ``"-"`` for standard input, or an open binary stream
            (left open).
        format: ``"csv"`` or ``"jsonl"``. By default it follows from the file's
            extension (``.csv``, ``.tsv``, ``.txt``; ``.jsonl``, ``.ndjson``); for
            standard input or a stream, a first line starting with ``{`` means JSONL.
        delimiter: The CSV delimiter. By default it is found from the header line
            among comma, semicolon and tab.
        encoding: The text encoding. It must keep the newline a single ``\\n``
            byte (UTF-16 is refused); the default accepts UTF-8 with or without a
            byte-order mark.

    Returns:
        A `RecordReader`: an iterator of `SourceRecord` and a context manager.

    Raises:
        InputFileError: The file cannot be read as records: an unknown, repeated or
            missing required header; an undecodable byte; a line that is not a
            JSON object; an empty file. Raised here for the header, and during
            iteration for what comes later, with the line.
        OSError: The file cannot be opened.
        ValueError: An unknown format, or an unsupported encoding or delimiter.
    """
    if format not in (None, "csv", "jsonl"):
        raise ValueError(f"format must be 'csv' or 'jsonl', not {format!r}")
    if delimiter is not None and (len(delimiter) != 1 or delimiter in '\r\n"'):
        raise ValueError(f"delimiter must be one character, not {delimiter!r}")
    _check_encoding(encoding)

    stream: BinaryIO
    label: str | None
    if isinstance(path, (str, os.PathLike)):
        label = target = os.fspath(path)
        if target == "-":
            stream, owned = sys.stdin.buffer, False
        else:
            stream, owned = open(target, "rb"), True  # noqa: SIM115 - the reader owns it
    else:
        name = getattr(path, "name", None)
        label = name if isinstance(name, str) else None
        stream, owned = path, False

    return RecordReader(
        stream,
        owned=owned,
        path=label,
        format=format,
        delimiter=delimiter,
        encoding=encoding,
    )


# --- results ----------------------------------------------------------------------


@attrs.frozen
class ResultRow:
    """What happened to one input record, as written to the results file.

    Attributes:
        line: The record's source line, or None when it came from no file.
        index: The record's 0-based position in the input.
        outcome: One of ``created``, ``rejected``, ``failed``, ``unknown``,
            ``skipped``, ``not_attempted``.
        id: The created (or found) record's id.
        errors: Field errors, each ``{"PropertyName", "Message", "AttemptedValue"}``.
        message: A sentence on what happened, for outcomes other than created.
    """

    line: int | None
    index: int
    outcome: str
    id: int | None = None
    errors: tuple[Mapping[str, Any], ...] = ()
    message: str | None = None


def problem_errors(problems: Iterable[FieldProblem]) -> tuple[dict[str, Any], ...]:
    """Turn local validation problems into results-file field errors."""
    return tuple(
        {"PropertyName": p.field, "Message": p.message, "AttemptedValue": p.value}
        for p in problems
    )


class ResultsWriter(ClosesOnExit):
    """Writes result rows to a JSONL or CSV file as they come.

    Each row goes to the operating system in one write as soon as it is given, so a
    crash can lose at most the row being written, never leave half of an earlier
    one. Made by `open_results`.

    Attributes:
        format: ``"jsonl"`` or ``"csv"``.
    """

    def __init__(
        self, stream: BinaryIO, format: FileFormat, *, owned: bool, header: bool
    ) -> None:
        self.format = format
        self._stream = stream
        self._owned = owned
        self._closed = False
        self._failed = False
        self._text = io.StringIO()
        self._csv = csv.writer(self._text)
        if header and format == "csv":
            self._write_csv(list(RESULT_COLUMNS))

    def write(self, row: ResultRow) -> None:
        """Write one row.

        Raises:
            ValueError: The writer is closed.
            TypeError: An attempted value that JSON cannot represent.
        """
        if self._closed:
            raise ValueError("the results writer is closed")
        errors = [dict(error) for error in row.errors]
        if self.format == "jsonl":
            data = dumps_escaping(
                {
                    "line": row.line,
                    "outcome": row.outcome,
                    "id": row.id,
                    "errors": errors,
                    "message": row.message,
                }
            )
            self._write(data + b"\n")
        else:
            self._write_csv(
                [
                    "" if row.line is None else str(row.line),
                    row.outcome,
                    "" if row.id is None else str(row.id),
                    dumps_escaping(errors).decode(),
                    row.message or "",
                ]
            )

    def flush(self) -> None:
        """Push what was written to the operating system (rows are written at once)."""
        if not self._closed:
            self._stream.flush()

    def close(self) -> None:
        """Flush and close the file; standard output is flushed but left open.

        After a write that failed, and was raised to the writer's user then, the
        same failure met again while closing is not raised a second time.
        """
        if self._closed:
            return
        try:
            self.flush()
        except OSError:
            if not self._failed:
                raise
        finally:
            self._closed = True
            if self._owned:
                self._stream.close()

    def _write_csv(self, cells: list[str]) -> None:
        self._csv.writerow(cells)
        text = self._text.getvalue()
        self._text.seek(0)
        self._text.truncate()
        self._write(text.encode("utf-8"))

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                # The file is unbuffered: a raw write may take only part of it.
                written = self._stream.write(view)
                view = view[written or 0 :]
            if not self._owned:
                # Standard output is buffered; a watcher should see each row as
                # it ends.
                self._stream.flush()
        except OSError:
            self._failed = True
            raise


def open_results(
    path: str | os.PathLike[str],
    format: FileFormat | None = None,
    *,
    append: bool = False,
) -> ResultsWriter:
    """Open a results file: one row per input record, written as records finish.

    JSONL rows are objects with ``line``, ``outcome``, ``id``, ``errors`` and
    ``message``; ids are written exactly however large. CSV has the same columns,
    with ``errors`` as a JSON array in one cell (``[]`` when there are none).

    Args:
        path: The file to write, or ``"-"`` for standard output.
        format: ``"jsonl"`` or ``"csv"``; by default from the extension
            (``.jsonl``, ``.ndjson``, ``.csv``), and JSONL for standard output.
        append: Add to an existing file (a resumed run) instead of replacing it.
            The CSV header is written only when the file is new or empty.

    Returns:
        The open writer; close it, or use it as a context manager.

    Raises:
        ValueError: The format is unknown or cannot be told from the extension.
        OSError: The file cannot be opened.
    """
    target = os.fspath(path)
    if format is None:
        if target == "-":
            format = "jsonl"
        else:
            suffix = PurePath(target).suffix.lower()
            found = _RESULT_EXTENSIONS.get(suffix)
            if found is None:
                raise ValueError(
                    f"cannot tell the results format from {target!r}: name it .jsonl"
                    " or .csv, or give the format"
                )
            format = found
    elif format not in ("csv", "jsonl"):
        raise ValueError(f"format must be 'csv' or 'jsonl', not {format!r}")

    if target == "-":
        # Python leaves sys.stdout None when descriptor 1 was closed at start;
        # code that swapped it for a text buffer has no bytes to give either.
        stdout = getattr(sys.stdout, "buffer", None)
        if stdout is None:
            raise OSError(errno.EBADF, "standard output is closed or takes no bytes")
        return ResultsWriter(stdout, format, owned=False, header=True)

    # Unbuffered: every row reaches the operating system whole, in one write.
    stream = open(target, "a+b" if append else "wb", buffering=0)  # noqa: SIM115
    try:
        size = stream.seek(0, os.SEEK_END)
        if size and append:
            stream.seek(size - 1)
            if stream.read(1) != b"\n":
                # An earlier run stopped mid-row; start the new rows on a line of
                # their own rather than glue the first one to the fragment.
                stream.write(b"\n")
        writer = ResultsWriter(stream, format, owned=True, header=size == 0)
    except BaseException:
        stream.close()
        raise

    return writer
