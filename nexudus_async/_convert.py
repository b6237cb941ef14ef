"""The one configured cattrs converter between the models and wire JSON.

Rules it applies:

* Wire names are the API's PascalCase, derived from the snake_case attribute
  names, with a few spelled by hand (``RedirectURL``, ``JavaScript``). The token
  keeps the OAuth endpoint's snake_case names.
* Optional request fields left as None are omitted from the body, never sent as
  null, so the server applies its own defaults.
* Responses may carry keys the models do not know; they are ignored. Missing
  optional keys take the model's defaults.
* Integers, booleans and strings are taken only as themselves: ``1.0`` or
  ``true`` is not an id, so an id never passes through a float.
* Date-times are ISO 8601 with ``Z``, a numeric offset, or no zone at all. A
  value without a zone is taken as UTC; every parsed date-time is aware.
* Any structuring failure becomes one `WireFormatError` naming the wire path
  (e.g. ``Records[2].CreatedOn``) and keeping the raw value found there.

A write result, which answers every create, is first built by hand: the
converter's detailed validation costs several times as much, on the path every
create takes. That path follows the rules above to the letter and gives up on
anything it does not expect, leaving the converter to build the model or the
error.
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Final, TypeVar, cast, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    BaseValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._errors import WireFormatError
from ._models import (
    Command,
    CommandParameter,
    CommandParameterSpec,
    FieldError,
    ImportFile,
    ImportFileCreate,
    ImportFileUpdate,
    Page,
    Token,
    WriteResult,
)

__all__ = [
    "converter",
    "format_datetime",
    "from_wire",
    "page_from_wire",
    "parse_datetime",
    "to_wire",
    "token_from_wire",
    "wire_name",
]

T = TypeVar("T")

#: Wire names that do not follow from capitalising each snake_case word.
_WIRE_NAME_OVERRIDES: Final[Mapping[str, str]] = {
    "id": "Id",
    "redirect_url": "RedirectURL",
    "javascript": "JavaScript",
}

#: Models exchanged under PascalCase names.
_PASCAL_MODELS: Final[frozenset[type]] = frozenset(
    {
        Command,
        CommandParameter,
        CommandParameterSpec,
        FieldError,
        ImportFile,
        ImportFileCreate,
        ImportFileUpdate,
        Page,
        WriteResult,
    }
)

# Year, month, day, hour, minute, then optional second, fraction and zone.
_DATETIME: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})"
    r"(?::(\d{2})(?:[.,](\d{1,7}))?)?"
    r"([Zz]|[+-]\d{2}:?\d{2})?"
)


#: Python 3.11 made ``datetime.fromisoformat`` read a ``Z`` zone and any number of
#: fraction digits; before that, only the general path below can.
_FROMISOFORMAT_TAKES_Z: Final = sys.version_info >= (3, 11)


def wire_name(attribute: str) -> str:
    """Map a model attribute name to its PascalCase wire name."""
    override_name = _WIRE_NAME_OVERRIDES.get(attribute)
    if override_name is not None:
        return override_name
    return "".join(word[:1].upper() + word[1:] for word in attribute.split("_"))


def parse_datetime(text: str) -> datetime:
    """Parse an API date-time into an aware datetime.

    Accepts ``YYYY-MM-DDTHH:MM`` with optional seconds, 0 to 7 fractional digits
    (a 7th digit, .NET's tick, is dropped) and an optional zone: ``Z`` or
    ``+hh:mm``/``-hh:mm``. A value without a zone is taken as UTC, since the API
    documents its times in UTC.

    Args:
        text: The wire value.

    Returns:
        An aware datetime; UTC unless the text carried another offset.

    Raises:
        ValueError: The text is not such a date-time, or names an impossible one.
    """
    match = _DATETIME.fullmatch(text)
    if match is None:
        raise ValueError("expected an ISO 8601 date-time such as 2025-01-15T10:30:00Z")
    if _FROMISOFORMAT_TAKES_Z and text[10] == "T" and text[-1] == "Z":
        # The shape the API sends, read by C code several times faster than the
        # groups below. The pattern has already refused what fromisoformat would
        # take and the API never sends; for such text both ways give one result,
        # down to dropping a 7th fraction digit. An impossible date falls through,
        # so that its message is the same on every Python.
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    tz = timezone.utc
    if zone is not None and zone not in ("Z", "z"):
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if offset >= timedelta(hours=24):
            raise ValueError("UTC offset out of range")
        tz = timezone(-offset if zone[0] == "-" else offset)

    return datetime(
        int(year),
        int(month),
        int(day),
        int(hour),
        int(minute),
        int(second) if second else 0,
        int(fraction[:6].ljust(6, "0")) if fraction else 0,
        tzinfo=tz,
    )


def format_datetime(value: datetime) -> str:
    """Format a datetime for the wire: ISO 8601 in UTC with a ``Z`` suffix.

    A naive datetime is taken as UTC, matching `parse_datetime`.
    """
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.replace(tzinfo=None).isoformat() + "Z"


# --- strict scalar hooks ----------------------------------------------------------------


def _structure_int(value: Any, _: type) -> int:
    # bool is an int subclass, and a float may already have lost digits.
    if type(value) is not int:
        raise TypeError("expected an integer")
    return value


def _structure_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError("expected a boolean")
    return value


def _structure_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _structure_datetime(value: Any, _: type) -> datetime:
    if not isinstance(value, str):
        raise TypeError("expected a date-time string")
    return parse_datetime(value)


def _structure_object_or_null(value: Any, _: type) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError("expected a JSON object or null")
    return dict(value)


def _structure_int_or_str(value: Any, _: type) -> int | str | None:
    if value is None or type(value) is int or isinstance(value, str):
        return value
    raise TypeError("expected an integer, a string or null")


def _array_hook(item_type: Any) -> Callable[[Any, Any], tuple[Any, ...]]:
    """Structure a JSON array (or null, as empty) into a tuple of ``item_type``."""

    def structure(value: Any, _: Any) -> tuple[Any, ...]:
        if value is None:
            return ()
        # cattrs would iterate a string or an object's keys; only arrays are arrays.
        if not isinstance(value, list | tuple):
            raise TypeError("expected a JSON array")
        return converter.structure(value, tuple[item_type, ...])

    return structure


# --- model hooks ------------------------------------------------------------------------


def _is_pascal_model(type_: Any) -> bool:
    return (get_origin(type_) or type_) in _PASCAL_MODELS


def _field_overrides(type_: Any) -> dict[str, Any]:
    model = get_origin(type_) or type_
    overrides: dict[str, Any] = {}
    for field in attrs.fields(model):
        hook: Callable[[Any, Any], Any] | None = None
        if field.name == "records":
            (record_type,) = get_args(type_) or (Any,)
            hook = _array_hook(record_type)
        elif field.name == "errors":
            hook = _array_hook(FieldError)
        elif field.name == "requires_parameters":
            hook = _array_hook(CommandParameterSpec)
        elif field.name == "value":
            hook = _structure_object_or_null
        elif field.name == "current_sort_direction":
            hook = _structure_int_or_str
        overrides[field.name] = override(rename=wire_name(field.name), struct_hook=hook)
    return overrides


def _make_structure(type_: Any) -> Callable[[Any, Any], Any]:
    generated = make_dict_structure_fn(
        type_, converter, _cattrs_forbid_extra_keys=False, **_field_overrides(type_)
    )

    def structure(value: Any, target: Any) -> Any:
        # Checked up front so a non-object fails once, here, and not per field.
        if not isinstance(value, Mapping):
            raise TypeError("expected a JSON object")
        return generated(value, target)

    return structure


def _make_unstructure(type_: Any) -> Callable[[Any], Any]:
    renames: dict[str, Any] = {
        field.name: override(rename=wire_name(field.name))
        for field in attrs.fields(get_origin(type_) or type_)
    }
    return make_dict_unstructure_fn(
        type_, converter, _cattrs_omit_if_default=True, **renames
    )


def _unstructure_tuple(value: tuple[Any, ...]) -> list[Any]:
    return [converter.unstructure(item) for item in value]


def _build_converter() -> cattrs.Converter:
    built = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
    built.register_structure_hook(int, _structure_int)
    built.register_structure_hook(bool, _structure_bool)
    built.register_structure_hook(str, _structure_str)
    built.register_structure_hook(datetime, _structure_datetime)
    built.register_unstructure_hook(datetime, format_datetime)
    built.register_unstructure_hook(tuple, _unstructure_tuple)
    built.register_structure_hook_factory(_is_pascal_model, _make_structure)
    built.register_unstructure_hook_factory(_is_pascal_model, _make_unstructure)
    return built


#: The SDK's only converter; cattrs' global converter is never touched.
converter: Final[cattrs.Converter] = _build_converter()


# --- the write result, by hand ----------------------------------------------------------


_TEXT_OR_NULL: Final = (str, type(None))
_FLAG_OR_NULL: Final = (bool, type(None))

#: The envelope's keys, in the order of `WriteResult`'s fields, with the exact
#: types a JSON decoder gives for each value (null standing for a missing key).
_ENVELOPE: Final = (
    ("WasSuccessful", (bool,)),
    ("Status", (int, type(None))),
    ("Message", _TEXT_OR_NULL),
    ("Value", (dict, type(None))),
    ("OpenInDialog", _FLAG_OR_NULL),
    ("OpenInWindow", _FLAG_OR_NULL),
    ("RedirectURL", _TEXT_OR_NULL),
    ("JavaScript", _TEXT_OR_NULL),
    ("UpdatedOn", _TEXT_OR_NULL),
    ("UpdatedBy", _TEXT_OR_NULL),
    ("Errors", (list, type(None))),
)
_ENVELOPE_KEYS: Final = tuple(key for key, _ in _ENVELOPE)
#: Every mix of those types that the hand-built path takes: 1,024 of them, so a
#: document's shape is checked by one lookup rather than a test per key.
_ENVELOPE_SHAPES: Final = frozenset(
    itertools.product(*(kinds for _, kinds in _ENVELOPE))
)


def _field_errors_by_hand(errors: list[Any] | None) -> tuple[FieldError, ...] | None:
    """The ``Errors`` the converter would build, or None when unsure it would."""
    if errors is None:
        return ()
    built = []
    for item in errors:
        if type(item) is not dict:
            return None
        name, message = item.get("PropertyName"), item.get("Message")
        if type(name) not in _TEXT_OR_NULL or type(message) not in _TEXT_OR_NULL:
            return None
        built.append(FieldError(name, message, item.get("AttemptedValue")))

    return tuple(built)


def _write_result_by_hand(data: Any) -> WriteResult | None:
    """The write result the converter would build, or None when unsure it would.

    Only the exact types a JSON decoder gives are taken (the converter also takes
    subclasses, other mappings and tuples), and a missing key and a null both give
    the field's default, as there. None leaves the document to the converter,
    which builds the model after all or reports the fault by its wire path.
    """
    if type(data) is not dict:
        return None
    # Read and type every key in C, through map, rather than key by key: this
    # runs once per create, and bulk jobs make many.
    values: tuple[Any, ...] = tuple(map(data.get, _ENVELOPE_KEYS))
    if tuple(map(type, values)) not in _ENVELOPE_SHAPES:
        return None
    (
        was_successful,
        status,
        message,
        value,
        open_in_dialog,
        open_in_window,
        redirect_url,
        javascript,
        stamp,
        updated_by,
        errors,
    ) = values
    updated_on = None
    if stamp is not None:
        try:
            updated_on = parse_datetime(stamp)
        except ValueError:
            return None
    field_errors = _field_errors_by_hand(errors)
    if field_errors is None:
        return None

    # Positional, in the model's field order, as keywords cost a third more here;
    # the tests that compare this path with the converter's would catch a swap.
    return WriteResult(
        was_successful,
        status,
        message,
        # A copy, as the converter makes: the model must not share the document.
        None if value is None else dict(value),
        open_in_dialog,
        open_in_window,
        redirect_url,
        javascript,
        updated_on,
        updated_by,
        field_errors,
    )


def _create_by_hand(record: ImportFileCreate) -> dict[str, Any]:
    """What the converter makes of a create payload, built directly.

    A bulk job encodes one per record, and the model's fields are checked when
    it is built, so there is nothing to convert: each value goes as it is, and
    the optional ones only when set. An int or str subclass, which the model
    accepts, becomes the plain value, as the JSON encoder takes no subclasses.
    """
    business_id, name = record.business_id, record.name
    if type(business_id) is not int:
        business_id = int.__index__(business_id)
    if type(name) is not str:
        name = str.__str__(name)
    wire: dict[str, Any] = {"BusinessId": business_id, "Name": name}
    if record.new_file_data_url is not None:
        wire["NewFileDataUrl"] = str.__str__(record.new_file_data_url)
    if record.clear_file_data_file is not None:
        wire["ClearFileDataFile"] = record.clear_file_data_file
    if record.imported is not None:
        wire["Imported"] = record.imported

    return wire


# --- entry points -----------------------------------------------------------------------


def to_wire(obj: Any) -> dict[str, Any]:
    """Turn a model into a JSON-ready dict with wire names.

    Args:
        obj: A model instance, such as `ImportFileCreate`.

    Returns:
        A dict with PascalCase keys; optional fields left as None are absent.

    Raises:
        TypeError: ``obj`` is not a model.
    """
    if type(obj) is ImportFileCreate:
        return _create_by_hand(obj)
    if not attrs.has(type(obj)):
        raise TypeError(f"not a model: {type(obj).__name__}")
    result: dict[str, Any] = converter.unstructure(obj)
    return result


def from_wire(cls: type[T], data: Any) -> T:
    """Build a model (or list of models) from decoded wire JSON.

    Args:
        cls: The target type, e.g. ``ImportFile``, ``WriteResult``,
            ``Page[ImportFile]`` or ``list[ImportFile]``.
        data: The decoded JSON value.

    Returns:
        An instance of ``cls``.

    Raises:
        WireFormatError: ``data`` does not fit ``cls``; its ``path`` names the
            offending place (``$`` for the whole document) and ``value`` holds
            the raw value there.
    """
    if cls is WriteResult:
        result = _write_result_by_hand(data)
        if result is not None:
            return cast(T, result)
    if get_origin(cls) in (list, tuple) and not isinstance(data, list):
        raise WireFormatError("expected a JSON array", path="$", value=data)
    try:
        return converter.structure(data, cls)
    except (
        BaseValidationError,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
    ) as exc:
        raise _wire_error(exc, data) from exc


def page_from_wire(record_cls: type[T], data: Any) -> Page[T]:
    """Build a listing page whose records are ``record_cls``.

    Raises:
        WireFormatError: As for `from_wire`.
    """
    return from_wire(Page[record_cls], data)  # type: ignore[valid-type]


def token_from_wire(data: Any, received_at: datetime | None = None) -> Token:
    """Build a token from the token endpoint's JSON answer.

    Args:
        data: The decoded answer, with ``access_token``, ``token_type``,
            ``expires_in`` and usually ``refresh_token``.
        received_at: Aware time the answer arrived; defaults to now. The expiry
            is this plus ``expires_in``.

    Returns:
        The token, with ``expires_at`` in UTC.

    Raises:
        WireFormatError: A field is missing or of the wrong type.
    """
    if not isinstance(data, Mapping):
        raise WireFormatError("expected a JSON object", path="$", value=data)
    access_token = _token_field(data, "access_token", str)
    token_type = _token_field(data, "token_type", str)
    expires_in = _token_field(data, "expires_in", int)
    if expires_in < 0:
        raise WireFormatError(
            "expected 0 or more seconds", path="expires_in", value=expires_in
        )
    refresh_token = data.get("refresh_token")
    if refresh_token is not None and not isinstance(refresh_token, str):
        raise WireFormatError(
            "expected a string", path="refresh_token", value=refresh_token
        )
    received = datetime.now(timezone.utc) if received_at is None else received_at
    try:
        expires_at = received.astimezone(timezone.utc) + timedelta(seconds=expires_in)
    except OverflowError:
        # No datetime lies that far ahead (past the year 9999).
        raise WireFormatError(
            "lifetime too long to give an expiry time",
            path="expires_in",
            value=expires_in,
        ) from None
    return Token(
        access_token=access_token,
        token_type=token_type,
        expires_in=expires_in,
        refresh_token=refresh_token,
        expires_at=expires_at,
    )


def _token_field(data: Mapping[str, Any], key: str, kind: type[T]) -> T:
    if key not in data:
        raise WireFormatError("required field is missing", path=key, value=None)
    value = data[key]
    if kind is int and isinstance(value, str) and value.isascii() and value.isdigit():
        # Some OAuth servers send the lifetime as text.
        value = int(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise WireFormatError(f"expected {kind.__name__}", path=key, value=value)
    return value


# --- error reporting --------------------------------------------------------------------


def _wire_error(exc: BaseException, data: Any) -> WireFormatError:
    """Describe the first failure inside a cattrs error by wire path and raw value."""
    steps: list[str | int] = []
    leaf = exc
    while isinstance(leaf, BaseValidationError) and leaf.exceptions:
        child = leaf.exceptions[0]
        for note in getattr(child, "__notes__", ()):
            if isinstance(note, AttributeValidationNote):
                steps.append(wire_name(note.name))
                break
            if isinstance(note, IterableValidationNote):
                steps.append(note.index)
                break
        leaf = child

    # Follow the steps through the raw document; stop where it is not the
    # container the model expected, since that is the real fault.
    value = data
    for depth, step in enumerate(steps):
        if isinstance(step, str):
            if not isinstance(value, Mapping):
                return _error("expected a JSON object", steps[:depth], value)
            if step not in value:
                return _error("required field is missing", steps[: depth + 1], None)
            value = value[step]
        else:
            if not isinstance(value, Sequence) or isinstance(value, str):
                return _error("expected a JSON array", steps[:depth], value)
            value = value[step]

    if isinstance(leaf, KeyError):
        reason = "required field is missing"
    else:
        reason = str(leaf) or type(leaf).__name__
    return _error(reason, steps, value)


def _error(reason: str, steps: Sequence[str | int], value: Any) -> WireFormatError:
    return WireFormatError(reason, path=_format_path(steps), value=value)


def _format_path(steps: Sequence[str | int]) -> str:
    text = ""
    for step in steps:
        if isinstance(step, int):
            text += f"[{step}]"
        else:
            text += f".{step}" if text else step
    return text or "$"
