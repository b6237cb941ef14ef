"""Tests for validation of untrusted input records."""

from __future__ import annotations

from typing import Any

import pytest

from nexudus_async._errors import FieldProblem, RecordValidationError
from nexudus_async._models import ImportFileCreate, ImportFileUpdate
from nexudus_async._validate import validate_create, validate_update


def _record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"BusinessId": 12, "Name": "Spring leads"}
    record.update(changes)
    return record


def _problems(data: Any) -> dict[str, FieldProblem]:
    with pytest.raises(RecordValidationError) as caught:
        validate_create(data)
    return {problem.field: problem for problem in caught.value.problems}


class TestValidRecords:
    def test_typed_record(self) -> None:
        """A JSON-typed record becomes the matching create payload."""
        payload = validate_create(
            {
                "BusinessId": 12,
                "Name": "Spring leads",
                "NewFileDataUrl": "https://files.example.com/a.csv",
                "ClearFileDataFile": False,
                "Imported": True,
            }
        )
        assert payload == ImportFileCreate(
            business_id=12,
            name="Spring leads",
            new_file_data_url="https://files.example.com/a.csv",
            clear_file_data_file=False,
            imported=True,
        )

    def test_text_record_from_csv(self) -> None:
        """A CSV row of text converts each field by its type."""
        payload = validate_create(
            {
                "BusinessId": " 42 ",
                "Name": "Leads",
                "NewFileDataUrl": "http://example.com/x.csv",
                "ClearFileDataFile": "no",
                "Imported": "YES",
            }
        )
        assert payload == ImportFileCreate(
            42, "Leads", "http://example.com/x.csv", False, True
        )

    def test_only_required_fields(self) -> None:
        """Missing optional fields are left unset."""
        assert validate_create(_record()) == ImportFileCreate(12, "Spring leads")

    @pytest.mark.parametrize("empty", ["", "   ", None])
    def test_empty_optionals_are_unset(self, empty: Any) -> None:
        """An empty or null optional field means unset, not an error."""
        payload = validate_create(
            _record(NewFileDataUrl=empty, ClearFileDataFile=empty, Imported=empty)
        )
        assert payload == ImportFileCreate(12, "Spring leads")

    def test_name_is_kept_as_given(self) -> None:
        """Surrounding whitespace and non-ASCII text in Name are kept unchanged."""
        assert validate_create(_record(Name="  Café ☕ ")).name == "  Café ☕ "

    def test_largest_business_id_is_exact(self) -> None:
        """The largest 64-bit business id stays exact, from int or text."""
        assert validate_create(_record(BusinessId=2**63 - 1)).business_id == 2**63 - 1
        text = str(2**63 - 1)
        assert validate_create(_record(BusinessId=text)).business_id == 2**63 - 1

    def test_many_leading_zeros_are_plain_digits(self) -> None:
        """Any number of leading zeros is read without hitting int()'s digit limit."""
        assert validate_create(_record(BusinessId="0" * 5000 + "7")).business_id == 7

    def test_leading_zeros_are_plain_digits(self) -> None:
        """Digits with leading zeros are still a plain positive integer."""
        assert validate_create(_record(BusinessId="007")).business_id == 7


