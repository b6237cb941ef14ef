"""Typed records exchanged with the CrmOpportunityImportFile endpoints.

Attributes are snake_case; `nexudus_async._convert` maps them to and from the
API's PascalCase wire names. Every model is frozen and slotted.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, Generic, TypeVar

import attrs

__all__ = [
    "Command",
    "CommandParameter",
    "CommandParameterSpec",
    "FieldError",
    "ImportFile",
    "ImportFileCreate",
    "ImportFileUpdate",
    "Page",
    "SortDirection",
    "Token",
    "WriteResult",
]

T = TypeVar("T")


# Checks of the request models. A wrong type there is a programming mistake, so it
# fails at construction, naming the field, rather than at send time with a server
# error or not at all. Bulk jobs build one model per record, so the models test the
# usual shape at once and call these, field by field, only when that test fails.


def _integer(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    # bool is an int subclass, but True is no id.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{attribute.name} must be an int, not {type(value).__name__}")


def _text(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{attribute.name} must be a str, not {type(value).__name__}")


def _optional_text(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(
            f"{attribute.name} must be a str or None, not {type(value).__name__}"
        )


def _optional_flag(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        raise TypeError(
            f"{attribute.name} must be a bool or None, not {type(value).__name__}"
        )


#: The check of each field of the request models.
_REQUEST_CHECKS: dict[str, Callable[[Any, attrs.Attribute[Any], Any], None]] = {
    "id": _integer,
    "business_id": _integer,
    "name": _text,
    "new_file_data_url": _optional_text,
    "clear_file_data_file": _optional_flag,
    "imported": _optional_flag,
}


def _check_request(instance: Any) -> None:
    """Run each field's check in field order; the first wrong field raises."""
    for attribute in attrs.fields(type(instance)):
        _REQUEST_CHECKS[attribute.name](
            instance, attribute, getattr(instance, attribute.name)
        )


class SortDirection(enum.Enum):
    """Order of a listing; the value is what the ``dir`` query parameter carries."""

    ASCENDING = 1
    DESCENDING = -1


@attrs.frozen
class ImportFileCreate:
    """The body of a create request.

    Optional fields left as None are not sent, so the server applies its defaults.
    A field of the wrong type raises ``TypeError``, naming it, when the model is
    built; `nexudus_async.validate_create` builds one from untrusted input.

    Attributes:
        business_id: Location (business) the file belongs to.
        name: Name of the import file.
        new_file_data_url: URL the server downloads the file data from.
        clear_file_data_file: True removes the current file data.
        imported: Whether the file counts as imported.
    """

    business_id: int
    name: str
    new_file_data_url: str | None = None
    clear_file_data_file: bool | None = None
    imported: bool | None = None

    def __attrs_post_init__(self) -> None:
        if not (
            type(self.business_id) is int
            and type(self.name) is str
            and self.new_file_data_url is None
            and self.clear_file_data_file is None
            and self.imported is None
        ):
            _check_request(self)


@attrs.frozen
class ImportFileUpdate:
    """The body of an update request: a whole record, identified by ``id``.

    The API has no partial update; send back every field the record should keep.
    A field of the wrong type raises ``TypeError``, naming it, when the model is
    built.

    Attributes:
        id: The record to replace.
        business_id: Location (business) the file belongs to.
        name: Name of the import file.
        new_file_data_url: URL the server downloads the file data from.
        clear_file_data_file: True removes the current file data.
        imported: Whether the file counts as imported.
    """

    id: int
    business_id: int
    name: str
    new_file_data_url: str | None = None
    clear_file_data_file: bool | None = None
    imported: bool | None = None

    def __attrs_post_init__(self) -> None:
        # Updates are rare; the field by field checks are enough.
        _check_request(self)


@attrs.frozen
class ImportFile:
    """A stored import file as the API returns it.

    Attributes:
        id: Record id, assigned by the server.
        business_id: Location (business) the file belongs to.
        name: Name of the import file.
        unique_id: Server-assigned GUID.
        imported: Whether the file counts as imported.
        file_data_file_name: Name of the stored file; read-only.
        new_file_data_url: URL last given for new file data.
        clear_file_data_file: The last "remove file data" flag.
        created_on: Creation time, timezone-aware.
        updated_on: Last update time, timezone-aware.
        updated_by: Who made the last update (an email address).
        is_new: Whether the server flags the record as recently created.
        system_id: Free-form data visible only through the API.
    """

    id: int
    business_id: int
    name: str
    unique_id: str | None = None
    imported: bool | None = None
    file_data_file_name: str | None = None
    new_file_data_url: str | None = None
    clear_file_data_file: bool | None = None
    created_on: datetime | None = None
    updated_on: datetime | None = None
    updated_by: str | None = None
    is_new: bool | None = None
    system_id: str | None = None


@attrs.frozen
class FieldError:
    """One field the server refused, from a write result's ``Errors``.

    Attributes:
        property_name: Wire name of the field, e.g. ``"Name"``.
        message: The server's reason, e.g. ``"is a required field"``.
        attempted_value: The value the server saw; any JSON value.
    """

    property_name: str | None = None
    message: str | None = None
    attempted_value: Any = None


