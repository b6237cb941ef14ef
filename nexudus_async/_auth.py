"""Credentials: Basic, a static Bearer token, and the password grant with refresh.

The public classes only hold configuration; a client turns them into an
``Authenticator`` of its own, which hands out ``Authorization`` header values and
renews the access token when it is about to expire or the server refuses it.
"""

from __future__ import annotations

import base64
import copy
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import anyio
import anyio.to_thread
import attrs

from . import _json
from ._constants import TOKEN_PATH, TOKEN_REFRESH_LEEWAY
from ._convert import token_from_wire
from ._errors import AuthError, NexudusError, ProtocolError, WireFormatError
from ._models import Token

__all__ = [
    "Auth",
    "Authenticator",
    "BasicAuth",
    "BearerAuth",
    "FileTokenStore",
    "PasswordAuth",
    "TokenFetcher",
    "TokenStore",
    "make_authenticator",
]

logger = logging.getLogger(__name__)

#: Posts a form to the token endpoint with extra headers; returns the decoded JSON.
TokenFetcher = Callable[[Mapping[str, str], Mapping[str, str]], Awaitable[Any]]


def _masked(value: object) -> str:
    return "None" if value is None else "'***'"


def _not_empty(_instance: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if not value:
        raise ValueError(f"{attribute.name} must not be empty")


@runtime_checkable
class TokenStore(Protocol):
    """Keeps a token between runs, so a restart need not sign in again."""

    async def load(self) -> Token | None:
        """Return the saved token, or ``None`` when there is none."""
        ...

    async def save(self, token: Token) -> None:
        """Replace the saved token with ``token``."""
        ...


def _no_colon(_instance: object, _attribute: attrs.Attribute[Any], value: str) -> None:
    if ":" in value:
        raise ValueError("a Basic auth user name cannot contain ':'")


@attrs.frozen(eq=False)
class BasicAuth:
    """HTTP Basic credentials, sent with every request.

    Attributes:
        username: The account's email address.
        password: Its password; encoded as UTF-8.
    """

    username: str = attrs.field(validator=[_not_empty, _no_colon])
    password: str = attrs.field(repr=_masked)


@attrs.frozen(eq=False)
class BearerAuth:
    """A fixed access token, sent with every request and never renewed.

    Attributes:
        token: The access token.
    """

    token: str = attrs.field(repr=_masked, validator=_not_empty)


@attrs.frozen(eq=False)
class PasswordAuth:
    """The OAuth password grant, with the access token renewed automatically.

    The first request signs in at ``POST /api/token``. The token is renewed with
    the refresh grant shortly before it expires or when the server answers 401;
    when the server refuses the refresh, the client signs in again once.

    Attributes:
        email: The account's email address.
        password: Its password.
        totp: The current two-factor code, for accounts that need one: a string,
            or better a callable returning the code at the moment it is needed.
        client_id: Identifies this application to the token endpoint; by default
            the server uses the email. Tokens are issued per client id, so two
            programs sharing an account should each use their own.
        token_store: Where to load the token from before signing in, and save each
            new token to.
    """

    email: str = attrs.field(validator=_not_empty)
    password: str = attrs.field(repr=_masked)
    totp: str | Callable[[], str] | None = attrs.field(
        default=None, kw_only=True, repr=_masked
    )
    client_id: str | None = attrs.field(default=None, kw_only=True)
    token_store: TokenStore | None = attrs.field(default=None, kw_only=True)


Auth = BasicAuth | BearerAuth | PasswordAuth


class Authenticator(Protocol):
    """What a client asks of its credentials."""

    async def header(self) -> str:
        """The ``Authorization`` header value for the next request."""
        ...

    async def renew(self, rejected: str) -> bool:
        """Get new credentials after ``rejected`` met a 401; ``False`` if impossible."""
        ...


class _Static:
    """Credentials that never change: Basic, or a fixed Bearer token."""

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "_Static(***)"

    async def header(self) -> str:
        return self._value

    async def renew(self, rejected: str) -> bool:
        return False


def _bearer(token: Token) -> str:
    return f"Bearer {token.access_token}"


class _TokenManager:
    """Obtains and renews access tokens, one renewal at a time.

    Every caller that needs a renewal queues on one lock. The first one does the
    work; the others, finding that a renewal finished while they waited, take its
    result, success or failure, instead of starting another.
    """

    def __init__(
        self,
        auth: PasswordAuth,
        fetch: TokenFetcher,
        leeway: float = TOKEN_REFRESH_LEEWAY,
    ) -> None:
        self._auth = auth
        self._fetch = fetch
        self._leeway = leeway
        self._token: Token | None = None
        self._loaded = auth.token_store is None
        self._lock = anyio.Lock()
        self._rounds = 0
        self._failure: NexudusError | None = None

    def __repr__(self) -> str:
        return f"_TokenManager(auth={self._auth!r}, token={self._token!r})"

    async def header(self) -> str:
        token = self._token
        if token is not None and not self._expiring(token):
            return _bearer(token)

        return await self._renew(rejected=None)

    async def renew(self, rejected: str) -> bool:
        await self._renew(rejected=rejected)

        return True

    def _expiring(self, token: Token) -> bool:
        # A short-lived token gets a tenth of its life as margin, not a fixed minute
        # that would have it renewed before every request.
        leeway = min(self._leeway, token.expires_in / 10)
        return token.is_expired(leeway=leeway)

    def _usable(self, rejected: str | None) -> bool:
        token = self._token
        return (
            token is not None
            and not self._expiring(token)
            and _bearer(token) != rejected
        )

    async def _renew(self, rejected: str | None) -> str:
        seen = self._rounds
        async with self._lock:
            if self._rounds != seen and self._failure is not None:
                # The renewal this caller waited for failed: report that, once more,
                # rather than hammering the token endpoint with the same credentials.
                raise copy.copy(self._failure)
            if not self._loaded:
                await self._load()
            if self._usable(rejected):
                assert self._token is not None
                return _bearer(self._token)
            try:
                token = await self._obtain()
            except NexudusError as exc:
                self._failure = exc
                self._rounds += 1
                raise
            self._token, self._failure = token, None
            self._rounds += 1
            await self._save(token)

            return _bearer(token)

    async def _obtain(self) -> Token:
        current = self._token
        if current is not None and current.refresh_token:
            try:
                return await self._refresh_grant(current.refresh_token)
            except AuthError as exc:
                logger.info("token refresh refused (%s); signing in again", exc.error)

        return await self._password_grant()

    async def _password_grant(self) -> Token:
        auth = self._auth
        form = {
            "grant_type": "password",
            "username": auth.email,
            "password": auth.password,
        }
        totp = auth.totp() if callable(auth.totp) else auth.totp
        if totp:
            form["totp"] = totp
        headers = {"client_id": auth.client_id} if auth.client_id else {}

        return await self._grant(form, headers)

    async def _refresh_grant(self, refresh_token: str) -> Token:
        # The refresh grant must name the client id the token was issued to, which
        # the server took to be the email when none was given.
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        headers = {"client_id": self._auth.client_id or self._auth.email}

        return await self._grant(form, headers)

    async def _grant(
        self, form: Mapping[str, str], headers: Mapping[str, str]
    ) -> Token:
        logger.debug("requesting a token (%s grant)", form["grant_type"])
        # Counting the lifetime from before the request errs on the early side.
        sent_at = datetime.now(timezone.utc)
        data = await self._fetch(form, headers)
        try:
            return token_from_wire(data, received_at=sent_at)
        except WireFormatError as exc:
            # The answer may hold a token: keep neither the body nor the bad value.
            raise ProtocolError(
                f"token answer unusable at {exc.path}",
                method="POST",
                path=TOKEN_PATH,
                status=200,
            ) from None

    async def _load(self) -> None:
        self._loaded = True
        store = self._auth.token_store
        if store is None:
            return
        try:
            self._token = await store.load()
        except Exception as exc:  # a broken cache must not stop the client signing in
            logger.warning("could not load the saved token (%s)", type(exc).__name__)

    async def _save(self, token: Token) -> None:
        store = self._auth.token_store
        if store is None:
            return
        try:
            await store.save(token)
        except Exception as exc:  # the token works even if it cannot be kept
            logger.warning("could not save the token (%s)", type(exc).__name__)


def make_authenticator(auth: Auth, fetch: TokenFetcher) -> Authenticator:
    """Build the per-client credential handler for ``auth``.

    Args:
        auth: The configured credentials.
        fetch: How to reach the token endpoint (used by ``PasswordAuth`` only).

    Returns:
        An object handing out ``Authorization`` header values.

    Raises:
        TypeError: ``auth`` is none of the supported credential types.
    """
    if isinstance(auth, BasicAuth):
        pair = f"{auth.username}:{auth.password}".encode()
        return _Static("Basic " + base64.b64encode(pair).decode("ascii"))
    if isinstance(auth, BearerAuth):
        return _Static(f"Bearer {auth.token}")
    if isinstance(auth, PasswordAuth):
        return _TokenManager(auth, fetch)
    raise TypeError(f"unsupported auth: {type(auth).__name__}")


class FileTokenStore:
    """Keeps the token in a JSON file readable by its owner only (mode 0600).

    The file holds live credentials: keep it out of shared folders and version
    control. An unreadable or malformed file counts as no token.

    Args:
        path: The file; created on the first save.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)

    def __repr__(self) -> str:
        return f"FileTokenStore({str(self._path)!r})"

    @property
    def path(self) -> Path:
        """The file the token is kept in."""
        return self._path

    async def load(self) -> Token | None:
        """Read the saved token; ``None`` if the file is missing or unusable."""
        return await anyio.to_thread.run_sync(self._read)

    async def save(self, token: Token) -> None:
        """Write ``token`` to the file, replacing it atomically."""
        await anyio.to_thread.run_sync(self._write, token)

    def _read(self) -> Token | None:
        try:
            data = _json.loads(self._path.read_bytes())
            expires_at = datetime.fromisoformat(data["expires_at"])
            if expires_at.tzinfo is None:
                raise ValueError("naive expiry")
            return Token(
                access_token=str(data["access_token"]),
                token_type=str(data["token_type"]),
                expires_in=int(data["expires_in"]),
                refresh_token=None
                if data["refresh_token"] is None
                else str(data["refresh_token"]),
                expires_at=expires_at,
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring unusable token file (%s)", type(exc).__name__)
            return None

    def _write(self, token: Token) -> None:
        data = {
            "access_token": token.access_token,
            "token_type": token.token_type,
            "expires_in": token.expires_in,
            "refresh_token": token.refresh_token,
            "expires_at": token.expires_at.isoformat(),
        }
        temporary = self._path.with_name(self._path.name + ".tmp")
        # A leftover temporary file could carry looser permissions; start afresh.
        temporary.unlink(missing_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(_json.dumps(data))
        os.replace(temporary, self._path)
