"""Tests of list query parsing, filtering, ordering and paging."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from nexudus_async.emulator._listing import (
    ListQuery,
    QueryError,
    page_body,
    parse_id_list,
    parse_list_query,
    select,
)
from nexudus_async.emulator._store import Store
from nexudus_async.emulator._validation import RecordInput

P = "CrmOpportunityImportFile_"


def bad(params: dict[str, str], **options: Any) -> list[tuple[str, str]]:
    with pytest.raises(QueryError) as caught:
        parse_list_query(params, **options)
    return [(p.property_name, p.message) for p in caught.value.problems]


def filled_store() -> Store:
    store = Store()
    store.add(RecordInput(1, "Alpha"), updated_by="u")
    store.add(RecordInput(2, "beta", imported=True, system_id="z"), updated_by="u")
    store.add(RecordInput(1, "alphabet", "https://h/f.csv"), updated_by="u")
    store.add(RecordInput(3, "Gamma", system_id="a"), updated_by="u")
    return store


def names(store: Store, query: ListQuery, name_filter: str = "contains") -> list[str]:
    return [row["Name"] for row in select(store, query, name_filter=name_filter)]  # type: ignore[arg-type]


class TestParseListQuery:
    def test_defaults(self) -> None:
        """No parameters: page 1 of 25 by Id ascending."""
        assert parse_list_query({}) == ListQuery()

    def test_names_are_case_insensitive(self) -> None:
        """Parameter names match whatever their case."""
        query = parse_list_query(
            {
                "PAGE": "2",
                "Size": "5",
                "ORDERBY": "name",
                "crmopportunityimportfile_name": "x",
            }
        )
        assert (query.page, query.size, query.order_by, query.name) == (
            2,
            5,
            "Name",
            "x",
        )

    @pytest.mark.parametrize(
        ("encoding", "text", "descending"),
        [
            ("rest", "1", False),
            ("rest", "-1", True),
            ("rest", "0", False),
            ("rest", "Ascending", False),
            ("rest", "DESCENDING", True),
            ("rest", "asc", False),
            ("rest", "Desc", True),
            ("sdk", "0", False),
            ("sdk", "1", True),
            ("sdk", "-1", True),
            ("sdk", "ascending", False),
        ],
    )
    def test_dir_encodings(self, encoding: Any, text: str, descending: bool) -> None:
        """dir accepts 1/-1, 0, and the names, read per the chosen encoding."""
        assert (
            parse_list_query({"dir": text}, dir_encoding=encoding).descending
            is descending
        )

    def test_bad_dir(self) -> None:
        """An unknown direction is a problem."""
        assert bad({"dir": "up"}) == [
            ("dir", "must be 1, -1, 0, ascending or descending")
        ]

    @pytest.mark.parametrize(
        ("name", "value"),
        [("page", "0"), ("page", "x"), ("size", "-3"), ("size", "1.5")],
    )
    def test_bad_paging(self, name: str, value: str) -> None:
        """page and size must be positive integers."""
        assert bad({name: value}) == [(name, "must be a positive integer")]

    def test_size_is_capped(self) -> None:
        """A size above the cap is reduced to it."""
        assert parse_list_query({"size": "5000"}, max_page_size=1000).size == 1000
        assert parse_list_query({"size": "5000"}, max_page_size=None).size == 5000

    def test_unknown_order_field(self) -> None:
        """orderBy must name an entity field."""
        assert bad({"orderBy": "Colour"}) == [
            ("orderBy", "is not a field of CrmOpportunityImportFile")
        ]

    def test_unknown_parameter_when_strict(self) -> None:
        """A misspelt parameter is a problem by default and ignored when lenient."""
        assert bad({P + "BusinessId": "1"}) == [
            (P + "BusinessId", "is not a known query parameter")
        ]
        assert (
            parse_list_query({P + "BusinessId": "1"}, strict_names=False) == ListQuery()
        )

    def test_filters(self) -> None:
        """Every documented filter is read with its type."""
        query = parse_list_query(
            {
                P + "Business": "2",
                P + "Imported": "TRUE",
                P + "ClearFileData": "false",
                P + "FileDataFileName": "f",
                P + "NewFileDataUrl": "u",
                "Id": "7",
            }
        )
        assert (
            query.business_id,
            query.imported,
            query.clear_file,
            query.file_name,
            query.file_url,
            query.record_id,
        ) == (
            2,
            True,
            False,
            "f",
            "u",
            7,
        )

    def test_bad_filter_values(self) -> None:
        """Badly typed filters are all reported."""
        assert bad({P + "Business": "one", P + "Imported": "yes"}) == [
            (P + "Business", "must be an integer"),
            (P + "Imported", "must be true or false"),
        ]

    @pytest.mark.parametrize(
        "text",
        [
            "2025-01-15T10:30",
            "2025-01-15T10:30:00Z",
            "2025-01-15T10:30:00.000Z",
            "2025-01-15T10:30:00.0Z",
            "2025-01-15T10:30:00.0000000",
            "2025-01-15T11:30:00.0000000+01:00",
            "2025-01-15T11:30+01:00",
        ],
    )
    def test_date_ranges(self, text: str) -> None:
        """Range bounds accept the documented minute format and fuller ISO forms (no zone is UTC)."""
        expected = datetime(2025, 1, 15, 10, 30, tzinfo=timezone.utc).timestamp()
        query = parse_list_query(
            {"from_" + P + "CreatedOn": text, "To_" + P + "UpdatedOn": text}
        )
        assert query.created_from == expected
        assert query.updated_to == expected

    def test_seven_digit_fraction(self) -> None:
        """A .NET seven-digit fraction is read to the microsecond, its last digit dropped."""
        query = parse_list_query(
            {"from_" + P + "CreatedOn": "2025-01-15T10:30:00.1234567Z"}
        )
        expected = datetime(2025, 1, 15, 10, 30, 0, 123456, tzinfo=timezone.utc)
        assert query.created_from == expected.timestamp()

    def test_bad_date(self) -> None:
        """A range bound that is not a date is a problem."""
        assert bad({"from_" + P + "CreatedOn": "yesterday"}) == [
            (
                "from_" + P + "CreatedOn",
                "must be a date and time such as 2025-01-15T10:30",
            )
        ]

    def test_empty_values_are_ignored(self) -> None:
        """An empty parameter is the same as no parameter."""
        assert parse_list_query({P + "Name": "", "page": ""}) == ListQuery()


class TestParseIdList:
    @pytest.mark.parametrize(
        ("text", "ids"), [("[1,2,3]", [1, 2, 3]), (" [ 4 , 5 ] ", [4, 5]), ("[]", [])]
    )
    def test_brackets(self, text: str, ids: list[int]) -> None:
        """Ids in square brackets, separated by commas."""
        assert parse_id_list(text) == ids

    @pytest.mark.parametrize("text", ["1,2", "[1,x]", "[1,,2]"])
    def test_bad_lists(self, text: str) -> None:
        """Anything else is a ValueError."""
        with pytest.raises(ValueError):  # noqa: PT011 -- int() words its own message
            parse_id_list(text)


class TestSelect:
    def test_name_contains_ignoring_case(self) -> None:
        """The default Name filter is a case-insensitive substring match."""
        assert names(filled_store(), ListQuery(name="ALPHA")) == ["Alpha", "alphabet"]

    def test_name_exact(self) -> None:
        """The exact Name filter is a case-sensitive equality."""
        store = filled_store()
        assert names(store, ListQuery(name="Alpha"), "exact") == ["Alpha"]
        assert names(store, ListQuery(name="alpha"), "exact") == []

    def test_business_and_imported(self) -> None:
        """Business and Imported filters are equalities."""
        store = filled_store()
        assert names(store, ListQuery(business_id=1)) == ["Alpha", "alphabet"]
        assert names(store, ListQuery(imported=True)) == ["beta"]

    def test_file_filters(self) -> None:
        """File name and URL filters match substrings."""
        store = filled_store()
        assert names(store, ListQuery(file_name="F.CSV")) == ["alphabet"]
        assert names(store, ListQuery(file_url="https://h/")) == ["alphabet"]

    def test_record_id_filter(self) -> None:
        """The Id filter finds one record or none."""
        store = filled_store()
        assert names(store, ListQuery(record_id=2)) == ["beta"]
        assert names(store, ListQuery(record_id=99)) == []

    def test_created_range(self) -> None:
        """Records outside a creation range are left out; bounds are inclusive."""
        store = filled_store()
        created = store.times(2)[0]
        assert "beta" in names(
            store, ListQuery(created_from=created, created_to=created)
        )
        assert names(store, ListQuery(created_to=created - 3600)) == []
        assert names(store, ListQuery(updated_from=created + 3600)) == []

    def test_order_by_id_descending(self) -> None:
        """dir descending on Id reverses the natural order."""
        assert names(filled_store(), ListQuery(descending=True)) == [
            "Gamma",
            "alphabet",
            "beta",
            "Alpha",
        ]

    def test_order_by_name_ignores_case(self) -> None:
        """Strings sort case-insensitively."""
        assert names(filled_store(), ListQuery(order_by="Name")) == [
            "Alpha",
            "alphabet",
            "beta",
            "Gamma",
        ]

    def test_nulls_sort_first(self) -> None:
        """Null values come before any value in ascending order."""
        assert names(filled_store(), ListQuery(order_by="SystemId")) == [
            "Alpha",
            "alphabet",
            "Gamma",
            "beta",
        ]


class TestPageBody:
    def test_middle_page(self) -> None:
        """The wrapper describes the page and its neighbours."""
        rows = [{"Id": i} for i in range(1, 8)]
        body = page_body(rows, ListQuery(page=2, size=3), dir_encoding="rest")
        assert body == {
            "Records": [{"Id": 4}, {"Id": 5}, {"Id": 6}],
            "CurrentPage": 2,
            "CurrentPageSize": 3,
            "CurrentOrderField": "Id",
            "CurrentSortDirection": 1,
            "FirstItem": 4,
            "LastItem": 6,
            "TotalItems": 7,
            "TotalPages": 3,
            "HasNextPage": True,
            "HasPreviousPage": True,
        }

    def test_last_partial_page(self) -> None:
        """The last page may be short and has no next page."""
        body = page_body(
            [{"Id": i} for i in range(7)],
            ListQuery(page=3, size=3),
            dir_encoding="rest",
        )
        assert (body["FirstItem"], body["LastItem"], body["HasNextPage"]) == (
            7,
            7,
            False,
        )

    def test_empty(self) -> None:
        """No records: zero pages and zero items."""
        body = page_body([], ListQuery(), dir_encoding="rest")
        assert (
            body["Records"],
            body["TotalPages"],
            body["FirstItem"],
            body["LastItem"],
        ) == ([], 0, 0, 0)
        assert not body["HasNextPage"]
        assert not body["HasPreviousPage"]

    @pytest.mark.parametrize(
        ("encoding", "descending", "value"),
        [("rest", False, 1), ("rest", True, -1), ("sdk", False, 0), ("sdk", True, 1)],
    )
    def test_sort_direction_encoding(
        self, encoding: Any, descending: bool, value: int
    ) -> None:
        """CurrentSortDirection uses the same encoding dir is read with."""
        body = page_body([], ListQuery(descending=descending), dir_encoding=encoding)
        assert body["CurrentSortDirection"] == value
