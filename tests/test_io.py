"""Tests for the input readers and the results writers."""

from __future__ import annotations

import codecs
import csv
import io
import os
import sqlite3
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from nexudus_async import _io
from nexudus_async._errors import FieldProblem, InputFileError
from nexudus_async._io import (
    ROW,
    RecordKeys,
    ResultRow,
    SourceRecord,
    open_records,
    open_results,
    problem_errors,
)
from nexudus_async._json import loads
from nexudus_async._models import ImportFileCreate

BIG_ID = 2**70


def _file(tmp_path: Path, data: bytes | str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _read(path: Path | BinaryIO | str, **options: Any) -> list[SourceRecord]:
    with open_records(path, **options) as records:
        return list(records)


def _header_error(tmp_path: Path, header: str) -> InputFileError:
    path = _file(tmp_path, header + "\r\n12,Spring leads\r\n")
    with pytest.raises(InputFileError) as caught:
        open_records(path)
    return caught.value


class _CountingStream(io.RawIOBase):
    """A binary stream that serves bytes from memory and counts what was taken."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.taken = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        self.taken += len(chunk)
        return len(chunk)


class TestCsvDialects:
    def test_plain_comma_file(self, tmp_path: Path) -> None:
        """A comma-separated file gives one valid record per row, with its line."""
        path = _file(tmp_path, "BusinessId,Name\n12,Spring leads\n13,Autumn leads\n")
        records = _read(path)
        assert [r.payload for r in records] == [
            ImportFileCreate(business_id=12, name="Spring leads"),
            ImportFileCreate(business_id=13, name="Autumn leads"),
        ]
        assert [(r.index, r.line) for r in records] == [(0, 2), (1, 3)]
        assert records[0].raw == {"BusinessId": "12", "Name": "Spring leads"}

    def test_byte_order_mark_is_dropped(self, tmp_path: Path) -> None:
        """A UTF-8 byte-order mark does not become part of the first header."""
        path = _file(tmp_path, codecs.BOM_UTF8 + "BusinessId,Name\n12,Café\n".encode())
        with open_records(path) as records:
            assert records.headers == ("BusinessId", "Name")
            assert next(records).payload == ImportFileCreate(12, "Café")

    def test_semicolon_is_sniffed(self, tmp_path: Path) -> None:
        """A semicolon-separated export is read without being told the delimiter."""
        path = _file(tmp_path, "BusinessId;Name;Imported\n12;Leads, spring;yes\n")
        with open_records(path) as records:
            assert records.delimiter == ";"
            assert next(records).payload == ImportFileCreate(
                12, "Leads, spring", imported=True
            )

    def test_tab_is_sniffed(self, tmp_path: Path) -> None:
        """A tab-separated file is read without being told the delimiter."""
        path = _file(tmp_path, "BusinessId\tName\n12\tLeads; spring\n", "in.tsv")
        with open_records(path) as records:
            assert records.delimiter == "\t"
            assert next(records).payload == ImportFileCreate(12, "Leads; spring")

    def test_explicit_delimiter_overrides_sniffing(self, tmp_path: Path) -> None:
        """A given delimiter is used even where the header suggests another."""
        path = _file(tmp_path, "BusinessId|Name\n12|Leads,a\n")
        assert _read(path, delimiter="|")[0].payload == ImportFileCreate(12, "Leads,a")

    def test_quoted_delimiters_and_line_breaks(self, tmp_path: Path) -> None:
        """Quoted cells keep delimiters and line breaks; later lines stay numbered."""
        path = _file(
            tmp_path,
            'BusinessId,Name\r\n12,"Leads, part\r\none\r\nand two"\r\n13,"Say ""hi"""\r\n',
        )
        records = _read(path)
        assert records[0].raw["Name"] == "Leads, part\r\none\r\nand two"
        assert records[1].raw["Name"] == 'Say "hi"'
        assert [r.line for r in records] == [2, 5]

    def test_crlf_line_ends(self, tmp_path: Path) -> None:
        """CRLF line ends leave no carriage return in any value."""
        path = _file(tmp_path, "BusinessId,Name,Imported\r\n12,Leads,no\r\n")
        record = _read(path)[0]
        assert record.raw == {"BusinessId": "12", "Name": "Leads", "Imported": "no"}
        assert record.payload == ImportFileCreate(12, "Leads", imported=False)

    def test_blank_lines_are_skipped_but_counted(self, tmp_path: Path) -> None:
        """Blank lines and rows of empty cells are no records; line numbers stay true."""
        path = _file(tmp_path, "\nBusinessId,Name\n\n12,A\n,\n  \n13,B\n\n", "in.csv")
        records = _read(path)
        assert [(r.index, r.line, r.raw["Name"]) for r in records] == [
            (0, 4, "A"),
            (1, 7, "B"),
        ]

    def test_header_spellings(self, tmp_path: Path) -> None:
        """Headers match in any case and in snake_case, surrounding spaces ignored."""
        path = _file(
            tmp_path,
            "business_id, NAME ,new_file_data_url,clearfiledatafile,IMPORTED\n"
            "12,Leads,https://files.example.com/a.csv,true,0\n",
        )
        assert _read(path)[0].payload == ImportFileCreate(
            12,
            "Leads",
            new_file_data_url="https://files.example.com/a.csv",
            clear_file_data_file=True,
            imported=False,
        )

    def test_short_row_has_empty_values(self, tmp_path: Path) -> None:
        """Cells missing from the end of a row count as empty, not as an error."""
        path = _file(tmp_path, "BusinessId,Name,Imported\n12,Leads\n")
        record = _read(path)[0]
        assert record.raw["Imported"] == ""
        assert record.payload == ImportFileCreate(12, "Leads")

    def test_other_single_byte_encoding(self, tmp_path: Path) -> None:
        """A file in a given legacy encoding is decoded by it."""
        path = _file(tmp_path, "BusinessId,Name\n12,Café\n".encode("cp1252"))
        assert _read(path, encoding="cp1252")[0].raw["Name"] == "Café"


