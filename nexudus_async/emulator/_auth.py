"""Credentials: Basic and Bearer checks, and the token endpoint's two grants."""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from ._config import EmulatorConfig, User

__all__ = ["Authenticator", "GrantError", "Principal"]

_BAD_LOGIN: Final = "The user name or password is incorrect."
_BASIC_CACHE_SIZE: Final = 1024


@attrs.frozen
class Principal:
    """Who made a request: the user, and the client signature the throttle counts by."""

    user: User
    client: str


class GrantError(Exception):
    """A refusal from the token endpoint, in OAuth terms."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(error, description)
        self.error = error
        self.description = description


@attrs.define
class _Issued:
    user: User
    client: str
    expires_at: float


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class Authenticator:
    """Checks Authorization headers and issues, rotates and expires tokens."""

    def __init__(
        self, config: EmulatorConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._config = config
        self._clock = clock
        self._access: dict[str, _Issued] = {}
        self._refresh: dict[str, _Issued] = {}
        # One refresh token per client: a new grant for a client retires its last one.
        self._refresh_by_client: dict[str, str] = {}
        self._basic: dict[str, Principal] = {}

    def authenticate(self, header: str | None) -> Principal | None:
        """The principal an ``Authorization`` header proves, or ``None``."""
        if not header:
            return None
        scheme, _, credentials = header.partition(" ")
        scheme = scheme.lower()
        credentials = credentials.strip()
        if scheme == "bearer":
            return self._bearer(credentials)
        if scheme == "basic":
            return self._basic_login(credentials)
        return None

    def password_grant(
        self, form: Mapping[str, str], client_id: str | None
    ) -> dict[str, Any]:
        """Answer a password grant.

        Raises:
            GrantError: wrong credentials, a missing or wrong two-factor code, or a
                password that must be reset.
        """
        user = self._config.user(form.get("username", ""))
        if user is None or not _same(form.get("password", ""), user.password):
            raise GrantError("invalid_grant", _BAD_LOGIN)
        if user.totp is not None:
            code = form.get("totp", "").strip()
            if not code:
                raise GrantError(
                    "two_factor_auth_check",
                    "This user has two-factor authentication on; send the current code as totp.",
                )
            if not _same(code, user.totp):
                raise GrantError(
                    "invalid_grant", "The two-factor authentication code is incorrect."
                )
        if user.must_reset_password:
            raise GrantError(
                "must_reset_password",
                "The user must reset the password before signing in.",
            )

        return self._issue(user, client_id or user.email)

    def refresh_grant(
        self, form: Mapping[str, str], client_id: str | None
    ) -> dict[str, Any]:
        """Answer a refresh grant, retiring the refresh token it used.

        Raises:
            GrantError: an unknown, used, expired or foreign refresh token, or no
                ``client_id`` when one is required.
        """
        token = form.get("refresh_token", "")
        if not client_id and self._config.refresh_requires_client_id:
            raise GrantError(
                "invalid_grant",
                "The refresh grant needs the client_id the token was issued to.",
            )
        issued = self._refresh.get(token)
        if issued is None:
            raise GrantError(
                "invalid_grant",
                "The refresh token is invalid or has already been used.",
            )
        if client_id and client_id != issued.client:
            raise GrantError(
                "invalid_grant",
                "The refresh token was issued to a different client_id.",
            )

        del self._refresh[token]
        if self._refresh_by_client.get(issued.client) == token:
            del self._refresh_by_client[issued.client]
        if issued.expires_at <= self._clock():
            raise GrantError("invalid_grant", "The refresh token has expired.")

        return self._issue(issued.user, issued.client)

    def _issue(self, user: User, client: str) -> dict[str, Any]:
        now = self._clock()
        access = secrets.token_urlsafe(32)
        refresh = secrets.token_urlsafe(32)
        self._access[access] = _Issued(user, client, now + self._config.token_lifetime)
        self._prune(now)

        retired = self._refresh_by_client.pop(client, None)
        if retired is not None:
            self._refresh.pop(retired, None)
        self._refresh[refresh] = _Issued(
            user, client, now + self._config.refresh_token_lifetime
        )
        self._refresh_by_client[client] = refresh

        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": math.ceil(self._config.token_lifetime),
            "refresh_token": refresh,
        }

    def _prune(self, now: float) -> None:
        # Keep the token table from growing without bound when clients log in in a loop.
        if len(self._access) % 256 == 0:
            expired = [
                token
                for token, issued in self._access.items()
                if issued.expires_at <= now
            ]
            for token in expired:
                del self._access[token]

    def _bearer(self, token: str) -> Principal | None:
        issued = self._access.get(token)
        if issued is None:
            return None
        if issued.expires_at <= self._clock():
            del self._access[token]
            return None
        return Principal(issued.user, issued.client)

    def _basic_login(self, credentials: str) -> Principal | None:
        known = self._basic.get(credentials)
        if known is not None:
            return known

        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        email, colon, password = decoded.partition(":")
        user = self._config.user(email)
        if not colon or user is None or not _same(password, user.password):
            return None

        principal = Principal(user, user.email)
        if len(self._basic) >= _BASIC_CACHE_SIZE:
            self._basic.clear()
        self._basic[credentials] = principal

        return principal
