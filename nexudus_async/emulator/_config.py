"""The emulator's settings: users, businesses, limits, faults and behaviour switches."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Final, Literal

import attrs

from ._faults import Faults
from ._throttle import Limits

__all__ = [
    "ALL_ROLES",
    "DEFAULT_ADMIN",
    "DEFAULT_BUSINESSES",
    "DEFAULT_READER",
    "ENTITY",
    "READ_ROLES",
    "EmulatorConfig",
    "User",
    "role",
]

ENTITY: Final = "CrmOpportunityImportFile"


def role(action: str) -> str:
    """The role name for an action on the entity, e.g. ``role("Create")``."""
    return f"{ENTITY}-{action}"


ALL_ROLES: Final = frozenset(
    role(action) for action in ("List", "Read", "Create", "Edit", "Delete", "Update")
)
READ_ROLES: Final = frozenset({role("List"), role("Read")})


def _roles(value: Iterable[str] | None) -> frozenset[str] | None:
    return None if value is None else frozenset(value)


@attrs.frozen
class User:
    """A login the emulator accepts.

    Args:
        email: the user name for the password grant and Basic authentication.
        password: the password.
        roles: the role names the user holds, such as
            ``"CrmOpportunityImportFile-Create"``; ``None`` means a full unrestricted
            administrator.
        totp: when set, two-factor authentication is on and this is the code the token
            endpoint accepts as the current one.
        must_reset_password: when true, the password grant answers
            ``must_reset_password``.
    """

    email: str
    password: str = attrs.field(repr=False)
    roles: frozenset[str] | None = attrs.field(default=None, converter=_roles)
    totp: str | None = attrs.field(default=None, repr=False)
    must_reset_password: bool = False

    def may(self, role_name: str) -> bool:
        """Whether the user holds ``role_name`` (administrators hold every role)."""
        return self.roles is None or role_name in self.roles


# 123 is the business of the vendor's example create body, so that body works as is.
DEFAULT_BUSINESSES: Final = frozenset({1, 2, 3, 123})
DEFAULT_ADMIN: Final = User("admin@example.com", "password")
DEFAULT_READER: Final = User("reader@example.com", "password", roles=READ_ROLES)


def _users(value: Iterable[User]) -> tuple[User, ...]:
    users = tuple(value)
    emails = [user.email.casefold() for user in users]
    if len(set(emails)) != len(emails):
        raise ValueError("two users share an email address")
    return users


def _businesses(value: Iterable[int]) -> frozenset[int]:
    return frozenset(value)


def _time_scale(
    instance: object, attribute: attrs.Attribute[float], value: float
) -> None:
    if not value > 0:
        raise ValueError(f"time_scale must be above zero, not {value!r}")


def _lifetime(
    instance: object, attribute: attrs.Attribute[float], value: float
) -> None:
    # Finite too: expires_in is sent as a whole number of seconds.
    if not 0 < value < math.inf:
        raise ValueError(
            f"{attribute.name} must be a number of seconds above zero, not {value!r}"
        )


def _page_size(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and value < 1:
        raise ValueError(
            f"max_page_size must be a positive integer or None, not {value!r}"
        )


_one_of: Final = attrs.validators.in_


@attrs.frozen(kw_only=True)
class EmulatorConfig:
    """Everything the emulator can be told; the defaults behave like the documented API.

    Args:
        users: the logins accepted. By default a full administrator
            ``admin@example.com`` / ``password`` and ``reader@example.com`` /
            ``password``, who holds only the List and Read roles.
        businesses: the business (location) ids a record may belong to; by default
            1, 2, 3 and 123 (the id in the vendor's example body).
        limits: the throttle windows; :meth:`Limits.off` disables throttling.
        time_scale: how much faster than real time the throttle's clock runs; 60 makes
            a throttle "minute" pass in one real second.
        faults: which requests fail on purpose.
        throttle_status: 409 (documented) or 429 for throttled requests.
        token_lifetime: real seconds an access token lives; sent as ``expires_in``,
            rounded up to a whole second.
        refresh_token_lifetime: real seconds a refresh token lives.
        first_id: the Id given to the first record created.
        dir_encoding: ``"rest"`` reads ``dir=1`` as ascending and ``-1`` as
            descending; ``"sdk"`` reads ``0`` as ascending and ``1`` as descending.
        name_filter: ``"contains"`` matches ``CrmOpportunityImportFile_Name`` as a
            case-insensitive substring; ``"exact"`` as an exact, case-sensitive match.
        strict_names: when true, unknown body fields and unknown query parameters
            answer 400; when false they are ignored.
        missing_role_status: 401 (documented) or 403 for a user without the role.
        validation_status: 400 (documented) or 200 for a body that fails validation;
            either way the body says ``WasSuccessful: false``.
        missing_record_status: the status for PUT or DELETE of an Id that does not
            exist.
        max_page_size: larger ``size`` values are reduced to this; ``None`` for no cap.
        timestamp_suffix: appended to ``CreatedOn``/``UpdatedOn``; ``"Z"`` for UTC,
            ``""`` for times without a zone.
        client_id_from: where the token endpoint reads ``client_id``: ``"both"``,
            ``"header"`` or ``"form"``.
        refresh_requires_client_id: when true, the refresh grant without a
            ``client_id`` answers ``invalid_grant``.
    """

    users: tuple[User, ...] = attrs.field(
        default=(DEFAULT_ADMIN, DEFAULT_READER), converter=_users
    )
    businesses: frozenset[int] = attrs.field(
        default=DEFAULT_BUSINESSES, converter=_businesses
    )
    limits: Limits = attrs.field(factory=Limits.documented)
    time_scale: float = attrs.field(default=1.0, validator=_time_scale)
    faults: Faults = attrs.field(factory=Faults)
    throttle_status: int = attrs.field(default=409, validator=_one_of((409, 429)))
    token_lifetime: float = attrs.field(default=86400.0, validator=_lifetime)
    refresh_token_lifetime: float = attrs.field(
        default=15 * 86400.0, validator=_lifetime
    )
    first_id: int = 1
    dir_encoding: Literal["rest", "sdk"] = attrs.field(
        default="rest", validator=_one_of(("rest", "sdk"))
    )
    name_filter: Literal["contains", "exact"] = attrs.field(
        default="contains", validator=_one_of(("contains", "exact"))
    )
    strict_names: bool = True
    missing_role_status: int = attrs.field(default=401, validator=_one_of((401, 403)))
    validation_status: int = attrs.field(default=400, validator=_one_of((400, 200)))
    missing_record_status: int = attrs.field(
        default=404, validator=_one_of((404, 400, 500))
    )
    max_page_size: int | None = attrs.field(default=1000, validator=_page_size)
    timestamp_suffix: Literal["Z", ""] = attrs.field(
        default="Z", validator=_one_of(("Z", ""))
    )
    client_id_from: Literal["both", "header", "form"] = attrs.field(
        default="both", validator=_one_of(("both", "header", "form"))
    )
    refresh_requires_client_id: bool = True

    def user(self, email: str) -> User | None:
        """The user with this email (case-insensitive), if configured."""
        folded = email.casefold()
        return next(
            (user for user in self.users if user.email.casefold() == folded), None
        )