class TestCsvHeaderErrors:
    def test_unknown_header(self, tmp_path: Path) -> None:
        """An unknown column is an error on line 1 that lists the headers seen."""
        error = _header_error(tmp_path, "BusinessId,Name,Colour")
        assert error.line == 1
        assert "unknown column 'Colour'" in str(error)
        assert "'BusinessId', 'Name', 'Colour'" in str(error)

    def test_repeated_header(self, tmp_path: Path) -> None:
        """A column given twice is an error."""
        error = _header_error(tmp_path, "BusinessId,Name,Name")
        assert "repeated column 'Name' and 'Name'" in str(error)

    def test_header_repeated_in_another_case(self, tmp_path: Path) -> None:
        """Two spellings of one field, by case or snake_case, are a repeat."""
        error = _header_error(tmp_path, "BusinessId,Name,name,business_id")
        assert "'Name' and 'name'" in str(error)
        assert "'BusinessId' and 'business_id'" in str(error)

    def test_missing_required_header(self, tmp_path: Path) -> None:
        """A missing required column is an error naming it and the headers seen."""
        error = _header_error(tmp_path, "Name,Imported")
        assert "missing required column BusinessId" in str(error)
        assert "Headers seen (split on ','): 'Name', 'Imported'" in str(error)

    def test_every_header_fault_is_listed(self, tmp_path: Path) -> None:
        """Unknown, repeated and missing columns are reported together."""
        error = _header_error(tmp_path, "Title,Imported,imported")
        text = str(error)
        assert "unknown column 'Title'" in text
        assert "repeated column 'Imported' and 'imported'" in text
        assert "missing required columns BusinessId, Name" in text

    def test_header_error_comes_before_any_record(self, tmp_path: Path) -> None:
        """A bad header raises when the file is opened, before any record is read."""
        path = _file(tmp_path, "BusinessId,Nom\n12,Leads\n")
        with pytest.raises(InputFileError, match="line 1"):
            open_records(path)

    def test_wrong_delimiter_is_named(self, tmp_path: Path) -> None:
        """When a forced delimiter splits nothing, the error shows what was read."""
        path = _file(tmp_path, "BusinessId;Name\n12;Leads\n")
        with pytest.raises(InputFileError, match=r"split on ','.*'BusinessId;Name'"):
            open_records(path, delimiter=",")

    def test_empty_file(self, tmp_path: Path) -> None:
        """A file with no bytes at all is an error."""
        with pytest.raises(InputFileError, match="empty"):
            open_records(_file(tmp_path, b""))

    def test_file_of_blank_lines_and_mark_only(self, tmp_path: Path) -> None:
        """A file holding only a byte-order mark and blank lines is empty."""
        with pytest.raises(InputFileError, match="empty"):
            open_records(_file(tmp_path, codecs.BOM_UTF8 + b"\r\n  \r\n"))

    def test_header_only_file_has_no_records(self, tmp_path: Path) -> None:
        """A valid header with no rows is a file of zero records, not an error."""
        assert _read(_file(tmp_path, "BusinessId,Name\r\n")) == []

    def test_unnamed_empty_column_is_ignored(self, tmp_path: Path) -> None:
        """A column without a header is fine while its cells are empty."""
        path = _file(tmp_path, "BusinessId,Name,\n12,Leads,\n")
        record = _read(path)[0]
        assert record.problems == ()
        assert record.raw == {"BusinessId": "12", "Name": "Leads"}

    def test_value_in_unnamed_column_is_a_problem(self, tmp_path: Path) -> None:
        """A value under a column without a header is a problem of that record."""
        path = _file(tmp_path, "BusinessId,Name,\n12,Leads,\n13,Other,oops\n")
        records = _read(path)
        assert records[0].problems == ()
        assert records[1].payload is None
        assert records[1].problems == (
            FieldProblem(ROW, "column 3 has a value but no known header", "oops"),
        )


