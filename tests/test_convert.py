"""Tests for the converter between models and wire JSON."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import cattrs
import pytest

from nexudus_async import _convert as convert_module
from nexudus_async._convert import (
    _wire_error as _converter_error,
)
from nexudus_async._convert import (
    _write_result_by_hand,
    converter,
    format_datetime,
    from_wire,
    page_from_wire,
    parse_datetime,
    to_wire,
    token_from_wire,
    wire_name,
)
from nexudus_async._errors import WireFormatError
from nexudus_async._json import dumps, loads
from nexudus_async._models import (
    Command,
    CommandParameter,
    FieldError,
    ImportFile,
    ImportFileCreate,
    ImportFileUpdate,
    Page,
    WriteResult,
)

# The vendor page's request body and its two response examples, verbatim.
VENDOR_REQUEST = b'{"BusinessId":123,"Name":"x"}'

VENDOR_200 = b"""{
  "Status": 200,
  "Message": "CrmOpportunityImportFile was successfully created.",
  "Value": {
    "Id": 87654321
  },
  "OpenInDialog": false,
  "OpenInWindow": false,
  "RedirectURL": null,
  "JavaScript": null,
  "UpdatedOn": "2025-01-15T10:30:00Z",
  "UpdatedBy": "admin@example.com",
  "Errors": null,
  "WasSuccessful": true
}"""

VENDOR_400 = b"""{
  "Message": "Name: is a required field",
  "Value": null,
  "Errors": [
    {
      "AttemptedValue": null,
      "Message": "is a required field",
      "PropertyName": "Name"
    }
  ],
  "WasSuccessful": false
}"""

UTC = timezone.utc


def _record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "Id": 1001,
        "UniqueId": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "BusinessId": 123,
        "Name": "Spring leads",
        "Imported": False,
        "FileDataFileName": "leads.csv",
        "NewFileDataUrl": None,
        "ClearFileDataFile": False,
        "CreatedOn": "2025-01-15T10:30:00Z",
        "UpdatedOn": "2025-01-16T08:00:00.5Z",
        "UpdatedBy": "admin@example.com",
        "IsNew": True,
        "SystemId": "ext-1",
    }
    record.update(changes)
    return record


def _page(records: list[Any], **changes: Any) -> dict[str, Any]:
    page: dict[str, Any] = {
        "Records": records,
        "CurrentPage": 2,
        "CurrentPageSize": 25,
        "CurrentOrderField": "Id",
        "CurrentSortDirection": 1,
        "FirstItem": 26,
        "LastItem": 50,
        "TotalItems": 80,
        "TotalPages": 4,
        "HasNextPage": True,
        "HasPreviousPage": True,
    }
    page.update(changes)
    return page


def _wire_error(cls: Any, data: Any) -> WireFormatError:
    with pytest.raises(WireFormatError) as caught:
        from_wire(cls, data)
    return caught.value


class TestVendorExamples:
    def test_request_example_serialises_exactly(self) -> None:
        """A create payload with only the required fields is exactly the documented body."""
        body = dumps(to_wire(ImportFileCreate(business_id=123, name="x")))
        assert body == VENDOR_REQUEST

    def test_request_example_round_trips(self) -> None:
        """The documented request body structures back into the same payload."""
        payload = from_wire(ImportFileCreate, loads(VENDOR_REQUEST))
        assert payload == ImportFileCreate(business_id=123, name="x")

    def test_success_example_parses(self) -> None:
        """The 200 example gives Id 87654321 and an aware UpdatedOn in UTC."""
        result = from_wire(WriteResult, loads(VENDOR_200))
        assert result.was_successful is True
        assert result.id == 87654321
        assert result.status == 200
        assert result.updated_on == datetime(2025, 1, 15, 10, 30, tzinfo=UTC)
        assert result.updated_on.utcoffset() == timedelta(0)
        assert result.updated_by == "admin@example.com"
        assert result.redirect_url is None
        assert result.javascript is None
        assert result.open_in_dialog is False
        assert result.errors == ()

    def test_validation_example_parses(self) -> None:
        """The 400 example gives one field error on Name with a null attempted value."""
        result = from_wire(WriteResult, loads(VENDOR_400))
        assert result.was_successful is False
        assert result.value is None
        assert result.id is None
        assert result.errors == (
            FieldError(
                property_name="Name",
                message="is a required field",
                attempted_value=None,
            ),
        )

    def test_success_example_round_trips(self) -> None:
        """The 200 example survives parse, unstructure and parse unchanged."""
        first = from_wire(WriteResult, loads(VENDOR_200))
        again = from_wire(WriteResult, loads(dumps(to_wire(first))))
        assert again == first

    def test_validation_example_round_trips(self) -> None:
        """The 400 example survives parse, unstructure and parse unchanged."""
        first = from_wire(WriteResult, loads(VENDOR_400))
        again = from_wire(WriteResult, loads(dumps(to_wire(first))))
        assert again == first


class TestWireNames:
    @pytest.mark.parametrize(
        ("attribute", "wire"),
        [
            ("id", "Id"),
            ("business_id", "BusinessId"),
            ("new_file_data_url", "NewFileDataUrl"),
            ("clear_file_data_file", "ClearFileDataFile"),
            ("file_data_file_name", "FileDataFileName"),
            ("unique_id", "UniqueId"),
            ("redirect_url", "RedirectURL"),
            ("javascript", "JavaScript"),
            ("display_in_dropdown_v2", "DisplayInDropdownV2"),
        ],
    )
    def test_attribute_maps_to_documented_name(self, attribute: str, wire: str) -> None:
        """Attribute names map to the documented PascalCase wire names."""
        assert wire_name(attribute) == wire

    def test_write_result_uses_documented_names(self) -> None:
        """Every write-result field is written under its documented name."""
        result = WriteResult(
            was_successful=True,
            status=200,
            message="m",
            value={"Id": 1},
            open_in_dialog=False,
            open_in_window=False,
            redirect_url="/x",
            javascript="go()",
            updated_on=datetime(2025, 1, 15, tzinfo=UTC),
            updated_by="a@b.c",
            errors=(FieldError("Name", "bad", 1),),
        )
        assert set(to_wire(result)) == {
            "Status",
            "Message",
            "Value",
            "OpenInDialog",
            "OpenInWindow",
            "RedirectURL",
            "JavaScript",
            "UpdatedOn",
            "UpdatedBy",
            "Errors",
            "WasSuccessful",
        }
        assert to_wire(result)["Errors"] == [
            {"PropertyName": "Name", "Message": "bad", "AttemptedValue": 1}
        ]

    def test_entity_reads_documented_names(self) -> None:
        """Every documented entity field lands on its attribute."""
        record = from_wire(ImportFile, _record())
        assert record == ImportFile(
            id=1001,
            business_id=123,
            name="Spring leads",
            unique_id="0f8fad5b-d9cb-469f-a165-70867728950e",
            imported=False,
            file_data_file_name="leads.csv",
            new_file_data_url=None,
            clear_file_data_file=False,
            created_on=datetime(2025, 1, 15, 10, 30, tzinfo=UTC),
            updated_on=datetime(2025, 1, 16, 8, 0, 0, 500000, tzinfo=UTC),
            updated_by="admin@example.com",
            is_new=True,
            system_id="ext-1",
        )


class TestToWire:
    def test_unset_optionals_are_absent_not_null(self) -> None:
        """Optional fields left as None are left out of the body, never sent as null."""
        body = to_wire(ImportFileCreate(business_id=5, name="n"))
        assert body == {"BusinessId": 5, "Name": "n"}
        assert "Imported" not in body
        assert b"null" not in dumps(body)

    def test_set_optionals_are_sent(self) -> None:
        """Optional fields that are set, even to False, are sent."""
        body = to_wire(
            ImportFileCreate(
                business_id=5,
                name="n",
                new_file_data_url="https://example.com/f.csv",
                clear_file_data_file=False,
                imported=True,
            )
        )
        assert body == {
            "BusinessId": 5,
            "Name": "n",
            "NewFileDataUrl": "https://example.com/f.csv",
            "ClearFileDataFile": False,
            "Imported": True,
        }

    def test_update_carries_id(self) -> None:
        """An update body holds Id with the required fields and no unset optionals."""
        body = to_wire(ImportFileUpdate(id=2**70, business_id=5, name="n"))
        assert body == {"Id": 2**70, "BusinessId": 5, "Name": "n"}
        assert dumps(body) == b'{"Id":1180591620717411303424,"BusinessId":5,"Name":"n"}'

    def test_command_parameter_omits_unset_type(self) -> None:
        """A command parameter without a type sends only Name and Value."""
        assert to_wire(CommandParameter("Date", "2025-01-01")) == {
            "Name": "Date",
            "Value": "2025-01-01",
        }

    def test_datetimes_are_written_in_utc_with_z(self) -> None:
        """Aware datetimes are written as UTC with a Z suffix."""
        plus_two = timezone(timedelta(hours=2))
        record = ImportFile(
            1,
            2,
            "n",
            created_on=datetime(2025, 1, 15, 12, 30, 0, 250000, tzinfo=plus_two),
        )
        assert to_wire(record)["CreatedOn"] == "2025-01-15T10:30:00.250000Z"

    def test_naive_datetime_is_written_as_utc(self) -> None:
        """A naive datetime is taken as UTC, the same rule as parsing."""
        assert format_datetime(datetime(2025, 1, 15, 10, 30)) == "2025-01-15T10:30:00Z"

    def test_non_model_is_refused(self) -> None:
        """Only models can be converted to wire dicts."""
        with pytest.raises(TypeError):
            to_wire({"BusinessId": 1})


class TestCreateBodyByHand:
    @pytest.mark.parametrize("url", [None, "", "https://x.example/f.csv"])
    @pytest.mark.parametrize("clear", [None, True, False])
    @pytest.mark.parametrize("imported", [None, True, False])
    def test_matches_the_converter(
        self, url: str | None, clear: bool | None, imported: bool | None
    ) -> None:
        """Every mix of set and unset optionals gives the converter's body, key order too."""
        record = ImportFileCreate(2**70, "Ünïcode \u2028 name", url, clear, imported)
        by_hand = to_wire(record)
        assert by_hand == converter.unstructure(record)
        assert list(by_hand) == list(converter.unstructure(record))
        assert dumps(by_hand) == dumps(converter.unstructure(record))

    def test_subclass_values_are_sent_as_plain_values(self) -> None:
        """An int or str subclass, which the model accepts, is encoded as its value."""

        class Number(int):
            def __int__(self) -> int:
                return 99

        class Text(str):
            def __str__(self) -> str:
                return "not this"

        record = ImportFileCreate(Number(5), Text("a"), Text("https://x"))
        assert dumps(to_wire(record)) == (
            b'{"BusinessId":5,"Name":"a","NewFileDataUrl":"https://x"}'
        )


