"""Checks of create and update bodies, by the documented PascalCase field names.

This module knows the wire format on its own and shares nothing with the client's
models, so a field the client names or types wrongly is refused here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import attrs

from ._config import ENTITY

__all__ = [
    "ENTITY_FIELDS",
    "Checked",
    "Problem",
    "RecordInput",
    "check_record",
    "is_integer",
]

ENTITY_FIELDS: Final = (
    "Id",
    "UniqueId",
    "BusinessId",
    "Name",
    "Imported",
    "FileDataFileName",
    "NewFileDataUrl",
    "ClearFileDataFile",
    "CreatedOn",
    "UpdatedOn",
    "UpdatedBy",
    "IsNew",
    "SystemId",
)
_KNOWN: Final = frozenset(ENTITY_FIELDS)

REQUIRED: Final = "is a required field"
NOT_INTEGER: Final = "must be an integer"
NOT_STRING: Final = "must be a string"
NOT_BOOLEAN: Final = "must be true or false"
NO_BUSINESS: Final = "business not found"
BAD_URL: Final = "must be an absolute http or https URL"
UNKNOWN_FIELD: Final = f"is not a field of {ENTITY}"


@attrs.frozen
class Problem:
    """One failing field, as the ``Errors`` entries of a 400 answer report it."""

    property_name: str
    message: str
    attempted_value: Any = None


@attrs.frozen
class RecordInput:
    """The writable fields of a body that passed the checks."""

    business_id: int
    name: str
    new_file_data_url: str | None = None
    clear_file_data_file: bool | None = None
    imported: bool | None = None
    system_id: str | None = None


@attrs.frozen
class Checked:
    """The outcome of :func:`check_record`: a record, or every problem found."""

    record: RecordInput | None
    record_id: int | None
    problems: tuple[Problem, ...]


def is_integer(value: object) -> bool:
    """Whether a decoded JSON value is an integer (booleans are not)."""
    return type(value) is int


def _is_web_url(text: str) -> bool:
    if any(character.isspace() for character in text):
        return False
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _optional_string(
    body: Mapping[str, Any], field: str, problems: list[Problem]
) -> str | None:
    value = body.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        problems.append(Problem(field, NOT_STRING, value))
        return None
    return value


def _optional_boolean(
    body: Mapping[str, Any], field: str, problems: list[Problem]
) -> bool | None:
    value = body.get(field)
    if value is None or isinstance(value, bool):
        return value
    problems.append(Problem(field, NOT_BOOLEAN, value))
    return None


def check_record(
    body: Mapping[str, Any],
    *,
    businesses: frozenset[int],
    strict_names: bool,
    with_id: bool,
) -> Checked:
    """Check a create (or, with ``with_id``, an update) body and report every problem.

    Read-only entity fields (``UniqueId``, ``CreatedOn`` …) are accepted and ignored, so
    a record read with GET can be sent back whole.

    Args:
        body: the decoded JSON object.
        businesses: the business ids that exist.
        strict_names: whether a field the entity does not have is a problem.
        with_id: whether ``Id`` is required (updates).

    Returns:
        The clean record and Id, or ``None`` for the record and the problems.
    """
    problems: list[Problem] = []

    record_id: int | None = None
    if with_id:
        raw_id = body.get("Id")
        if raw_id is None:
            problems.append(Problem("Id", REQUIRED, None))
        elif not is_integer(raw_id):
            problems.append(Problem("Id", NOT_INTEGER, raw_id))
        else:
            record_id = raw_id

    business_id: Any = body.get("BusinessId")
    if business_id is None:
        problems.append(Problem("BusinessId", REQUIRED, None))
    elif not is_integer(business_id):
        problems.append(Problem("BusinessId", NOT_INTEGER, business_id))
    elif business_id not in businesses:
        problems.append(Problem("BusinessId", NO_BUSINESS, business_id))

    name: Any = body.get("Name")
    if name is None:
        problems.append(Problem("Name", REQUIRED, None))
    elif not isinstance(name, str):
        problems.append(Problem("Name", NOT_STRING, name))
    elif not name.strip():
        problems.append(Problem("Name", REQUIRED, name))

    url = _optional_string(body, "NewFileDataUrl", problems)
    if url is not None and not _is_web_url(url):
        problems.append(Problem("NewFileDataUrl", BAD_URL, url))
    clear = _optional_boolean(body, "ClearFileDataFile", problems)
    imported = _optional_boolean(body, "Imported", problems)
    system_id = _optional_string(body, "SystemId", problems)

    if strict_names:
        problems.extend(
            Problem(field, UNKNOWN_FIELD, value)
            for field, value in body.items()
            if field not in _KNOWN
        )

    if problems:
        return Checked(None, record_id, tuple(problems))
    record = RecordInput(
        business_id=business_id,
        name=name,
        new_file_data_url=url,
        clear_file_data_file=clear,
        imported=imported,
        system_id=system_id,
    )

    return Checked(record, record_id, ())