class TestCsvRecordProblems:
    def test_extra_fields_are_a_record_problem(self, tmp_path: Path) -> None:
        """Values beyond the header make the record rejected, with the values kept."""
        path = _file(tmp_path, "BusinessId,Name\n12,Leads\n13,More,x,y\n14,Last\n")
        records = _read(path)
        assert [r.payload is None for r in records] == [False, True, False]
        bad = records[1]
        assert bad.line == 3
        assert bad.problems == (
            FieldProblem(ROW, "the row has 4 fields but the header has 2", ["x", "y"]),
        )

    def test_trailing_empty_cells_are_not_extra(self, tmp_path: Path) -> None:
        """Empty cells beyond the header carry nothing and are not a problem."""
        path = _file(tmp_path, "BusinessId,Name\n12,Leads,,\n")
        assert _read(path)[0].payload == ImportFileCreate(12, "Leads")

    def test_invalid_values_do_not_raise(self, tmp_path: Path) -> None:
        """A record with bad values is yielded with every problem and its line."""
        path = _file(
            tmp_path,
            "BusinessId,Name,Imported\n12,Fine,yes\nabc,,maybe\n13,Also fine,no\n",
        )
        records = _read(path)
        assert len(records) == 3
        bad = records[1]
        assert (bad.index, bad.line, bad.payload) == (1, 3, None)
        assert [p.field for p in bad.problems] == ["BusinessId", "Name", "Imported"]
        assert bad.problems[0].value == "abc"

    def test_unclosed_quote(self, tmp_path: Path) -> None:
        """A quote never closed is an error at the line where its record starts."""
        path = _file(tmp_path, 'BusinessId,Name\n12,Fine\n13,"Broken\n14,Lost\n')
        with open_records(path) as records:
            assert next(records).line == 2
            with pytest.raises(InputFileError) as caught:
                next(records)
        assert caught.value.line == 3
        assert "found while reading line 4" in str(caught.value)

    def test_text_after_closing_quote(self, tmp_path: Path) -> None:
        """Text after a closing quote is a malformed record, reported with its line."""
        path = _file(tmp_path, 'BusinessId,Name\n12,"Leads"x\n')
        with pytest.raises(InputFileError, match="line 2: malformed CSV"):
            _read(path)


