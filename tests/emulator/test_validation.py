"""Tests of the emulator's own checks of create and update bodies."""

from __future__ import annotations

from typing import Any

import pytest

from nexudus_async.emulator._validation import (
    ENTITY_FIELDS,
    Problem,
    RecordInput,
    check_record,
)

BUSINESSES = frozenset({1, 2, 3})


def problems(
    body: dict[str, Any], *, strict: bool = True, with_id: bool = False
) -> list[tuple[str, str, Any]]:
    checked = check_record(
        body, businesses=BUSINESSES, strict_names=strict, with_id=with_id
    )
    return [(p.property_name, p.message, p.attempted_value) for p in checked.problems]


class TestCheckRecord:
    def test_minimal_body_passes(self) -> None:
        """BusinessId and Name are enough."""
        checked = check_record(
            {"BusinessId": 1, "Name": "a"},
            businesses=BUSINESSES,
            strict_names=True,
            with_id=False,
        )
        assert checked.problems == ()
        assert checked.record == RecordInput(business_id=1, name="a")

    def test_full_body_passes(self) -> None:
        """Every writable field is read into the record."""
        body = {
            "BusinessId": 2,
            "Name": "n",
            "NewFileDataUrl": "https://files.example.com/x.csv",
            "ClearFileDataFile": True,
            "Imported": False,
            "SystemId": "ext-1",
        }
        checked = check_record(
            body, businesses=BUSINESSES, strict_names=True, with_id=False
        )
        assert checked.record == RecordInput(
            2, "n", "https://files.example.com/x.csv", True, False, "ext-1"
        )

    def test_both_required_fields_missing(self) -> None:
        """An empty body gives one problem per required field, in field order."""
        assert problems({}) == [
            ("BusinessId", "is a required field", None),
            ("Name", "is a required field", None),
        ]

    @pytest.mark.parametrize("name", ["", "   "])
    def test_blank_name_is_missing(self, name: str) -> None:
        """An empty or blank Name counts as missing; the attempted value is kept."""
        assert problems({"BusinessId": 1, "Name": name}) == [
            ("Name", "is a required field", name)
        ]

    def test_null_name_is_missing(self) -> None:
        """A null Name counts as missing."""
        assert problems({"BusinessId": 1, "Name": None}) == [
            ("Name", "is a required field", None)
        ]

    def test_name_must_be_a_string(self) -> None:
        """A number as Name is a type error."""
        assert problems({"BusinessId": 1, "Name": 5}) == [
            ("Name", "must be a string", 5)
        ]

    @pytest.mark.parametrize("value", ["1", 1.0, True, [1], {"Id": 1}])
    def test_business_id_must_be_an_integer(self, value: Any) -> None:
        """Strings, floats, booleans and containers are not integers."""
        assert problems({"BusinessId": value, "Name": "a"}) == [
            ("BusinessId", "must be an integer", value)
        ]

    def test_business_must_exist(self) -> None:
        """A BusinessId outside the configured businesses is refused."""
        assert problems({"BusinessId": 99, "Name": "a"}) == [
            ("BusinessId", "business not found", 99)
        ]

    def test_huge_business_id(self) -> None:
        """An integer beyond 64 bits is just an unknown business."""
        assert problems({"BusinessId": 2**70, "Name": "a"}) == [
            ("BusinessId", "business not found", 2**70)
        ]

    @pytest.mark.parametrize(
        "url",
        [
            "ftp://files.example.com/x.csv",
            "files.example.com/x.csv",
            "/x.csv",
            "https://",
            "https://files.example.com/a b.csv",
            "http://files.example.com:99999/x",
        ],
    )
    def test_bad_file_url(self, url: str) -> None:
        """NewFileDataUrl must be an absolute http or https URL."""
        assert problems({"BusinessId": 1, "Name": "a", "NewFileDataUrl": url}) == [
            ("NewFileDataUrl", "must be an absolute http or https URL", url)
        ]

    @pytest.mark.parametrize(
        "url", ["http://h/x", "HTTPS://files.example.com:8443/a%20b.csv?v=1", "", None]
    )
    def test_good_or_empty_file_url(self, url: str | None) -> None:
        """Web URLs pass; an empty or null URL means no new file."""
        assert problems({"BusinessId": 1, "Name": "a", "NewFileDataUrl": url}) == []

    def test_file_url_must_be_a_string(self) -> None:
        """A number as NewFileDataUrl is a type error."""
        assert problems({"BusinessId": 1, "Name": "a", "NewFileDataUrl": 3}) == [
            ("NewFileDataUrl", "must be a string", 3)
        ]

    @pytest.mark.parametrize("field", ["Imported", "ClearFileDataFile"])
    @pytest.mark.parametrize("value", ["true", 1, 0])
    def test_booleans_must_be_booleans(self, field: str, value: Any) -> None:
        """The flags accept only JSON true, false or null."""
        assert problems({"BusinessId": 1, "Name": "a", field: value}) == [
            (field, "must be true or false", value)
        ]

    def test_every_failing_field_is_reported(self) -> None:
        """All problems come back together, not just the first."""
        body = {
            "BusinessId": "x",
            "Name": "",
            "NewFileDataUrl": "nope",
            "Imported": "yes",
            "SystemId": 4,
        }
        assert [p[0] for p in problems(body)] == [
            "BusinessId",
            "Name",
            "NewFileDataUrl",
            "Imported",
            "SystemId",
        ]

    def test_unknown_field_is_refused_when_strict(self) -> None:
        """A misspelt field name is a problem by default."""
        assert problems({"businessId": 1, "BusinessId": 1, "Name": "a"}) == [
            ("businessId", "is not a field of CrmOpportunityImportFile", 1)
        ]

    def test_unknown_field_is_ignored_when_lenient(self) -> None:
        """With strict names off, unknown fields are ignored."""
        assert (
            problems({"businessId": 1, "BusinessId": 1, "Name": "a"}, strict=False)
            == []
        )

    def test_read_only_fields_are_accepted(self) -> None:
        """A record read with GET can be sent back whole."""
        body = dict.fromkeys(ENTITY_FIELDS, None) | {
            "Id": 5,
            "BusinessId": 1,
            "Name": "a",
            "UniqueId": "x",
        }
        assert problems(body) == []

    def test_update_needs_an_id(self) -> None:
        """With with_id, a missing Id is a problem."""
        assert problems({"BusinessId": 1, "Name": "a"}, with_id=True) == [
            ("Id", "is a required field", None)
        ]

    def test_update_id_must_be_an_integer(self) -> None:
        """With with_id, a string Id is a type error."""
        assert problems({"Id": "5", "BusinessId": 1, "Name": "a"}, with_id=True) == [
            ("Id", "must be an integer", "5")
        ]

    def test_update_id_is_returned(self) -> None:
        """The Id of a valid update body is returned."""
        checked = check_record(
            {"Id": 5, "BusinessId": 1, "Name": "a"},
            businesses=BUSINESSES,
            strict_names=True,
            with_id=True,
        )
        assert checked.record_id == 5

    def test_problem_defaults(self) -> None:
        """A problem without an attempted value holds None."""
        assert Problem("Name", "is a required field").attempted_value is None
