"""Validation of untrusted records, such as rows read from a CSV or JSONL file.

Keys are the API's wire names (``BusinessId``, ``Name``, ...). Values may be
typed (from JSON) or text (from CSV); text is converted by the field's type.
Every failing field is reported at once, by name, in one
`RecordValidationError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from ._errors import FieldProblem, RecordValidationError
from ._models import ImportFileCreate, ImportFileUpdate

__all__ = ["validate_create", "validate_update"]

#: Ids are 64-bit signed integers in the API; a larger one can name no record.
_MAX_ID: Final = 2**63 - 1
_MAX_ID_DIGITS: Final = len(str(_MAX_ID))
_TRUE: Final = frozenset({"true", "yes", "y", "1"})
_FALSE: Final = frozenset({"false", "no", "n", "0"})


class _Invalid(Exception):
    """A field value failed its check; the message says why."""


class _Unset:
    """Marks an optional field that was absent or empty."""


_UNSET: Final = _Unset()


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _positive_int(value: Any) -> int:
    # bool is an int subclass; a spreadsheet TRUE is not an id.
    if isinstance(value, bool):
        raise _Invalid("must be a positive integer, not a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        # Plain ASCII digits only: "1e3", "12.0" and "-3" are what a spreadsheet
        # makes of an id it has mangled, so they are refused rather than guessed.
        if not (text.isascii() and text.isdigit()):
            raise _Invalid("must be a positive integer written as plain digits")
        # Count before converting: int() refuses very long digit strings with an
        # error of its own, and would be slow on them anyway.
        digits = text.lstrip("0")
        if len(digits) > _MAX_ID_DIGITS:
            raise _Invalid(f"must be at most {_MAX_ID}")
        number = int(digits or "0")
    elif isinstance(value, float):
        raise _Invalid("must be an integer, not a decimal number")
    else:
        raise _Invalid(f"must be a positive integer, not {type(value).__name__}")
    if number <= 0:
        raise _Invalid("must be a positive integer")
    if number > _MAX_ID:
        raise _Invalid(f"must be at most {_MAX_ID}")
    return number


def _check_text(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Invalid("contains invalid Unicode (a lone surrogate)") from None


def _name(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"must be text, not {type(value).__name__}")
    _check_text(value)
    return value


def _http_url(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"must be a URL, not {type(value).__name__}")
    text = value.strip()
    _check_text(text)
    if any(char.isspace() or not char.isprintable() for char in text):
        raise _Invalid("must be a URL without spaces or control characters")
    try:
        parts = urlsplit(text)
        host = parts.hostname
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        raise _Invalid(f"is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise _Invalid("must be an absolute http or https URL")
    if not host:
        raise _Invalid("must name a host")
    return text


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    # JSON 1 and 0 are as clear as the text "1" and "0"; other numbers are not.
    if type(value) is int and value in (0, 1):
        return value == 1
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise _Invalid("must be true or false (also yes/no, y/n, 1/0)")


#: Each wire field: (attribute name, required, check).
_Field = tuple[str, bool, Callable[[Any], Any]]

_CREATE_FIELDS: Final[Mapping[str, _Field]] = {
    "BusinessId": ("business_id", True, _positive_int),
    "Name": ("name", True, _name),
    "NewFileDataUrl": ("new_file_data_url", False, _http_url),
    "ClearFileDataFile": ("clear_file_data_file", False, _boolean),
    "Imported": ("imported", False, _boolean),
}

_UPDATE_FIELDS: Final[Mapping[str, _Field]] = {
    "Id": ("id", True, _positive_int),
    **_CREATE_FIELDS,
}


def _check_record(
    data: Any, fields: Mapping[str, _Field], line: int | None
) -> dict[str, Any]:
    """Check every field, collecting all problems, and return attribute values."""
    if not isinstance(data, Mapping):
        problem = FieldProblem("$", "record must be an object of fields", data)
        raise RecordValidationError((problem,), line=line)

    problems: list[FieldProblem] = []
    values: dict[str, Any] = {}
    for key, (attribute, required, check) in fields.items():
        raw = data.get(key)
        if _is_blank(raw):
            # Absent, null, empty or whitespace: unset, which only optionals may be.
            if required:
                problems.append(
                    FieldProblem(key, "is required and may not be blank", raw)
                )
            continue
        try:
            values[attribute] = check(raw)
        except _Invalid as exc:
            problems.append(FieldProblem(key, str(exc), raw))
    problems.extend(
        FieldProblem(str(key), "unknown field", data[key])
        for key in data
        if key not in fields
    )

    if problems:
        raise RecordValidationError(problems, line=line)
    return values


def validate_create(
    data: Mapping[str, Any], *, line: int | None = None
) -> ImportFileCreate:
    """Check an untrusted record and build a create payload from it.

    Rules: ``BusinessId`` is a positive integer no larger than 2**63 - 1, given
    as an int or as plain digits (not a bool, a float, a decimal or scientific
    notation); ``Name`` is non-blank text of valid Unicode, kept exactly as
    given; ``NewFileDataUrl`` is an absolute http or https URL with a host;
    ``ClearFileDataFile`` and ``Imported`` are booleans or one of true/false,
    yes/no, y/n, 1/0 in any case. An empty or missing optional field is left
    unset. Keys outside these are errors.

    Args:
        data: The record, keyed by wire names.
        line: Source line number, carried into the error for reporting.

    Returns:
        The payload, with text converted to the field types.

    Raises:
        RecordValidationError: One or more fields failed; ``problems`` lists
            every one of them.
    """
    return ImportFileCreate(**_check_record(data, _CREATE_FIELDS, line))


def validate_update(
    data: Mapping[str, Any], *, line: int | None = None
) -> ImportFileUpdate:
    """Check an untrusted record and build an update payload from it.

    The rules are those of `validate_create`, plus ``Id``: a required positive
    integer, like ``BusinessId`` no larger than 2**63 - 1.

    Args:
        data: The record, keyed by wire names.
        line: Source line number, carried into the error for reporting.

    Returns:
        The payload.

    Raises:
        RecordValidationError: One or more fields failed; ``problems`` lists
            every one of them.
    """
    return ImportFileUpdate(**_check_record(data, _UPDATE_FIELDS, line))