class TestFromWireTolerance:
    def test_extra_keys_are_ignored(self) -> None:
        """Keys the models do not know, at any level, do not break parsing."""
        data = _page(
            [_record(ToStringText="x", CustomFields={"a": 1})], PageNumber=2, New=[]
        )
        page = page_from_wire(ImportFile, data)
        assert page.records[0].id == 1001
        result = from_wire(WriteResult, dict(loads(VENDOR_200), Added="field"))
        assert result.id == 87654321

    def test_missing_optional_keys_take_defaults(self) -> None:
        """A record with only the required keys parses with None for the rest."""
        record = from_wire(ImportFile, {"Id": 1, "BusinessId": 2, "Name": "n"})
        assert record == ImportFile(id=1, business_id=2, name="n")
        result = from_wire(WriteResult, {"WasSuccessful": True})
        assert result == WriteResult(was_successful=True)

    def test_nulls_in_optional_keys_take_none(self) -> None:
        """Explicit nulls in optional keys parse as None."""
        record = from_wire(
            ImportFile, _record(CreatedOn=None, IsNew=None, SystemId=None)
        )
        assert (record.created_on, record.is_new, record.system_id) == (
            None,
            None,
            None,
        )

    @pytest.mark.parametrize(
        "attempted",
        [
            None,
            0,
            -12,
            2**70,
            1.5,
            "",
            "text",
            True,
            False,
            [],
            [1, "a", None],
            {},
            {"k": [1, {"n": None}]},
        ],
    )
    def test_attempted_value_may_be_any_json_value(self, attempted: Any) -> None:
        """AttemptedValue keeps whatever JSON value the server sent, as is."""
        raw = dumps({"WasSuccessful": False, "Errors": [{"AttemptedValue": attempted}]})
        result = from_wire(WriteResult, loads(raw))
        assert result.errors[0].attempted_value == attempted
        assert type(result.errors[0].attempted_value) is type(attempted)

    def test_value_null(self) -> None:
        """A null Value parses as None and gives no id."""
        result = from_wire(WriteResult, {"WasSuccessful": True, "Value": None})
        assert result.value is None
        assert result.id is None

    def test_value_object(self) -> None:
        """An object Value is kept whole, so unknown keys in it stay readable."""
        result = from_wire(
            WriteResult, {"WasSuccessful": True, "Value": {"Id": 5, "X": [1]}}
        )
        assert result.value == {"Id": 5, "X": [1]}
        assert result.id == 5

    def test_errors_null_becomes_empty(self) -> None:
        """Errors: null parses as an empty tuple."""
        assert (
            from_wire(WriteResult, {"WasSuccessful": True, "Errors": None}).errors == ()
        )

    @pytest.mark.parametrize("direction", [1, -1, 0, "ASC", "Descending", None])
    def test_sort_direction_number_or_name(self, direction: Any) -> None:
        """CurrentSortDirection is kept whether it comes as a number or a name."""
        page = page_from_wire(ImportFile, _page([], CurrentSortDirection=direction))
        assert page.current_sort_direction == direction


