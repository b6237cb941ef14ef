"""Tests for finding a stored record by BusinessId and exact Name."""

from __future__ import annotations

import pytest

from nexudus_async._lookup import (
    LOOKUP_MAX_PAGES,
    LOOKUP_PAGE_SIZE,
    AmbiguousMatch,
    LookupTooBroad,
    find_stored,
)
from nexudus_async._models import ImportFile, ImportFileCreate, Page


class Listing:
    """Pages over fixed records, filtering names loosely like the server may."""

    def __init__(self, records: list[ImportFile], *, ignore_name: bool = False) -> None:
        self.records = records
        self.ignore_name = ignore_name
        self.pages: list[int] = []

    async def list(
        self,
        *,
        page: int = 1,
        size: int = 25,
        name: str | None = None,
        business_id: int | None = None,
    ) -> Page[ImportFile]:
        self.pages.append(page)
        found = [
            r
            for r in self.records
            if (business_id is None or r.business_id == business_id)
            and (self.ignore_name or name is None or name.lower() in r.name.lower())
        ]
        return Page(
            records=tuple(found[(page - 1) * size : page * size]),
            current_page=page,
            has_next_page=page * size < len(found),
            has_previous_page=page > 1,
        )


WANTED = ImportFileCreate(1, "Budget")


class TestFindStored:
    async def test_exact_match_is_found(self) -> None:
        """The record with the same BusinessId and Name is found by its Id."""
        listing = Listing([ImportFile(5, 1, "Budget 2024"), ImportFile(6, 1, "Budget")])

        assert await find_stored(listing, WANTED, strict=True) == 6

    async def test_other_businesses_and_longer_names_do_not_count(self) -> None:
        """A loose server match is checked exactly, business included."""
        listing = Listing([ImportFile(5, 2, "Budget"), ImportFile(6, 1, "Budgets")])

        assert await find_stored(listing, WANTED, strict=True) is None

    async def test_the_newest_of_several_matches_wins(self) -> None:
        """When the record exists more than once, the highest Id is returned."""
        listing = Listing([ImportFile(9, 1, "Budget"), ImportFile(3, 1, "Budget")])

        assert await find_stored(listing, WANTED, strict=False) == 9

    async def test_ids_owned_by_other_records_are_passed_over(self) -> None:
        """A match another record owns is not this one's; the newest unowned wins."""
        listing = Listing([ImportFile(n, 1, "Budget") for n in (3, 7, 9)])

        assert (
            await find_stored(listing, WANTED, strict=True, owned={9}.__contains__) == 7
        )

    async def test_only_owned_matches_means_absent(self) -> None:
        """When every exact match is owned by another record, none is found."""
        listing = Listing([ImportFile(3, 1, "Budget"), ImportFile(7, 1, "Budget")])

        found = await find_stored(
            listing, WANTED, strict=True, owned={3, 7}.__contains__
        )

        assert found is None

    async def test_a_near_match_is_ambiguous_when_strict(self) -> None:
        """Only a case or spacing variant found: strict refuses to call it absent."""
        listing = Listing([ImportFile(4, 1, " budget ")])

        with pytest.raises(AmbiguousMatch):
            await find_stored(listing, WANTED, strict=True)
        assert await find_stored(listing, WANTED, strict=False) is None

    async def test_pages_are_followed(self) -> None:
        """The match may be on a later page."""
        others = [ImportFile(n, 1, f"Budget {n}") for n in range(1, 251)]
        listing = Listing([*others, ImportFile(999, 1, "Budget")])

        assert await find_stored(listing, WANTED, strict=True) == 999
        assert listing.pages == [1, 2, 3]

    async def test_too_many_candidates_is_an_error(self) -> None:
        """A filter that matches everything is not paged through for ever."""
        many = [
            ImportFile(n, 1, f"x{n}")
            for n in range(LOOKUP_PAGE_SIZE * LOOKUP_MAX_PAGES + 1)
        ]
        listing = Listing(many, ignore_name=True)

        with pytest.raises(LookupTooBroad):
            await find_stored(listing, WANTED, strict=True)
        assert len(listing.pages) == LOOKUP_MAX_PAGES