class TestBusinessId:
    @pytest.mark.parametrize(
        "bad",
        [
            "1e3",
            "1E3",
            "1.2E+04",
            "12.0",
            12.0,
            12.5,
            True,
            False,
            "-3",
            "+3",
            -3,
            "0",
            0,
            "1,000",
            "1 000",
            "١٢",
            "0x1F",
            "12abc",
            [12],
            {"v": 12},
        ],
    )
    def test_bad_values_are_refused(self, bad: Any) -> None:
        """Anything but a positive integer or plain digits is reported on BusinessId."""
        problem = _problems(_record(BusinessId=bad))["BusinessId"]
        assert problem.value == bad
        assert problem.message

    @pytest.mark.parametrize("missing", ["", "  ", None])
    def test_blank_is_required_error(self, missing: Any) -> None:
        """An empty or null BusinessId is reported as required."""
        assert (
            "required" in _problems(_record(BusinessId=missing))["BusinessId"].message
        )

    def test_absent_is_required_error(self) -> None:
        """A record without BusinessId is reported as missing it."""
        assert "required" in _problems({"Name": "n"})["BusinessId"].message

    @pytest.mark.parametrize(
        "bad",
        [2**63, str(2**63), "9" * 20, "9" * 5000, 10**5000],
        ids=["int-2**63", "text-2**63", "20-digits", "5000-digits", "int-5001-digits"],
    )
    def test_beyond_64_bits_is_refused(self, bad: Any) -> None:
        """An id too large for the API's 64-bit integers is a BusinessId problem."""
        problem = _problems(_record(BusinessId=bad))["BusinessId"]
        assert problem.message == "must be at most 9223372036854775807"
        assert problem.value == bad

    def test_float_message_says_why(self) -> None:
        """A float id is explained as a decimal number."""
        assert "decimal" in _problems(_record(BusinessId=12.0))["BusinessId"].message

    def test_bool_message_says_why(self) -> None:
        """A bool id is explained as a boolean."""
        assert "boolean" in _problems(_record(BusinessId=True))["BusinessId"].message


class TestName:
    @pytest.mark.parametrize("blank", ["", "   ", "\t\n", None])
    def test_blank_is_refused(self, blank: Any) -> None:
        """An empty, blank or null Name is reported as required."""
        assert "required" in _problems(_record(Name=blank))["Name"].message

    def test_absent_is_refused(self) -> None:
        """A record without Name is reported as missing it."""
        assert "Name" in _problems({"BusinessId": 1})

    @pytest.mark.parametrize("bad", [5, 1.5, True, ["n"], {"n": 1}])
    def test_non_text_is_refused(self, bad: Any) -> None:
        """A Name that is not text is refused, not converted."""
        assert _problems(_record(Name=bad))["Name"].value == bad

    @pytest.mark.parametrize("bad", ["\ud800", "abc\udfff", "emoji half \ud83d"])
    def test_lone_surrogate_is_refused(self, bad: str) -> None:
        """Text with a lone surrogate (not encodable as UTF-8) is refused."""
        assert "Unicode" in _problems(_record(Name=bad))["Name"].message


class TestNewFileDataUrl:
    @pytest.mark.parametrize(
        "url",
        [
            "http://example.com/a.csv",
            "https://example.com/a.csv?sig=1&x=%20",
            "HTTPS://EXAMPLE.COM/a.csv",
            "https://127.0.0.1:8443/a.csv",
            "https://[::1]/a.csv",
        ],
    )
    def test_http_urls_are_accepted(self, url: str) -> None:
        """Absolute http and https URLs with a host are accepted."""
        assert validate_create(_record(NewFileDataUrl=url)).new_file_data_url == url

    def test_surrounding_whitespace_is_trimmed(self) -> None:
        """Whitespace around a URL, as CSV cells often carry, is removed."""
        payload = validate_create(_record(NewFileDataUrl="  https://example.com/a  "))
        assert payload.new_file_data_url == "https://example.com/a"

    @pytest.mark.parametrize(
        "bad",
        [
            "ftp://example.com/a.csv",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "mailto:a@example.com",
            "/relative/a.csv",
            "example.com/a.csv",
            "http://",
            "https:///path",
            "http://exa mple.com/",
            "http://example.com/\x00",
            "http://[::1/a",
            "http://example.com:99999/",
            "https://example.com/\ud800",
            42,
            True,
        ],
    )
    def test_bad_urls_are_refused(self, bad: Any) -> None:
        """Non-http(s), relative, host-less or malformed URLs are refused."""
        assert _problems(_record(NewFileDataUrl=bad))["NewFileDataUrl"].value == bad