class TestExactIntegers:
    def test_huge_id_survives_loads_and_from_wire(self) -> None:
        """An Id of 2**70 decoded and structured is the exact integer."""
        raw = b'{"Id": 1180591620717411303424, "BusinessId": 1, "Name": "n"}'
        record = from_wire(ImportFile, loads(raw))
        assert record.id == 2**70
        assert type(record.id) is int

    def test_huge_id_in_write_result(self) -> None:
        """A huge Value.Id from a write result stays exact."""
        raw = b'{"WasSuccessful": true, "Value": {"Id": 1180591620717411303425}}'
        assert from_wire(WriteResult, loads(raw)).id == 2**70 + 1

    @pytest.mark.parametrize("bad", [1.0, 87654321.0, True, False, "42", None])
    def test_non_integer_id_is_refused(self, bad: Any) -> None:
        """A float, a bool, text or null where an id belongs is a WireFormatError."""
        error = _wire_error(ImportFile, _record(Id=bad))
        assert error.path == "Id"
        assert error.value is bad

    def test_non_integer_page_number_is_refused(self) -> None:
        """Integer page fields refuse floats too."""
        error = _wire_error(Page[ImportFile], _page([], TotalItems=80.0))
        assert error.path == "TotalItems"

    @pytest.mark.parametrize("bad", [1, 0, "true", None])
    def test_non_boolean_flag_is_refused(self, bad: Any) -> None:
        """Boolean fields accept only JSON true and false."""
        error = _wire_error(WriteResult, {"WasSuccessful": bad})
        assert error.path == "WasSuccessful"

    def test_non_string_name_is_refused(self) -> None:
        """A number where text belongs is refused rather than turned into text."""
        error = _wire_error(ImportFile, _record(Name=5))
        assert (error.path, error.value) == ("Name", 5)