@attrs.frozen
class WriteResult:
    """The envelope answering a create, update, delete or command.

    Attributes:
        was_successful: The server's verdict.
        status: HTTP-like status the server put in the body, when present.
        message: Human-readable summary.
        value: On CRUD success an object holding ``Id``; otherwise usually None.
        open_in_dialog: UI hint from the server.
        open_in_window: UI hint from the server.
        redirect_url: A download or follow-up location some commands return.
        javascript: Script some commands return for the web UI.
        updated_on: Time of the change, timezone-aware.
        updated_by: Who made the change.
        errors: Field errors; empty when the server sent none or null.
    """

    was_successful: bool
    status: int | None = None
    message: str | None = None
    value: dict[str, Any] | None = None
    open_in_dialog: bool | None = None
    open_in_window: bool | None = None
    redirect_url: str | None = None
    javascript: str | None = None
    updated_on: datetime | None = None
    updated_by: str | None = None
    errors: tuple[FieldError, ...] = ()

    @property
    def id(self) -> int | None:
        """The affected record's id from ``value["Id"]``, if it is an integer."""
        if self.value is None:
            return None
        found = self.value.get("Id")
        if type(found) is int:
            return found
        # bool is an int subclass; a flag is never an id.
        if isinstance(found, int) and not isinstance(found, bool):
            return found
        return None


@attrs.frozen(kw_only=True)
class Page(Generic[T]):
    """One page of a listing.

    Attributes:
        records: The records on this page.
        current_page: 1-based page number.
        has_next_page: Whether another page follows.
        has_previous_page: Whether a page precedes this one.
        current_page_size: Page size the server used.
        current_order_field: Field the listing is ordered by.
        current_sort_direction: Direction as the server reports it (number or name).
        first_item: 1-based position of the first record on this page.
        last_item: 1-based position of the last record on this page.
        total_items: Records matching the query across all pages.
        total_pages: Number of pages.
    """

    records: tuple[T, ...]
    current_page: int
    has_next_page: bool
    has_previous_page: bool
    current_page_size: int | None = None
    current_order_field: str | None = None
    current_sort_direction: int | str | None = None
    first_item: int | None = None
    last_item: int | None = None
    total_items: int | None = None
    total_pages: int | None = None


def _masked(value: str | None) -> str:
    return "None" if value is None else "'***'"


def _lifetime(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    _integer(instance, attribute, value)
    if value < 0:
        raise ValueError(f"{attribute.name} must be 0 or more, not {value}")


def _aware(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    # A naive time cannot be compared with the aware clock the expiry checks use.
    if not isinstance(value, datetime):
        raise TypeError(
            f"{attribute.name} must be a datetime, not {type(value).__name__}"
        )
    if value.utcoffset() is None:
        raise ValueError(f"{attribute.name} must be timezone-aware, not naive")


@attrs.frozen
class Token:
    """An OAuth bearer token from the token endpoint.

    The repr hides both tokens so a logged or printed token leaks nothing.
    Building one with a negative ``expires_in`` or a naive ``expires_at``
    raises ``ValueError``.

    Attributes:
        access_token: The bearer token.
        token_type: Token type, ``"bearer"``.
        expires_in: Lifetime in seconds, as the server stated it; 0 or more.
        refresh_token: Token for the refresh grant, if one was issued.
        expires_at: Aware UTC time the access token expires, computed on receipt.
    """

    access_token: str = attrs.field(repr=_masked)
    token_type: str
    expires_in: int = attrs.field(validator=_lifetime)
    refresh_token: str | None = attrs.field(repr=_masked)
    expires_at: datetime = attrs.field(validator=_aware)

    def expires_within(self, seconds: float, *, now: datetime | None = None) -> bool:
        """Tell whether the token expires within the given time.

        Args:
            seconds: Horizon in seconds; 0 asks whether it has already expired.
            now: Aware current time; defaults to the clock.

        Returns:
            True if ``expires_at`` is at or before ``now + seconds``.
        """
        current = datetime.now(timezone.utc) if now is None else now
        return self.expires_at <= current + timedelta(seconds=seconds)

    def is_expired(self, *, now: datetime | None = None, leeway: float = 0.0) -> bool:
        """Tell whether the token is expired, or will be within ``leeway`` seconds.

        Args:
            now: Aware current time; defaults to the clock.
            leeway: Seconds of margin, so a token is not used just before it lapses.

        Returns:
            True when the token should no longer be sent.
        """
        return self.expires_within(leeway, now=now)


@attrs.frozen
class CommandParameter:
    """A parameter value passed when running a command.

    Attributes:
        name: Parameter name as the command declares it.
        value: The value; the API takes parameter values as text.
        type: Declared parameter type, sent only when set.
    """

    name: str
    value: str
    type: str | None = None


@attrs.frozen
class CommandParameterSpec:
    """A parameter a command declares it needs.

    Attributes:
        name: Parameter name.
        type: Declared type, as the server names it.
    """

    name: str | None = None
    type: str | None = None


@attrs.frozen
class Command:
    """A server-side command that can run on import files.

    Attributes:
        key: Identifier used to run the command.
        name: Display name.
        applies_only_to_multiple_entities: Needs several records to run.
        applies_only_to_one_entity: Runs on exactly one record.
        applies_only_to_two_entities: Runs on exactly two records.
        needs_entities_to_run: Needs at least one record id.
        order: Display order.
        requires_parameters: Parameters the command expects.
        display_in_dropdown: UI hint.
        display_in_dropdown_v2: UI hint.
        display_in_grid: UI hint.
        icon: UI icon name.
    """

    key: str
    name: str | None = None
    applies_only_to_multiple_entities: bool | None = None
    applies_only_to_one_entity: bool | None = None
    applies_only_to_two_entities: bool | None = None
    needs_entities_to_run: bool | None = None
    order: int | None = None
    requires_parameters: tuple[CommandParameterSpec, ...] = ()
    display_in_dropdown: bool | None = None
    display_in_dropdown_v2: bool | None = None
    display_in_grid: bool | None = None
    icon: str | None = None