class TestBooleans:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            (True, True),
            (False, False),
            ("true", True),
            ("TRUE", True),
            (" True ", True),
            ("yes", True),
            ("Y", True),
            ("1", True),
            (1, True),
            ("false", False),
            ("No", False),
            ("n", False),
            ("0", False),
            (0, False),
        ],
    )
    @pytest.mark.parametrize("field", ["ClearFileDataFile", "Imported"])
    def test_clear_spellings_are_accepted(
        self, field: str, raw: Any, expected: bool
    ) -> None:
        """Booleans and the clear spellings true/false, yes/no, y/n, 1/0 are read."""
        payload = validate_create(_record(**{field: raw}))
        attribute = (
            "clear_file_data_file" if field == "ClearFileDataFile" else "imported"
        )
        assert getattr(payload, attribute) is expected

    @pytest.mark.parametrize(
        "bad",
        ["maybe", "t", "f", "on", "off", "2", "-1", "1.0", 2, -1, 1.0, 0.0, [True]],
    )
    @pytest.mark.parametrize("field", ["ClearFileDataFile", "Imported"])
    def test_unclear_values_are_refused(self, field: str, bad: Any) -> None:
        """Anything else is an error on that field, never a guess."""
        assert _problems(_record(**{field: bad}))[field].value == bad


class TestWholeRecord:
    def test_all_failures_are_reported_at_once(self) -> None:
        """Every failing field is listed in one error, in field order, then unknown keys."""
        with pytest.raises(RecordValidationError) as caught:
            validate_create(
                {
                    "Imported": "maybe",
                    "Foo": "junk",
                    "BusinessId": "1e3",
                    "Name": "",
                    "NewFileDataUrl": "ftp://x",
                    "ClearFileDataFile": "2",
                },
                line=7,
            )
        error = caught.value
        assert [problem.field for problem in error.problems] == [
            "BusinessId",
            "Name",
            "NewFileDataUrl",
            "ClearFileDataFile",
            "Imported",
            "Foo",
        ]
        assert error.line == 7
        assert str(error).startswith("line 7: BusinessId:")
        assert isinstance(error, ValueError)

    def test_unknown_key_is_named(self) -> None:
        """A key the payload does not have is reported by name as unknown."""
        problem = _problems(_record(Foo=1))["Foo"]
        assert problem == FieldProblem("Foo", "unknown field", 1)

    def test_keys_are_case_sensitive_wire_names(self) -> None:
        """Keys must be exact wire names; snake_case or lower case is unknown."""
        problems = _problems({"business_id": 1, "name": "n"})
        assert {"business_id", "name", "BusinessId", "Name"} <= set(problems)

    def test_id_is_unknown_for_create(self) -> None:
        """A create record may not carry Id."""
        assert "Id" in _problems(_record(Id=5))

    @pytest.mark.parametrize("data", [["BusinessId", 1], "BusinessId=1", None])
    def test_non_mapping_record(self, data: Any) -> None:
        """A record that is not a mapping is refused as a whole."""
        assert set(_problems(data)) == {"$"}

    def test_valid_record_raises_nothing(self) -> None:
        """A clean record produces a payload and no error."""
        assert isinstance(validate_create(_record()), ImportFileCreate)


class TestValidateUpdate:
    def test_update_payload(self) -> None:
        """An update record with Id becomes an update payload."""
        payload = validate_update(_record(Id="9", Imported="y"))
        assert payload == ImportFileUpdate(
            id=9, business_id=12, name="Spring leads", imported=True
        )

    @pytest.mark.parametrize("bad", [None, "", 0, "-1", 1.0, True, "1e3", 2**63])
    def test_bad_id_is_refused(self, bad: Any) -> None:
        """Id follows the positive-integer rule and is required."""
        with pytest.raises(RecordValidationError) as caught:
            validate_update(_record(Id=bad))
        assert [problem.field for problem in caught.value.problems] == ["Id"]

    def test_update_reports_all_fields(self) -> None:
        """Update validation also lists every failing field at once."""
        with pytest.raises(RecordValidationError) as caught:
            validate_update({"Name": "\ud800", "Imported": "sure"})
        assert [problem.field for problem in caught.value.problems] == [
            "Id",
            "BusinessId",
            "Name",
            "Imported",
        ]