class TestWireFormatErrors:
    def test_path_names_list_index_and_field(self) -> None:
        """A bad value inside Records names its index and wire field, with the raw value."""
        data = _page([_record(), _record(CreatedOn="15/01/2025"), _record()])
        with pytest.raises(WireFormatError) as caught:
            page_from_wire(ImportFile, data)
        error = caught.value
        assert error.path == "Records[1].CreatedOn"
        assert error.value == "15/01/2025"
        assert "Records[1].CreatedOn" in str(error)

    def test_cattrs_error_is_the_cause(self) -> None:
        """The cattrs error is kept as __cause__ for debugging."""
        error = _wire_error(Page[ImportFile], _page([_record(Id="x")]))
        assert isinstance(error.__cause__, cattrs.BaseValidationError)
        assert error.path == "Records[0].Id"

    def test_is_a_value_error(self) -> None:
        """WireFormatError can be caught as ValueError."""
        assert isinstance(_wire_error(ImportFile, {}), ValueError)

    def test_missing_required_key(self) -> None:
        """A missing required key is reported by its wire name."""
        error = _wire_error(ImportFile, {"Id": 1, "Name": "n"})
        assert error.path == "BusinessId"
        assert "missing" in str(error)

    def test_nested_field_error_path(self) -> None:
        """A bad field inside Errors names the index and field."""
        error = _wire_error(
            WriteResult, {"WasSuccessful": False, "Errors": [{}, {"Message": 3}]}
        )
        assert (error.path, error.value) == ("Errors[1].Message", 3)

    @pytest.mark.parametrize("data", [[], "text", None, 3])
    def test_document_not_an_object(self, data: Any) -> None:
        """A document that is not an object is reported at the root, $."""
        error = _wire_error(WriteResult, data)
        assert error.path == "$"
        assert error.value == data

    def test_record_not_an_object(self) -> None:
        """A record that is not an object is reported at its index."""
        error = _wire_error(Page[ImportFile], _page([_record(), 7]))
        assert (error.path, error.value) == ("Records[1]", 7)

    @pytest.mark.parametrize("records", ["abc", {"Id": 1}, 5])
    def test_records_not_an_array(self, records: Any) -> None:
        """Records must be an array; a string or object is not iterated."""
        error = _wire_error(Page[ImportFile], _page(records))
        assert (error.path, error.value) == ("Records", records)

    @pytest.mark.parametrize("value", [3, "x", [1], True])
    def test_value_neither_object_nor_null(self, value: Any) -> None:
        """Value must be an object or null."""
        error = _wire_error(WriteResult, {"WasSuccessful": True, "Value": value})
        assert (error.path, error.value) == ("Value", value)

    def test_bad_datetime_in_envelope(self) -> None:
        """An unparseable UpdatedOn is reported with its raw text."""
        error = _wire_error(
            WriteResult, {"WasSuccessful": True, "UpdatedOn": "yesterday"}
        )
        assert (error.path, error.value) == ("UpdatedOn", "yesterday")

    def test_list_of_records_path(self) -> None:
        """A list of records reports the bad item's index at the root."""
        error = _wire_error(list[ImportFile], [_record(), {"Id": 2, "Name": "n"}])
        assert error.path == "[1].BusinessId"

    def test_list_expected_but_object_given(self) -> None:
        """Asking for a list of records from an object fails at the root."""
        error = _wire_error(list[ImportFile], {"Records": []})
        assert error.path == "$"


