"""The list endpoint: reading its query string, filtering, sorting and paging."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Final, Literal

import attrs

from ._config import ENTITY
from ._store import Store
from ._validation import ENTITY_FIELDS, Problem

__all__ = [
    "ListQuery",
    "QueryError",
    "page_body",
    "parse_id_list",
    "parse_list_query",
    "select",
]

_PREFIX: Final = ENTITY.casefold() + "_"
# Query names are matched case-insensitively, as the service's model binding does; the
# values are the documented spellings, used when reporting a problem.
_FILTERS: Final = {
    _PREFIX + "business": f"{ENTITY}_Business",
    _PREFIX + "name": f"{ENTITY}_Name",
    _PREFIX + "imported": f"{ENTITY}_Imported",
    _PREFIX + "filedatafilename": f"{ENTITY}_FileDataFileName",
    _PREFIX + "newfiledataurl": f"{ENTITY}_NewFileDataUrl",
    _PREFIX + "clearfiledata": f"{ENTITY}_ClearFileData",
    _PREFIX + "clearfiledatafile": f"{ENTITY}_ClearFileDataFile",
}
_RANGES: Final = {
    f"{bound}_{_PREFIX}{field.casefold()}": f"{bound}_{ENTITY}_{field}"
    for bound in ("from", "to")
    for field in ("CreatedOn", "UpdatedOn")
}
_PAGING: Final = {
    "page": "page",
    "size": "size",
    "orderby": "orderBy",
    "dir": "dir",
    "id": "id",
}
_KNOWN: Final = {**_PAGING, **_FILTERS, **_RANGES}
_ORDER_FIELDS: Final = {field.casefold(): field for field in ENTITY_FIELDS}
# Seconds' fraction in a range bound. .NET writes seven digits, and before 3.11
# datetime.fromisoformat takes only three or six, so the fraction is made six.
_FRACTION: Final = re.compile(r"(?<=:\d\d)\.(\d+)")


class QueryError(Exception):
    """The query string has problems; each names its parameter."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__(
            "; ".join(f"{p.property_name}: {p.message}" for p in self.problems)
        )


@attrs.frozen(kw_only=True)
class ListQuery:
    """A parsed list request."""

    page: int = 1
    size: int = 25
    order_by: str = "Id"
    descending: bool = False
    record_id: int | None = None
    business_id: int | None = None
    name: str | None = None
    imported: bool | None = None
    file_name: str | None = None
    file_url: str | None = None
    clear_file: bool | None = None
    created_from: float | None = None
    created_to: float | None = None
    updated_from: float | None = None
    updated_to: float | None = None


def _positive_int(text: str) -> int:
    number = int(text)
    if number < 1:
        raise ValueError(text)
    return number


def _boolean(text: str) -> bool:
    folded = text.strip().casefold()
    if folded not in ("true", "false"):
        raise ValueError(text)
    return folded == "true"


def _moment(text: str) -> float:
    cleaned = text.strip()
    if cleaned[-1:] in ("Z", "z"):
        cleaned = cleaned[:-1] + "+00:00"
    cleaned = _FRACTION.sub(lambda match: "." + match[1][:6].ljust(6, "0"), cleaned)
    moment = datetime.fromisoformat(cleaned)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _order_field(text: str) -> str:
    field = _ORDER_FIELDS.get(text.strip().casefold())
    if field is None:
        raise ValueError(text)
    return field


def _direction(text: str, encoding: Literal["rest", "sdk"]) -> bool:
    folded = text.strip().casefold()
    if folded in ("asc", "ascending", "0"):
        return False
    if folded in ("desc", "descending", "-1"):
        return True
    if folded == "1":
        return encoding == "sdk"
    raise ValueError(text)


def parse_id_list(text: str) -> list[int]:
    """Parse ``[1,2,3]`` (brackets required) into Ids.

    Raises:
        ValueError: not a bracketed list of integers.
    """
    cleaned = text.strip()
    if not (cleaned.startswith("[") and cleaned.endswith("]")):
        raise ValueError(text)
    inner = cleaned[1:-1].strip()
    return [int(part) for part in inner.split(",")] if inner else []


