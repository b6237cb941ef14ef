"""Finding a stored import file by its BusinessId and Name, exactly.

The API has no idempotency key, so "does this record exist?" is the only way to
settle a create whose answer was lost. The server's Name filter may match loosely
(a substring, any case), so every candidate is compared here, exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

from ._models import ImportFile, ImportFileCreate, Page

__all__ = [
    "LOOKUP_MAX_PAGES",
    "LOOKUP_PAGE_SIZE",
    "AmbiguousMatch",
    "Lister",
    "LookupTooBroad",
    "find_stored",
]

#: Records asked for per page of a lookup.
LOOKUP_PAGE_SIZE: Final = 100
#: Pages one lookup reads at most: a name matching thousands of records is not
#: worth paging through for one of them.
LOOKUP_MAX_PAGES: Final = 10


class Lister(Protocol):
    """The part of the import-files resource a lookup needs."""

    async def list(
        self,
        *,
        page: int = ...,
        size: int = ...,
        name: str | None = ...,
        business_id: int | None = ...,
    ) -> Page[ImportFile]: ...


class AmbiguousMatch(Exception):
    """Only names that differ from the wanted one in case or spacing were found."""


class LookupTooBroad(Exception):
    """More records match the filters than one lookup pages through."""


def _loose(name: str) -> str:
    return " ".join(name.split()).casefold()


async def find_stored(
    files: Lister,
    payload: ImportFileCreate,
    *,
    strict: bool,
    owned: Callable[[int], bool] | None = None,
) -> int | None:
    """The Id of the stored record with the payload's BusinessId and exact Name.

    Args:
        files: The resource to list from.
        payload: The record looked for.
        strict: Refuse to conclude "absent" when a near match exists.
        owned: Tells whether an Id already belongs to another input record; such
            a match is some other record's, not this one's, and is passed over.

    Returns:
        The Id, or None when no record matches exactly (once owned ones are
        passed over). When several do, the newest.

    Raises:
        AmbiguousMatch: With ``strict``, no exact match but a near one: the server
            may have normalised the name it stored, so absence is not proven.
        LookupTooBroad: The filters match more records than are paged through.
        NexudusError: The listing failed.
    """
    best: int | None = None
    near = False
    for number in range(1, LOOKUP_MAX_PAGES + 1):
        page = await files.list(
            page=number,
            size=LOOKUP_PAGE_SIZE,
            business_id=payload.business_id,
            name=payload.name,
        )
        for stored in page.records:
            if stored.business_id != payload.business_id:
                continue
            if stored.name == payload.name:
                if owned is not None and owned(stored.id):
                    continue
                best = stored.id if best is None else max(best, stored.id)
            elif _loose(stored.name) == _loose(payload.name):
                near = True
        if not page.has_next_page or not page.records:
            break
    else:
        raise LookupTooBroad(
            f"more than {LOOKUP_MAX_PAGES * LOOKUP_PAGE_SIZE} records match the name;"
            " cannot tell whether this one is among them"
        )

    if best is None and near and strict:
        raise AmbiguousMatch(
            "a record with nearly the same name (other case or spacing) exists;"
            " not sending again"
        )

    return best