class TestParseDatetime:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2025-01-15T10:30:00Z", datetime(2025, 1, 15, 10, 30, tzinfo=UTC)),
            ("2025-01-15T10:30:00z", datetime(2025, 1, 15, 10, 30, tzinfo=UTC)),
            ("2025-01-15T10:30:00", datetime(2025, 1, 15, 10, 30, tzinfo=UTC)),
            ("2025-01-15T10:30", datetime(2025, 1, 15, 10, 30, tzinfo=UTC)),
            ("2025-01-15T10:30Z", datetime(2025, 1, 15, 10, 30, tzinfo=UTC)),
            ("2025-01-15 10:30:00", datetime(2025, 1, 15, 10, 30, tzinfo=UTC)),
            (
                "2025-01-15T10:30:00.5Z",
                datetime(2025, 1, 15, 10, 30, 0, 500000, tzinfo=UTC),
            ),
            (
                "2025-01-15T10:30:00.123456Z",
                datetime(2025, 1, 15, 10, 30, 0, 123456, tzinfo=UTC),
            ),
            (
                "2025-01-15T10:30:00.1234567Z",
                datetime(2025, 1, 15, 10, 30, 0, 123456, tzinfo=UTC),
            ),
            (
                "2025-01-15T10:30:00.9999999",
                datetime(2025, 1, 15, 10, 30, 0, 999999, tzinfo=UTC),
            ),
        ],
    )
    def test_utc_forms(self, text: str, expected: datetime) -> None:
        """Z, no zone, no seconds and 0 to 7 fraction digits all parse as UTC."""
        parsed = parse_datetime(text)
        assert parsed == expected
        assert parsed.utcoffset() == timedelta(0)

    @pytest.mark.parametrize(
        ("text", "offset"),
        [
            ("2025-01-15T12:30:00+02:00", timedelta(hours=2)),
            ("2025-01-15T12:30:00+0200", timedelta(hours=2)),
            ("2025-01-15T05:00:00.1234567-05:30", -timedelta(hours=5, minutes=30)),
            ("2025-01-15T10:30:00+00:00", timedelta(0)),
        ],
    )
    def test_offsets_are_kept(self, text: str, offset: timedelta) -> None:
        """A numeric offset is honoured and kept on the aware result."""
        parsed = parse_datetime(text)
        assert parsed.utcoffset() == offset
        assert parsed.astimezone(UTC).replace(microsecond=0) == datetime(
            2025, 1, 15, 10, 30, tzinfo=UTC
        )

    @pytest.mark.parametrize(
        "text",
        [
            "2025-01-15",
            "2025-01-15T10",
            "2025-01-15T10:30:00.12345678Z",
            "2025-01-15T10:30:00.Z",
            "2025-01-15T10:30:00+25:00",
            "2025-02-30T10:30:00Z",
            "2025-01-15T24:00:00Z",
            "15/01/2025 10:30",
            "2025-01-15T10:30:00Z trailing",
            "",
        ],
    )
    def test_malformed_text_is_refused(self, text: str) -> None:
        """Anything but the accepted forms raises ValueError."""
        with pytest.raises(ValueError):  # noqa: PT011 - the message varies by cause
            parse_datetime(text)

    @pytest.mark.parametrize(
        "text",
        ["2025-01-15T10:30:00Z", "2025-01-15T10:30:00+02:00", "2025-01-15T10:30"],
    )
    def test_structured_datetimes_are_aware(self, text: str) -> None:
        """Datetimes parsed through the converter always carry a zone."""
        record = from_wire(ImportFile, _record(CreatedOn=text))
        assert record.created_on is not None
        assert record.created_on.tzinfo is not None

    def test_fast_path_agrees_with_the_general_one(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The usual Z-suffixed shape gives what the general parser gives.

        Seeded random stamps, including leap days, impossible dates, 24:00 and
        fractions of 1 to 7 digits: each is parsed with the fast path allowed
        and with it switched off, and both must agree on the value or on the
        refusal.
        """
        rng = random.Random(20261203)
        texts = [
            "2024-02-29T23:59:59.9999999Z",
            "2025-02-29T10:00:00Z",
            "2025-01-15T24:00:00Z",
            "2025-01-15T10:30:60Z",
            "2025-01-15t10:30:00Z",
            "2025-01-15T10:30:00,5Z",
            "2025-01-15T10:30:00z",
        ]
        for _ in range(800):
            seconds = rng.choice(["", f":{rng.randrange(62):02d}"])
            fraction = ""
            if seconds and rng.random() < 0.7:
                digits = rng.randrange(1, 8)
                fraction = rng.choice(".,") + str(rng.randrange(10**digits)).zfill(
                    digits
                )
            texts.append(
                f"{rng.randrange(1, 10000):04d}-{rng.randrange(1, 14):02d}-"
                f"{rng.randrange(1, 33):02d}T{rng.randrange(26):02d}:"
                f"{rng.randrange(61):02d}{seconds}{fraction}Z"
            )

        def outcome(text: str) -> object:
            try:
                parsed = parse_datetime(text)
            except ValueError as exc:
                return ("refused", str(exc))
            return (parsed, parsed.utcoffset())

        fast = [outcome(text) for text in texts]
        monkeypatch.setattr(convert_module, "_FROMISOFORMAT_TAKES_Z", False)
        general = [outcome(text) for text in texts]
        assert fast == general
        assert sum(1 for result in fast if result[0] != "refused") > 200

    def test_wire_round_trip_keeps_the_instant(self) -> None:
        """Formatting then parsing gives back the same instant."""
        moment = datetime(
            2025, 1, 15, 10, 30, 0, 123456, tzinfo=timezone(timedelta(hours=-3))
        )
        assert parse_datetime(format_datetime(moment)) == moment


class TestPages:
    def test_full_page_parses(self) -> None:
        """Every documented page field is read, and records become models."""
        page = page_from_wire(ImportFile, _page([_record(Id=1), _record(Id=2)]))
        assert [record.id for record in page.records] == [1, 2]
        assert isinstance(page.records, tuple)
        assert page == Page(
            records=page.records,
            current_page=2,
            current_page_size=25,
            current_order_field="Id",
            current_sort_direction=1,
            first_item=26,
            last_item=50,
            total_items=80,
            total_pages=4,
            has_next_page=True,
            has_previous_page=True,
        )

    def test_page_via_from_wire_generic(self) -> None:
        """from_wire accepts the parametrised Page type directly."""
        page = from_wire(Page[ImportFile], _page([_record()]))
        assert isinstance(page.records[0], ImportFile)

    def test_empty_page(self) -> None:
        """A page without records and with only the paging flags parses."""
        page = page_from_wire(
            ImportFile,
            {
                "Records": [],
                "CurrentPage": 1,
                "HasNextPage": False,
                "HasPreviousPage": False,
            },
        )
        assert page.records == ()
        assert page.total_items is None

    def test_list_of_records(self) -> None:
        """A JSON array of records structures into a list of models."""
        records = from_wire(list[ImportFile], [_record(Id=1), _record(Id=2)])
        assert [record.id for record in records] == [1, 2]


class TestCommands:
    def test_command_parses_with_parameters(self) -> None:
        """A command description parses, including the parameters it requires."""
        command = from_wire(
            Command,
            {
                "Key": "IMPORT_NOW",
                "Name": "Import now",
                "NeedsEntitiesToRun": True,
                "Order": 3,
                "RequiresParameters": [{"Name": "When", "Type": "DateTime"}],
                "DisplayInDropdownV2": True,
                "Icon": "upload",
            },
        )
        assert command.key == "IMPORT_NOW"
        assert command.requires_parameters[0].name == "When"
        assert command.requires_parameters[0].type == "DateTime"
        assert command.display_in_dropdown_v2 is True

    def test_command_with_null_parameters(self) -> None:
        """RequiresParameters: null parses as an empty tuple."""
        command = from_wire(Command, {"Key": "K", "RequiresParameters": None})
        assert command.requires_parameters == ()


class TestTokenFromWire:
    RECEIVED = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)

    def test_expiry_is_received_time_plus_lifetime(self) -> None:
        """expires_at is the receipt time plus expires_in, aware and in UTC."""
        token = token_from_wire(
            {
                "access_token": "a",
                "token_type": "bearer",
                "expires_in": 86400,
                "refresh_token": "r",
            },
            received_at=self.RECEIVED,
        )
        assert token.expires_at == datetime(2025, 1, 16, 10, 0, tzinfo=UTC)
        assert token.expires_at.tzinfo is UTC
        assert (token.access_token, token.refresh_token, token.expires_in) == (
            "a",
            "r",
            86400,
        )

    def test_receipt_time_in_another_zone_gives_utc(self) -> None:
        """A receipt time with another offset still yields a UTC expiry."""
        received = datetime(2025, 1, 15, 12, 0, tzinfo=timezone(timedelta(hours=2)))
        token = token_from_wire(
            {"access_token": "a", "token_type": "bearer", "expires_in": 60},
            received_at=received,
        )
        assert token.expires_at == datetime(2025, 1, 15, 10, 1, tzinfo=UTC)
        assert token.expires_at.utcoffset() == timedelta(0)

    def test_default_receipt_time_is_now(self) -> None:
        """Without received_at the expiry counts from the current time."""
        before = datetime.now(UTC)
        token = token_from_wire(
            {"access_token": "a", "token_type": "bearer", "expires_in": 60}
        )
        after = datetime.now(UTC)
        assert (
            before + timedelta(seconds=60)
            <= token.expires_at
            <= after + timedelta(seconds=60)
        )
        assert token.refresh_token is None

    def test_lifetime_as_text_is_accepted(self) -> None:
        """An expires_in sent as digits is read as a number."""
        token = token_from_wire(
            {"access_token": "a", "token_type": "bearer", "expires_in": "3600"},
            received_at=self.RECEIVED,
        )
        assert token.expires_in == 3600

    @pytest.mark.parametrize(
        ("data", "path"),
        [
            ({"token_type": "bearer", "expires_in": 1}, "access_token"),
            (
                {"access_token": 5, "token_type": "bearer", "expires_in": 1},
                "access_token",
            ),
            (
                {"access_token": "a", "token_type": "bearer", "expires_in": True},
                "expires_in",
            ),
            (
                {"access_token": "a", "token_type": "bearer", "expires_in": 1.5},
                "expires_in",
            ),
            ({"access_token": "a", "expires_in": 1}, "token_type"),
            (
                {
                    "access_token": "a",
                    "token_type": "b",
                    "expires_in": 1,
                    "refresh_token": 9,
                },
                "refresh_token",
            ),
            (["access_token"], "$"),
        ],
    )
    def test_bad_token_answer(self, data: Any, path: str) -> None:
        """A missing or mistyped token field is a WireFormatError naming it."""
        with pytest.raises(WireFormatError) as caught:
            token_from_wire(data, received_at=self.RECEIVED)
        assert caught.value.path == path

    @pytest.mark.parametrize("lifetime", [-1, 10**12, 10**20])
    def test_unusable_lifetime(self, lifetime: int) -> None:
        """A negative lifetime, or one past any date, is a WireFormatError on it."""
        data = {"access_token": "a", "token_type": "bearer", "expires_in": lifetime}
        with pytest.raises(WireFormatError) as caught:
            token_from_wire(data, received_at=self.RECEIVED)
        assert (caught.value.path, caught.value.value) == ("expires_in", lifetime)

    def test_token_error_hides_nothing_secret(self) -> None:
        """A refusal over a bad lifetime does not quote the access token."""
        with pytest.raises(WireFormatError) as caught:
            token_from_wire(
                {"access_token": "secret-9", "token_type": "bearer", "expires_in": "x"}
            )
        assert "secret-9" not in str(caught.value)


class TestConverterIsolation:
    def test_converter_is_not_the_global_one(self) -> None:
        """The SDK configures its own converter, not cattrs' global one."""
        assert converter is not cattrs.global_converter

    def test_global_converter_is_untouched(self) -> None:
        """cattrs' global converter keeps its lenient defaults."""
        assert cattrs.global_converter.structure("5", int) == 5
        with pytest.raises(WireFormatError):
            from_wire(int, "5")


class _Text(str):
    """A str subclass, which no JSON decoder produces."""

    __slots__ = ()


def _by_converter(data: Any) -> WriteResult:
    """The write result as the converter alone builds it."""
    result: WriteResult = converter.structure(data, WriteResult)
    return result


def _converter_outcome(data: Any) -> WriteResult | WireFormatError:
    """The converter's write result, or the error it makes of its failure."""
    try:
        return _by_converter(data)
    except cattrs.BaseValidationError as exc:
        return _converter_error(exc, data)


def _assert_identical(built: WriteResult, expected: WriteResult) -> None:
    # Equal datetimes may differ in offset and equal numbers in type; the reprs
    # tell both apart.
    assert built == expected
    assert repr(built) == repr(expected)
    assert type(built.value) is type(expected.value)


class TestWriteResultByHand:
    @pytest.mark.parametrize("body", [VENDOR_200, VENDOR_400])
    def test_vendor_examples_match_the_converter(self, body: bytes) -> None:
        """Both documented envelopes are built by hand, identical to the converter's."""
        built = _write_result_by_hand(loads(body))
        assert built is not None
        _assert_identical(built, _by_converter(loads(body)))

    @pytest.mark.parametrize(
        "data",
        [
            {"WasSuccessful": True},
            {"WasSuccessful": False},
            dict(loads(VENDOR_200), Added="field", Nested={"Deep": [1]}),
            {"WasSuccessful": True, "Value": None, "Errors": None, "Status": None},
            {"WasSuccessful": True, "Value": {"Id": 2**70, "Extra": [1, None]}},
            {"WasSuccessful": True, "Value": {}},
            {"WasSuccessful": True, "Errors": []},
            {
                "WasSuccessful": False,
                "Errors": [
                    {},
                    {"PropertyName": "Name", "Message": None},
                    {"Message": "bad", "AttemptedValue": {"k": [1.5, True]}},
                    {"PropertyName": None, "AttemptedValue": 0, "Other": 1},
                ],
            },
            {"WasSuccessful": True, "UpdatedOn": None},
            {"WasSuccessful": True, "UpdatedOn": "2025-01-15T12:30:00+02:00"},
            {"WasSuccessful": True, "UpdatedOn": "2025-01-15T05:00:00-0530"},
            {"WasSuccessful": True, "UpdatedOn": "2025-01-15T10:30:00"},
            {"WasSuccessful": True, "UpdatedOn": "2025-01-15 10:30"},
            {"WasSuccessful": True, "UpdatedOn": "2025-01-15T10:30:00.1234567Z"},
            {"WasSuccessful": True, "UpdatedOn": "2025-01-15t10:30:00,5z"},
            {
                "WasSuccessful": True,
                "Status": 201,
                "Message": "",
                "OpenInDialog": True,
                "OpenInWindow": None,
                "RedirectURL": "/download/1",
                "JavaScript": "go()",
                "UpdatedBy": "",
            },
        ],
    )
    def test_odd_envelopes_match_the_converter(self, data: dict[str, Any]) -> None:
        """Extra keys, missing optionals, nulls, errors and zones give the same model."""
        built = _write_result_by_hand(data)
        assert built is not None
        _assert_identical(built, _by_converter(data))

    def test_value_is_a_copy(self) -> None:
        """The model's Value is its own dict, as the converter makes it."""
        data = {"WasSuccessful": True, "Value": {"Id": 1}}
        built = _write_result_by_hand(data)
        assert built is not None
        assert built.value == data["Value"]
        assert built.value is not data["Value"]

    @pytest.mark.parametrize(
        "data",
        [
            MappingProxyType({"WasSuccessful": True}),
            {"WasSuccessful": True, "Value": MappingProxyType({"Id": 1})},
            {"WasSuccessful": True, "Message": _Text("m")},
            {"WasSuccessful": False, "Errors": ({"Message": "bad"},)},
            {"WasSuccessful": False, "Errors": [MappingProxyType({"Message": "m"})]},
        ],
    )
    def test_unusual_but_valid_input_goes_to_the_converter(self, data: Any) -> None:
        """Input the hand path does not expect still parses, through the converter."""
        assert _write_result_by_hand(data) is None
        _assert_identical(from_wire(WriteResult, data), _by_converter(data))

    @pytest.mark.parametrize(
        ("data", "path", "value"),
        [
            ({"Status": 200}, "WasSuccessful", None),
            ({"WasSuccessful": None}, "WasSuccessful", None),
            ({"WasSuccessful": 1}, "WasSuccessful", 1),
            ({"WasSuccessful": True, "Status": 200.0}, "Status", 200.0),
            ({"WasSuccessful": True, "Status": True}, "Status", True),
            ({"WasSuccessful": True, "Message": 5}, "Message", 5),
            ({"WasSuccessful": True, "Value": [1]}, "Value", [1]),
            ({"WasSuccessful": True, "OpenInDialog": "false"}, "OpenInDialog", "false"),
            ({"WasSuccessful": True, "UpdatedOn": 1736937000}, "UpdatedOn", 1736937000),
            (
                {"WasSuccessful": True, "UpdatedOn": "2025-02-30T10:30:00Z"},
                "UpdatedOn",
                "2025-02-30T10:30:00Z",
            ),
            (
                {"WasSuccessful": True, "UpdatedOn": "2025-01-15T10:30:00+25:00"},
                "UpdatedOn",
                "2025-01-15T10:30:00+25:00",
            ),
            ({"WasSuccessful": True, "Errors": "Name"}, "Errors", "Name"),
            ({"WasSuccessful": True, "Errors": {"Name": "x"}}, "Errors", {"Name": "x"}),
            ({"WasSuccessful": False, "Errors": [{}, 7]}, "Errors[1]", 7),
            (
                {"WasSuccessful": False, "Errors": [{"PropertyName": 3}]},
                "Errors[0].PropertyName",
                3,
            ),
        ],
    )
    def test_malformed_envelope_fails_through_the_converter(
        self, data: Any, path: str, value: Any
    ) -> None:
        """A bad envelope is left to the converter, whose error names the place."""
        assert _write_result_by_hand(data) is None
        error = _wire_error(WriteResult, data)
        assert (error.path, error.value) == (path, value)
        assert isinstance(error.__cause__, cattrs.BaseValidationError)

    def test_mixtures_agree_with_the_converter(self) -> None:
        """On random mixtures of good and bad fields both paths agree on every one."""
        choices: Mapping[str, list[Any]] = {
            "WasSuccessful": [True, False, None, 1, "true"],
            "Status": [200, None, 200.0, False, "200"],
            "Message": ["ok", "", None, 5, ["m"]],
            "Value": [{"Id": 1}, {}, None, [], "x", 0],
            "OpenInDialog": [False, True, None, 0],
            "RedirectURL": ["/x", None, 1],
            "UpdatedOn": [
                "2025-01-15T10:30:00Z",
                "2025-01-15T10:30:00.1234567+01:00",
                "2025-01-15T10:30",
                None,
                "yesterday",
                "2025-13-01T00:00:00Z",
                20250115,
            ],
            "Errors": [
                None,
                [],
                [{"PropertyName": "Name"}],
                [{"Message": 1}],
                [3],
                "e",
            ],
        }
        missing = object()
        pick = random.Random(7).choice
        for _ in range(600):
            data = {
                key: value
                for key, values in choices.items()
                if (value := pick([*values, missing])) is not missing
            }
            expected = _converter_outcome(data)
            if isinstance(expected, WireFormatError):
                assert _write_result_by_hand(data) is None, data
                assert str(_wire_error(WriteResult, data)) == str(expected)
                continue
            built = _write_result_by_hand(data)
            assert built is not None, data
            _assert_identical(built, expected)
            _assert_identical(from_wire(WriteResult, data), expected)