def parse_list_query(
    params: Mapping[str, str],
    *,
    dir_encoding: Literal["rest", "sdk"] = "rest",
    max_page_size: int | None = None,
    strict_names: bool = True,
) -> ListQuery:
    """Read a list request's query parameters (names case-insensitive).

    Raises:
        QueryError: every parameter with a bad value, and unknown names when strict.
    """
    problems: list[Problem] = []
    folded: dict[str, str] = {}
    for name, value in params.items():
        key = name.casefold()
        if key in _KNOWN:
            folded.setdefault(key, value)
        elif strict_names:
            problems.append(Problem(name, "is not a known query parameter", value))

    values: dict[str, Any] = {}

    def read(key: str, field: str, parse: Callable[[str], Any], message: str) -> None:
        text = folded.get(key)
        if not text:
            return
        try:
            values[field] = parse(text)
        except ValueError:
            problems.append(Problem(_KNOWN[key], message, text))

    read("page", "page", _positive_int, "must be a positive integer")
    read("size", "size", _positive_int, "must be a positive integer")
    read("orderby", "order_by", _order_field, "is not a field of " + ENTITY)
    read(
        "dir",
        "descending",
        lambda text: _direction(text, dir_encoding),
        "must be 1, -1, 0, ascending or descending",
    )
    read("id", "record_id", int, "must be an integer, or Ids in square brackets")
    read(_PREFIX + "business", "business_id", int, "must be an integer")
    read(_PREFIX + "imported", "imported", _boolean, "must be true or false")
    read(_PREFIX + "clearfiledata", "clear_file", _boolean, "must be true or false")
    read(_PREFIX + "clearfiledatafile", "clear_file", _boolean, "must be true or false")
    read(_PREFIX + "name", "name", str, "")
    read(_PREFIX + "filedatafilename", "file_name", str, "")
    read(_PREFIX + "newfiledataurl", "file_url", str, "")
    for bound in ("from", "to"):
        for field in ("created", "updated"):
            key = f"{bound}_{_PREFIX}{field}on"
            read(
                key,
                f"{field}_{bound}",
                _moment,
                "must be a date and time such as 2025-01-15T10:30",
            )

    if problems:
        raise QueryError(problems)
    if max_page_size is not None and values.get("size", 0) > max_page_size:
        values["size"] = max_page_size

    return ListQuery(**values)


def _contains(needle: str | None, haystack: str | None) -> bool:
    return needle is None or (
        haystack is not None and needle.casefold() in haystack.casefold()
    )


def _within(moment: float, low: float | None, high: float | None) -> bool:
    return (low is None or moment >= low) and (high is None or moment <= high)


def _sort_key(field: str) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        value = row[field]
        if isinstance(value, str):
            value = value.casefold()
        # Nulls sort first and never get compared with a value of another type.
        return (value is not None, 0 if value is None else value, row["Id"])

    return key


def select(
    store: Store, query: ListQuery, *, name_filter: Literal["contains", "exact"]
) -> list[dict[str, Any]]:
    """The records a list request matches, in its order (all pages)."""
    if query.record_id is not None:
        candidates: Iterable[int] = [query.record_id]
    elif query.name is not None and name_filter == "exact":
        candidates = sorted(store.ids_named(query.name))
    else:
        candidates = store.ids()
    exact_name = query.name if name_filter == "exact" else None
    contained_name = query.name if name_filter == "contains" else None
    ranged = any(
        bound is not None
        for bound in (
            query.created_from,
            query.created_to,
            query.updated_from,
            query.updated_to,
        )
    )

    rows: list[dict[str, Any]] = []
    for record_id in candidates:
        row = store.get(record_id)
        if row is None:
            continue
        if query.business_id is not None and row["BusinessId"] != query.business_id:
            continue
        if exact_name is not None and row["Name"] != exact_name:
            continue
        if not _contains(contained_name, row["Name"]):
            continue
        if query.imported is not None and row["Imported"] != query.imported:
            continue
        if (
            query.clear_file is not None
            and row["ClearFileDataFile"] != query.clear_file
        ):
            continue
        if not (
            _contains(query.file_name, row["FileDataFileName"])
            and _contains(query.file_url, row["NewFileDataUrl"])
        ):
            continue
        if ranged:
            created, updated = store.times(record_id)
            if not (
                _within(created, query.created_from, query.created_to)
                and _within(updated, query.updated_from, query.updated_to)
            ):
                continue
        rows.append(row)

    if query.order_by != "Id":
        rows.sort(key=_sort_key(query.order_by), reverse=query.descending)
    elif query.descending:
        rows.reverse()

    return rows


def page_body(
    rows: list[dict[str, Any]],
    query: ListQuery,
    *,
    dir_encoding: Literal["rest", "sdk"],
) -> dict[str, Any]:
    """The documented page wrapper around one page of ``rows``."""
    total = len(rows)
    pages = math.ceil(total / query.size)
    start = (query.page - 1) * query.size
    records = rows[start : start + query.size]
    if dir_encoding == "rest":
        direction = -1 if query.descending else 1
    else:
        direction = 1 if query.descending else 0

    return {
        "Records": records,
        "CurrentPage": query.page,
        "CurrentPageSize": query.size,
        "CurrentOrderField": query.order_by,
        "CurrentSortDirection": direction,
        "FirstItem": start + 1 if records else 0,
        "LastItem": start + len(records) if records else 0,
        "TotalItems": total,
        "TotalPages": pages,
        "HasNextPage": query.page < pages,
        "HasPreviousPage": query.page > 1,
    }