class TestEncoding:
    def test_undecodable_byte(self, tmp_path: Path) -> None:
        """A byte that is not UTF-8 is an error naming its line and position."""
        path = _file(tmp_path, b"BusinessId,Name\n12,Fine\n13,Caf\xe9\n")
        with open_records(path) as records:
            assert next(records).raw["Name"] == "Fine"
            with pytest.raises(InputFileError) as caught:
                next(records)
        assert caught.value.line == 3
        assert "byte 7 of the line (b'\\xe9')" in str(caught.value)

    def test_undecodable_header(self, tmp_path: Path) -> None:
        """A bad byte in the header is reported on line 1 when the file is opened."""
        path = _file(tmp_path, b"Business\xffId,Name\n12,A\n")
        with pytest.raises(InputFileError, match="line 1: byte 9"):
            open_records(path)

    def test_utf16_file_is_refused_clearly(self, tmp_path: Path) -> None:
        """A UTF-16 export gets an error that says to save it as UTF-8."""
        path = _file(tmp_path, "BusinessId\tName\r\n12\tA\r\n".encode("utf-16"))
        with pytest.raises(InputFileError, match="save it as UTF-8"):
            open_records(path)

    def test_utf16_encoding_argument_is_refused(self, tmp_path: Path) -> None:
        """An encoding whose newline is not one byte is refused before reading."""
        with pytest.raises(ValueError, match="not supported"):
            open_records(_file(tmp_path, "x"), encoding="utf-16")

    def test_unknown_encoding_argument(self, tmp_path: Path) -> None:
        """An unknown encoding name is a ValueError."""
        with pytest.raises(ValueError, match="unknown encoding"):
            open_records(_file(tmp_path, "x"), encoding="no-such-codec")

    def test_overlong_line(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A line beyond the length bound is an error, not a reason to read on."""
        monkeypatch.setattr(_io, "MAX_LINE_BYTES", 64)
        path = _file(tmp_path, "BusinessId,Name\n12," + "x" * 100 + "\n")
        with pytest.raises(InputFileError, match="line 2: line is longer than 64"):
            _read(path)


class TestJsonl:
    def test_objects_with_any_key_spelling(self, tmp_path: Path) -> None:
        """Each object is a record; keys match in PascalCase, snake_case or any case."""
        path = _file(
            tmp_path,
            '{"BusinessId": 12, "Name": "A"}\n'
            "\n"
            '{"business_id": 13, "name": "B", "imported": true}\n'
            '{"BUSINESSID": "14", "NAME": "C", "ClearFileDataFile": "no"}\n',
            "in.jsonl",
        )
        records = _read(path)
        assert [r.payload for r in records] == [
            ImportFileCreate(12, "A"),
            ImportFileCreate(13, "B", imported=True),
            ImportFileCreate(14, "C", clear_file_data_file=False),
        ]
        assert [(r.index, r.line) for r in records] == [(0, 1), (1, 3), (2, 4)]
        assert records[1].raw == {"BusinessId": 13, "Name": "B", "Imported": True}

    def test_mark_and_crlf(self, tmp_path: Path) -> None:
        """A byte-order mark and CRLF line ends are accepted."""
        data = codecs.BOM_UTF8 + b'{"BusinessId": 12, "Name": "A"}\r\n'
        path = _file(tmp_path, data, "in.ndjson")
        assert _read(path)[0].payload == ImportFileCreate(12, "A")

    def test_malformed_line(self, tmp_path: Path) -> None:
        """A line that is not JSON is an error with its line number, after the rest."""
        path = _file(
            tmp_path,
            '{"BusinessId": 12, "Name": "A"}\n\n{"BusinessId": 13, "Name": \n',
            "in.jsonl",
        )
        with open_records(path) as records:
            assert next(records).line == 1
            with pytest.raises(InputFileError) as caught:
                next(records)
        assert caught.value.line == 3
        assert "not valid JSON" in str(caught.value)

    @pytest.mark.parametrize(
        ("line", "kind"),
        [
            ("[1, 2]", "an array"),
            ('"text"', "a string"),
            ("7", "a number"),
            ("null", "null"),
        ],
    )
    def test_line_that_is_not_an_object(
        self, tmp_path: Path, line: str, kind: str
    ) -> None:
        """A JSON value other than an object is an error naming what was found."""
        path = _file(tmp_path, '{"BusinessId": 12, "Name": "A"}\n' + line, "in.jsonl")
        with pytest.raises(
            InputFileError, match=f"line 2: expected a JSON object, found {kind}"
        ):
            _read(path)

    def test_unknown_key_is_a_record_problem(self, tmp_path: Path) -> None:
        """An unknown key rejects that record only, and its value is kept."""
        path = _file(
            tmp_path,
            '{"BusinessId": 12, "Name": "A", "Colour": "red"}\n'
            '{"BusinessId": 13, "Name": "B"}\n',
            "in.jsonl",
        )
        records = _read(path)
        assert records[0].payload is None
        assert records[0].problems == (FieldProblem("Colour", "unknown field", "red"),)
        assert records[0].raw["Colour"] == "red"
        assert records[1].payload is not None

    def test_key_repeated_in_another_spelling(self, tmp_path: Path) -> None:
        """Two spellings of one field in an object are a problem of that record."""
        path = _file(
            tmp_path, '{"BusinessId": 12, "Name": "A", "name": "B"}\n', "in.jsonl"
        )
        record = _read(path)[0]
        assert record.payload is None
        assert record.problems == (
            FieldProblem("Name", "given twice, as 'Name' and 'name'", ["A", "B"]),
        )

    def test_the_very_same_key_twice_keeps_both_values_in_the_problem(
        self, tmp_path: Path
    ) -> None:
        """A key given twice rejects that record and names both values, not the last."""
        path = _file(
            tmp_path,
            '{"BusinessId": 12, "Name": "Spring", "Name": "Autumn"}\n'
            '{"BusinessId": 13, "Name": "B"}\n',
            "in.jsonl",
        )
        first, second = _read(path)
        assert first.payload is None
        assert first.line == 1
        assert first.problems == (
            FieldProblem("Name", "given twice, as 'Name'", ["Spring", "Autumn"]),
        )
        assert second.payload is not None

    def test_a_repeated_snake_case_key_names_the_field(self, tmp_path: Path) -> None:
        """The problem names the field, whichever spelling was repeated."""
        path = _file(
            tmp_path,
            '{"business_id": 1, "business_id": 2, "business_id": 3, "name": "A"}\n',
            "in.jsonl",
        )
        (record,) = _read(path)
        assert record.payload is None
        assert record.problems == (
            FieldProblem("BusinessId", "given 3 times, as 'business_id'", [1, 2, 3]),
        )

    @pytest.mark.parametrize(
        "line",
        [
            '{"BusinessId": 1, "Name": "say \\"hi\\""}',
            '{"BusinessId": 1, "Name": "A", "Notes": {"k": 1, "k": 2}}',
        ],
        ids=["escaped-quotes", "repeat-inside-a-nested-object"],
    )
    def test_no_repeat_at_the_top_is_no_repeat_problem(
        self, tmp_path: Path, line: str
    ) -> None:
        """Escaped quotes or a nested object's repeat are not taken for a repeated field."""
        (record,) = _read(_file(tmp_path, line + "\n", "in.jsonl"))
        assert all("times" not in p.message for p in record.problems)

    def test_typed_values_are_checked(self, tmp_path: Path) -> None:
        """JSON values of the wrong type are reported, not guessed."""
        path = _file(tmp_path, '{"BusinessId": 1.5, "Name": ["A"]}\n', "in.jsonl")
        record = _read(path)[0]
        assert [p.field for p in record.problems] == ["BusinessId", "Name"]

    def test_lone_surrogate_escape_is_a_record_problem(self, tmp_path: Path) -> None:
        """A lone surrogate escape in Name rejects that record, not the whole file."""
        path = _file(
            tmp_path,
            '{"BusinessId": 1, "Name": "bad\\ud800"}\n{"BusinessId": 2, "Name": "B"}\n',
            "in.jsonl",
        )
        first, second = _read(path)
        assert first.payload is None
        assert [(p.field, p.value) for p in first.problems] == [("Name", "bad\ud800")]
        assert "lone surrogate" in first.problems[0].message
        assert first.key == _read(path)[0].key
        assert second.payload == ImportFileCreate(2, "B")

    def test_empty_jsonl(self, tmp_path: Path) -> None:
        """A JSONL file with nothing but blank lines is an error."""
        with pytest.raises(InputFileError, match="empty"):
            open_records(_file(tmp_path, "\n\n", "in.jsonl"))

    def test_undecodable_byte(self, tmp_path: Path) -> None:
        """A bad byte in a JSONL file is an error with its line."""
        path = _file(
            tmp_path, b'{"BusinessId": 1, "Name": "A"}\n{"Name": "\xc3("}\n', "in.jsonl"
        )
        with pytest.raises(InputFileError, match="line 2: byte 11"):
            _read(path)


class TestFormat:
    def test_unknown_extension(self, tmp_path: Path) -> None:
        """A file whose extension says nothing needs the format given."""
        path = _file(tmp_path, '{"BusinessId": 1, "Name": "A"}\n', "in.json")
        with pytest.raises(InputFileError, match=r"give the format \(--format"):
            open_records(path)
        assert _read(path, format="jsonl")[0].payload == ImportFileCreate(1, "A")

    def test_format_overrides_extension(self, tmp_path: Path) -> None:
        """A given format wins over the extension."""
        path = _file(tmp_path, "BusinessId,Name\n1,A\n", "in.jsonl")
        assert _read(path, format="csv")[0].payload == ImportFileCreate(1, "A")

    def test_bad_arguments(self, tmp_path: Path) -> None:
        """An unknown format or an unusable delimiter is a ValueError."""
        path = _file(tmp_path, "BusinessId,Name\n")
        with pytest.raises(ValueError, match="format"):
            open_records(path, format="xml")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="delimiter"):
            open_records(path, delimiter=";;")
        with pytest.raises(ValueError, match="delimiter"):
            open_records(path, delimiter='"')

    def test_missing_file(self, tmp_path: Path) -> None:
        """A path that does not exist raises the operating system's error."""
        with pytest.raises(FileNotFoundError):
            open_records(tmp_path / "nope.csv")

    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            (b'\n{"BusinessId": 1, "Name": "A"}\n', "jsonl"),
            (b"BusinessId,Name\n1,A\n", "csv"),
        ],
    )
    def test_stdin_format_is_sniffed(
        self, monkeypatch: pytest.MonkeyPatch, data: bytes, expected: str
    ) -> None:
        """Standard input is read as JSONL when it starts with an object, else CSV."""
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        with open_records("-") as records:
            assert records.format == expected
            record = next(records)
        assert record.payload == ImportFileCreate(1, "A")
        assert record.line == 2
        assert not sys.stdin.closed

    def test_empty_stdin(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Empty standard input is an error that names it."""
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
        with pytest.raises(InputFileError, match="<stdin>: the input is empty"):
            open_records("-")

    def test_stream_is_left_open(self) -> None:
        """A stream given by the caller is read but not closed."""
        stream = io.BytesIO(b"BusinessId,Name\n1,A\n")
        assert len(_read(stream, format="csv")) == 1
        assert not stream.closed

    def test_file_is_closed_after_reading(self, tmp_path: Path) -> None:
        """The reader closes the file it opened, when exhausted or closed early."""
        path = _file(tmp_path, "BusinessId,Name\n1,A\n2,B\n")
        records = open_records(path)
        list(records)
        assert records._stream.closed
        records = open_records(path)
        next(records)
        records.close()
        assert records._stream.closed
        with pytest.raises(StopIteration):
            next(records)


class TestKeys:
    def test_identical_rows_are_two_records(self, tmp_path: Path) -> None:
        """Identical rows share the content hash but differ by occurrence number."""
        path = _file(tmp_path, "BusinessId,Name\n1,A\n1,A\n2,B\n")
        keys = [r.key for r in _read(path)]
        assert len(set(keys)) == 3
        assert keys[0].split("-")[0] == keys[1].split("-")[0]
        assert [k.split("-")[1] for k in keys] == ["1", "2", "1"]
        assert len(keys[0].split("-")[0]) == 64

    def test_keys_are_stable_across_reads_and_order(self, tmp_path: Path) -> None:
        """Reading again, even with rows reordered, gives each record the same key."""
        first = _file(tmp_path, "BusinessId,Name\n1,A\n2,B\n", "a.csv")
        second = _file(tmp_path, "Name;business_id\nB;2\nA;1\n", "b.csv")
        assert [r.key for r in _read(first)] == [r.key for r in _read(first)]
        assert {r.key for r in _read(first)} == {r.key for r in _read(second)}

    def test_empty_column_does_not_change_keys(self, tmp_path: Path) -> None:
        """Adding a column left empty does not change which record is which."""
        narrow = _file(tmp_path, "BusinessId,Name\n1,A\n", "a.csv")
        wide = _file(tmp_path, "BusinessId,Name,Imported\n1,A,\n", "b.csv")
        assert _read(narrow)[0].key == _read(wide)[0].key

    def test_different_content_different_key(self, tmp_path: Path) -> None:
        """Records that differ in any value have different content hashes."""
        path = _file(tmp_path, "BusinessId,Name,Imported\n1,A,yes\n1,A,no\n")
        first, second = _read(path)
        assert first.key.split("-")[0] != second.key.split("-")[0]


class TestRecordKeys:
    def test_repeated_content_is_numbered(self) -> None:
        """Identical records share a digest and count up; other content starts at 1."""
        with RecordKeys() as keys:
            first = keys.key_for({"BusinessId": 1, "Name": "A"})
            second = keys.key_for({"Name": "A", "BusinessId": 1, "Imported": ""})
            other = keys.key_for({"BusinessId": 2, "Name": "A"})

        digest, count = first.split("-")
        assert count == "1"
        assert second == f"{digest}-2"
        assert other.endswith("-1")
        assert not other.startswith(digest)

    def test_the_database_opens_with_the_first_key(self) -> None:
        """Made and closed without a key, the keys never open a database."""
        keys = RecordKeys()
        assert keys._db is None
        keys.key_for({"Name": "A"})
        assert keys._db is not None

        keys.close()
        assert keys._db is None
        keys.close()

    def test_closed_keys_refuse_to_count(self) -> None:
        """After close, asking for a key is an error, not a silent fresh count."""
        with RecordKeys() as keys:
            keys.key_for({"Name": "A"})

        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            keys.key_for({"Name": "A"})

    def test_content_without_a_json_form_is_a_type_error(self) -> None:
        """A value JSON cannot carry raises TypeError, before any count changes."""
        with RecordKeys() as keys, pytest.raises(TypeError):
            keys.key_for({"Name": object()})

    def test_the_reader_closes_its_keys(self, tmp_path: Path) -> None:
        """A reader closes its keys with the file, read to the end or not."""
        path = _file(tmp_path, "BusinessId,Name\n1,A\n2,B\n")
        with open_records(path) as records:
            next(records)
            keys = records._keys
            assert keys._db is not None

        assert keys._db is None


class TestStreaming:
    def test_first_record_before_the_pipe_is_closed(self) -> None:
        """A record is yielded as soon as its line arrives through a pipe."""
        read_end, write_end = os.pipe()
        release = threading.Event()

        def produce() -> None:
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(b"BusinessId,Name\n1,A\n")
                pipe.flush()
                release.wait(10)
                pipe.write(b"2,B\n")

        producer = threading.Thread(target=produce)
        producer.start()
        try:
            with (
                os.fdopen(read_end, "rb") as stream,
                open_records(stream, format="csv") as records,
            ):
                assert next(records).raw["Name"] == "A"
                release.set()
                assert [r.raw["Name"] for r in records] == ["B"]
        finally:
            release.set()
            producer.join(10)

    def test_reads_only_what_it_needs(self) -> None:
        """The first record comes after reading a small part of a large file."""
        data = b"BusinessId,Name\n" + b"".join(
            b"%d,Name %d\n" % (i + 1, i) for i in range(50_000)
        )
        stream = _CountingStream(data)
        with open_records(io.BufferedReader(stream), format="csv") as records:
            next(records)
            assert stream.taken < 64 * 1024 < len(data)

    @pytest.mark.slow
    def test_memory_stays_flat_over_200k_records(self) -> None:
        """Reading 200,000 records holds no more Python memory at the end than early."""

        def lines() -> Iterator[bytes]:
            yield b"BusinessId,Name\n"
            for i in range(200_000):
                yield b"%d,Import file %d\n" % (i % 9 + 1, i)

        class Source(io.RawIOBase):
            def __init__(self) -> None:
                self._lines = lines()
                self._rest = b""

            def readable(self) -> bool:
                return True

            def readinto(self, buffer: Any) -> int:
                while not self._rest:
                    self._rest = next(self._lines, b"")
                    if not self._rest:
                        return 0
                size = min(len(buffer), len(self._rest))
                buffer[:size] = self._rest[:size]
                self._rest = self._rest[size:]
                return size

        with open_records(io.BufferedReader(Source()), format="csv") as records:
            for count, record in enumerate(records, 1):
                assert record.problems == ()
                if count == 10_000:
                    early = sys.getallocatedblocks()
                elif count == 200_000:
                    # Measured while the reader still holds all its state.
                    late = sys.getallocatedblocks()
        assert count == 200_000
        # Keeping one object per record would add 190,000 blocks; allow for noise.
        assert late - early < 20_000


class TestResultsJsonl:
    def test_rows_with_exact_big_id(self, tmp_path: Path) -> None:
        """JSONL rows carry the five fields, and an id beyond 64 bits stays exact."""
        path = tmp_path / "out.jsonl"
        errors = (
            {"PropertyName": "Name", "Message": "is required", "AttemptedValue": None},
        )
        with open_results(path) as results:
            results.write(ResultRow(line=2, index=0, outcome="created", id=BIG_ID))
            results.write(
                ResultRow(3, 1, "rejected", errors=errors, message="Name: is required")
            )
        text = path.read_text()
        assert str(BIG_ID) in text
        rows = [loads(line) for line in text.splitlines()]
        assert rows == [
            {
                "line": 2,
                "outcome": "created",
                "id": BIG_ID,
                "errors": [],
                "message": None,
            },
            {
                "line": 3,
                "outcome": "rejected",
                "id": None,
                "errors": list(errors),
                "message": "Name: is required",
            },
        ]

    def test_lone_surrogate_is_written_escaped(self, tmp_path: Path) -> None:
        """An attempted value with a lone surrogate is written as its JSON escape."""
        path = tmp_path / "out.jsonl"
        problems = (FieldProblem("Name", "contains invalid Unicode", "bad\ud800"),)
        with open_results(path) as results:
            results.write(ResultRow(2, 0, "rejected", errors=problem_errors(problems)))
        text = path.read_text(encoding="utf-8")
        assert '"AttemptedValue":"bad\\ud800"' in text
        assert loads(text)["errors"][0]["AttemptedValue"] == "bad\ud800"

    def test_each_row_is_on_disk_at_once(self, tmp_path: Path) -> None:
        """A written row can be read from the file before the writer is closed."""
        path = tmp_path / "out.jsonl"
        with open_results(path) as results:
            results.write(ResultRow(2, 0, "created", id=7))
            assert loads(path.read_bytes())["id"] == 7
            results.write(ResultRow(3, 1, "created", id=8))
            assert len(path.read_bytes().splitlines()) == 2

    def test_append_keeps_earlier_rows(self, tmp_path: Path) -> None:
        """Appending adds rows after the existing ones, past a cut-off last line."""
        path = tmp_path / "out.jsonl"
        path.write_bytes(b'{"line": 2, "outcome": "unknown"}\n{"line": 3, "outc')
        with open_results(path, append=True) as results:
            results.write(ResultRow(3, 1, "created", id=9))
        lines = path.read_bytes().splitlines()
        assert lines[0] == b'{"line": 2, "outcome": "unknown"}'
        assert lines[1] == b'{"line": 3, "outc'
        assert loads(lines[2])["id"] == 9

    def test_without_append_the_file_is_replaced(self, tmp_path: Path) -> None:
        """Opening without append starts the file afresh."""
        path = tmp_path / "out.jsonl"
        path.write_text("old\n")
        with open_results(path) as results:
            results.write(ResultRow(2, 0, "skipped", id=1))
        assert b"old" not in path.read_bytes()

    def test_standard_output(self, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
        """The path '-' writes JSONL rows to standard output and leaves it open."""
        with open_results("-") as results:
            results.write(ResultRow(2, 0, "created", id=BIG_ID))
        out, _ = capfdbinary.readouterr()
        assert loads(out)["id"] == BIG_ID
        assert not sys.stdout.closed

    @pytest.mark.parametrize("stdout", [None, io.StringIO()], ids=["closed", "text"])
    def test_standard_output_without_bytes_is_an_os_error(
        self, monkeypatch: pytest.MonkeyPatch, stdout: object
    ) -> None:
        """No binary standard output to write to: an OSError that says so."""
        monkeypatch.setattr(sys, "stdout", stdout)
        with pytest.raises(OSError, match="standard output is closed"):
            open_results("-")

    def test_closed_writer(self, tmp_path: Path) -> None:
        """Writing after close is an error; closing twice is not."""
        results = open_results(tmp_path / "out.jsonl")
        results.close()
        results.close()
        results.flush()
        with pytest.raises(ValueError, match="closed"):
            results.write(ResultRow(2, 0, "created", id=1))


class TestResultsCsv:
    def test_rows_with_exact_big_id(self, tmp_path: Path) -> None:
        """CSV results have a header, exact ids and errors as a JSON cell, [] if none."""
        path = tmp_path / "out.csv"
        problems = (FieldProblem("BusinessId", "must be a positive integer", "a,b"),)
        with open_results(path) as results:
            results.write(ResultRow(2, 0, "created", id=BIG_ID))
            results.write(
                ResultRow(
                    3,
                    1,
                    "rejected",
                    errors=problem_errors(problems),
                    message='said "no", twice\nreally',
                )
            )
            results.write(ResultRow(None, 2, "not_attempted"))
        with path.open(newline="") as file:
            rows = list(csv.reader(file))
        assert rows[0] == ["line", "outcome", "id", "errors", "message"]
        assert rows[1] == ["2", "created", str(BIG_ID), "[]", ""]
        assert rows[2][:3] == ["3", "rejected", ""]
        assert loads(rows[2][3]) == [
            {
                "PropertyName": "BusinessId",
                "Message": "must be a positive integer",
                "AttemptedValue": "a,b",
            }
        ]
        assert rows[2][4] == 'said "no", twice\nreally'
        assert rows[3] == ["", "not_attempted", "", "[]", ""]

    def test_append_writes_no_second_header(self, tmp_path: Path) -> None:
        """Appending to a CSV results file does not repeat the header."""
        path = tmp_path / "out.csv"
        with open_results(path) as results:
            results.write(ResultRow(2, 0, "unknown"))
        with open_results(path, append=True) as results:
            results.write(ResultRow(2, 0, "created", id=5))
        rows = list(csv.reader(io.StringIO(path.read_text(), newline="")))
        assert [row[1] for row in rows] == ["outcome", "unknown", "created"]

    def test_append_to_new_file_writes_header(self, tmp_path: Path) -> None:
        """Appending to a file that does not exist yet starts it with the header."""
        path = tmp_path / "out.csv"
        with open_results(path, append=True) as results:
            results.write(ResultRow(2, 0, "created", id=5))
        assert path.read_bytes().startswith(b"line,outcome,id,errors,message\r\n")

    def test_format_by_extension_or_argument(self, tmp_path: Path) -> None:
        """The format follows the extension; an unknown one needs it given."""
        with pytest.raises(ValueError, match=r"\.jsonl or \.csv"):
            open_results(tmp_path / "out.txt")
        with open_results(tmp_path / "out.txt", "csv") as results:
            assert results.format == "csv"
        with pytest.raises(ValueError, match="format"):
            open_results(tmp_path / "out.csv", "xml")  # type: ignore[arg-type]
