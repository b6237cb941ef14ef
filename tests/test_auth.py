"""Credentials: header values, the password and refresh grants, token storage."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from nexudus_async._auth import (
    BasicAuth,
    BearerAuth,
    FileTokenStore,
    PasswordAuth,
    TokenStore,
    make_authenticator,
)
from nexudus_async._errors import AuthError, ProtocolError, RequestTimeoutError
from nexudus_async._models import Token

SECRET_PASSWORD = "pw-Zq8!secret"
EMAIL = "admin@example.com"


def _answer(n: int, expires_in: int = 3600) -> dict[str, Any]:
    return {
        "access_token": f"access-{n}",
        "token_type": "bearer",
        "expires_in": expires_in,
        "refresh_token": f"refresh-{n}",
    }


def _token(
    n: int, *, expires_in: float = 3600.0, lifetime: int = 3600, refresh: bool = True
) -> Token:
    return Token(
        access_token=f"access-{n}",
        token_type="bearer",
        expires_in=lifetime,
        refresh_token=f"refresh-{n}" if refresh else None,
        expires_at=datetime.now(timezone.utc) + timedelta(seconds=expires_in),
    )


class FakeTokenEndpoint:
    """Answers grants from a script; records every form and header set it got."""

    def __init__(
        self, *replies: dict[str, Any] | Exception, delay: float = 0.0
    ) -> None:
        self.replies = list(replies)
        self.calls: list[tuple[dict[str, str], dict[str, str]]] = []
        self.delay = delay

    @property
    def grants(self) -> list[str]:
        return [form["grant_type"] for form, _ in self.calls]

    async def __call__(
        self, form: Mapping[str, str], headers: Mapping[str, str]
    ) -> Any:
        self.calls.append((dict(form), dict(headers)))
        await asyncio.sleep(self.delay)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


class MemoryStore:
    """A token store in memory."""

    def __init__(self, token: Token | None = None) -> None:
        self.token = token
        self.saved: list[Token] = []

    async def load(self) -> Token | None:
        return self.token

    async def save(self, token: Token) -> None:
        self.saved.append(token)
        self.token = token


def _refused() -> AuthError:
    return AuthError(
        error="invalid_grant", description="The refresh token is invalid.", status=400
    )


class TestStaticCredentials:
    async def test_basic_is_utf8(self) -> None:
        """Basic credentials are user:password in UTF-8, base64-encoded."""
        auth = make_authenticator(
            BasicAuth("zoë@example.com", "pässwörd"), FakeTokenEndpoint()
        )
        header = await auth.header()
        assert header.startswith("Basic ")
        assert (
            base64.b64decode(header[6:]).decode("utf-8") == "zoë@example.com:pässwörd"
        )

    async def test_bearer_is_sent_as_is(self) -> None:
        """A static token goes out as a Bearer header and cannot be renewed."""
        auth = make_authenticator(BearerAuth("tok-123"), FakeTokenEndpoint())
        assert await auth.header() == "Bearer tok-123"
        assert await auth.renew("Bearer tok-123") is False

    def test_basic_user_name_cannot_hold_colon(self) -> None:
        """A colon in the user name would be read as the end of it, so it is refused."""
        with pytest.raises(ValueError, match="':'"):
            BasicAuth("a:b", "pw")

    @pytest.mark.parametrize(
        "make", [lambda: BearerAuth(""), lambda: PasswordAuth("", "pw")]
    )
    def test_empty_values_refused(self, make: Any) -> None:
        """Empty tokens and emails are refused at construction."""
        with pytest.raises(ValueError, match="must not be empty"):
            make()

    def test_unknown_auth_type(self) -> None:
        """Only the three credential types are accepted."""
        with pytest.raises(TypeError, match="unsupported auth"):
            make_authenticator(("user", "pw"), FakeTokenEndpoint())  # type: ignore[arg-type]


class TestReprs:
    def test_secrets_masked(self) -> None:
        """No repr shows a password, a token or a TOTP code."""
        objects = [
            BasicAuth(EMAIL, SECRET_PASSWORD),
            BearerAuth(SECRET_PASSWORD),
            PasswordAuth(EMAIL, SECRET_PASSWORD, totp=SECRET_PASSWORD, client_id="app"),
            make_authenticator(BearerAuth(SECRET_PASSWORD), FakeTokenEndpoint()),
            make_authenticator(
                PasswordAuth(EMAIL, SECRET_PASSWORD), FakeTokenEndpoint()
            ),
        ]
        for obj in objects:
            assert SECRET_PASSWORD not in repr(obj)
            assert SECRET_PASSWORD not in str(obj)
        assert "client_id='app'" in repr(objects[2])


class TestPasswordGrant:
    async def test_form_and_headers(self) -> None:
        """The password grant sends email, password, TOTP, and client_id as a header."""
        endpoint = FakeTokenEndpoint(_answer(1))
        auth = PasswordAuth(
            EMAIL, SECRET_PASSWORD, totp=lambda: "123456", client_id="app-1"
        )
        manager = make_authenticator(auth, endpoint)
        assert await manager.header() == "Bearer access-1"
        form, headers = endpoint.calls[0]
        assert form == {
            "grant_type": "password",
            "username": EMAIL,
            "password": SECRET_PASSWORD,
            "totp": "123456",
        }
        assert headers == {"client_id": "app-1"}

    async def test_minimal_form(self) -> None:
        """Without TOTP or client id, neither is sent."""
        endpoint = FakeTokenEndpoint(_answer(1))
        await make_authenticator(
            PasswordAuth(EMAIL, SECRET_PASSWORD), endpoint
        ).header()
        form, headers = endpoint.calls[0]
        assert "totp" not in form
        assert headers == {}

    async def test_fresh_token_reused(self) -> None:
        """A token far from expiry is reused without asking again."""
        endpoint = FakeTokenEndpoint(_answer(1))
        manager = make_authenticator(PasswordAuth(EMAIL, SECRET_PASSWORD), endpoint)
        for _ in range(5):
            assert await manager.header() == "Bearer access-1"
        assert endpoint.grants == ["password"]

    async def test_unusable_answer_keeps_no_secret(self) -> None:
        """A token answer missing a field fails without quoting the body."""
        answer = {"access_token": SECRET_PASSWORD, "token_type": "bearer"}
        manager = make_authenticator(
            PasswordAuth(EMAIL, "pw"), FakeTokenEndpoint(answer)
        )
        with pytest.raises(ProtocolError) as caught:
            await manager.header()
        assert "expires_in" in str(caught.value)
        assert SECRET_PASSWORD not in str(caught.value)
        assert caught.value.body is None
        assert caught.value.__cause__ is None
        assert caught.value.__suppress_context__


class TestRefresh:
    async def test_margin_scales_with_lifetime(self) -> None:
        """A token is renewed a minute early, or a tenth of its life if that is shorter."""
        endpoint = FakeTokenEndpoint(_answer(1, 30), _answer(2, 120), _answer(3, 3600))
        manager = make_authenticator(PasswordAuth(EMAIL, "pw"), endpoint)
        assert await manager.header() == "Bearer access-1"
        assert await manager.header() == "Bearer access-1"
        assert endpoint.grants == ["password"]
        store = MemoryStore(_token(4, expires_in=59, lifetime=3600))
        manager = make_authenticator(
            PasswordAuth(EMAIL, "pw", token_store=store), endpoint
        )
        assert await manager.header() == "Bearer access-2"

    async def test_refresh_before_expiry_keeps_rotated_token(self) -> None:
        """Near expiry the refresh grant runs, and the next one uses the rotated token."""
        endpoint = FakeTokenEndpoint(_answer(1, 0), _answer(2, 0), _answer(3, 3600))
        manager = make_authenticator(PasswordAuth(EMAIL, SECRET_PASSWORD), endpoint)
        assert await manager.header() == "Bearer access-1"
        assert await manager.header() == "Bearer access-2"
        assert await manager.header() == "Bearer access-3"
        assert endpoint.grants == ["password", "refresh_token", "refresh_token"]
        assert endpoint.calls[1][0]["refresh_token"] == "refresh-1"
        assert endpoint.calls[2][0]["refresh_token"] == "refresh-2"
        # The refresh grant must name a client id; the email stands in for none.
        assert endpoint.calls[1][1] == {"client_id": EMAIL}

    async def test_refresh_names_the_configured_client_id(self) -> None:
        """With a client id, the refresh grant sends that one."""
        endpoint = FakeTokenEndpoint(_answer(2))
        auth = PasswordAuth(
            EMAIL,
            "pw",
            client_id="app-9",
            token_store=MemoryStore(_token(1, expires_in=-1)),
        )
        await make_authenticator(auth, endpoint).header()
        assert endpoint.calls[0][1] == {"client_id": "app-9"}

    async def test_concurrent_callers_cause_one_refresh(self) -> None:
        """Twenty callers at expiry share one refresh."""
        endpoint = FakeTokenEndpoint(_answer(2), delay=0.01)
        store = MemoryStore(_token(1, expires_in=-1))
        manager = make_authenticator(
            PasswordAuth(EMAIL, "pw", token_store=store), endpoint
        )
        headers = await asyncio.gather(*(manager.header() for _ in range(20)))
        assert set(headers) == {"Bearer access-2"}
        assert endpoint.grants == ["refresh_token"]

    async def test_rejected_token_renewed_once(self) -> None:
        """Twenty callers whose token met a 401 share one renewal."""
        endpoint = FakeTokenEndpoint(_answer(2), delay=0.01)
        store = MemoryStore(_token(1))
        manager = make_authenticator(
            PasswordAuth(EMAIL, "pw", token_store=store), endpoint
        )
        rejected = await manager.header()
        results = await asyncio.gather(*(manager.renew(rejected) for _ in range(20)))
        assert all(results)
        assert await manager.header() == "Bearer access-2"
        assert endpoint.grants == ["refresh_token"]

    async def test_rejected_refresh_falls_back_once(self) -> None:
        """A refused refresh leads to one password grant."""
        endpoint = FakeTokenEndpoint(_refused(), _answer(2))
        store = MemoryStore(_token(1, expires_in=-1))
        manager = make_authenticator(
            PasswordAuth(EMAIL, "pw", token_store=store), endpoint
        )
        assert await manager.header() == "Bearer access-2"
        assert endpoint.grants == ["refresh_token", "password"]

    async def test_failed_fallback_is_one_error_for_all(self) -> None:
        """When the password grant fails too, every waiter gets the AuthError; no third try."""
        bad_login = AuthError(
            error="invalid_grant", description="The user name or password is incorrect."
        )
        endpoint = FakeTokenEndpoint(_refused(), bad_login, delay=0.01)
        store = MemoryStore(_token(1, expires_in=-1))
        manager = make_authenticator(
            PasswordAuth(EMAIL, SECRET_PASSWORD, token_store=store), endpoint
        )
        results = await asyncio.gather(
            *(manager.header() for _ in range(20)), return_exceptions=True
        )
        assert all(isinstance(r, AuthError) for r in results)
        assert {r.description for r in results} == {
            "The user name or password is incorrect."
        }  # type: ignore[union-attr]
        assert endpoint.grants == ["refresh_token", "password"]
        assert all(SECRET_PASSWORD not in str(r) for r in results)

    async def test_transport_failure_shared_then_retried_later(self) -> None:
        """Waiters share a failed renewal; a later call tries afresh."""
        down = RequestTimeoutError("down", method="POST", path="/api/token", sent=True)
        endpoint = FakeTokenEndpoint(down, _answer(1), delay=0.01)
        manager = make_authenticator(PasswordAuth(EMAIL, "pw"), endpoint)
        results = await asyncio.gather(
            *(manager.header() for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, RequestTimeoutError) for r in results)
        assert await manager.header() == "Bearer access-1"
        assert endpoint.grants == ["password", "password"]


class TestTokenStore:
    async def test_saved_token_used_without_signing_in(self) -> None:
        """A valid stored token is used as is."""
        endpoint = FakeTokenEndpoint()
        store = MemoryStore(_token(7))
        manager = make_authenticator(
            PasswordAuth(EMAIL, "pw", token_store=store), endpoint
        )
        assert await manager.header() == "Bearer access-7"
        assert endpoint.calls == []

    async def test_every_new_token_saved(self) -> None:
        """Each token obtained is handed to the store."""
        endpoint = FakeTokenEndpoint(_answer(1, 0), _answer(2))
        store = MemoryStore()
        manager = make_authenticator(
            PasswordAuth(EMAIL, "pw", token_store=store), endpoint
        )
        await manager.header()
        await manager.header()
        assert [t.access_token for t in store.saved] == ["access-1", "access-2"]

    async def test_broken_store_does_not_stop_sign_in(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A store that fails to load or save is logged and otherwise ignored."""

        class Broken:
            async def load(self) -> Token | None:
                raise OSError("disk on fire")

            async def save(self, token: Token) -> None:
                raise OSError("disk on fire")

        endpoint = FakeTokenEndpoint(_answer(1))
        manager = make_authenticator(
            PasswordAuth(EMAIL, "pw", token_store=Broken()), endpoint
        )
        assert await manager.header() == "Bearer access-1"
        assert [r.getMessage() for r in caplog.records] == [
            "could not load the saved token (OSError)",
            "could not save the token (OSError)",
        ]

    def test_protocol(self) -> None:
        """The in-memory and file stores satisfy the TokenStore protocol."""
        assert isinstance(MemoryStore(), TokenStore)
        assert isinstance(FileTokenStore("x"), TokenStore)


class TestFileTokenStore:
    async def test_round_trip_owner_only(self, tmp_path: Path) -> None:
        """A saved token loads back equal, from a file only its owner can read."""
        store = FileTokenStore(tmp_path / "token.json")
        token = _token(3)
        await store.save(token)
        assert await store.load() == token
        mode = stat.S_IMODE(os.stat(store.path).st_mode)
        assert mode == 0o600
        assert "access-3" not in repr(store)

    async def test_missing_file_is_no_token(self, tmp_path: Path) -> None:
        """No file means no token."""
        assert await FileTokenStore(tmp_path / "absent.json").load() is None

    @pytest.mark.parametrize(
        "content", [b"not json", b"{}", b'{"access_token": 1}', b"[]"]
    )
    async def test_garbage_is_no_token(self, tmp_path: Path, content: bytes) -> None:
        """A malformed file counts as no token."""
        path = tmp_path / "token.json"
        path.write_bytes(content)
        assert await FileTokenStore(path).load() is None

    async def test_overwrites_loose_leftover(self, tmp_path: Path) -> None:
        """A leftover temporary file with loose permissions does not loosen the token file."""
        path = tmp_path / "token.json"
        leftover = tmp_path / "token.json.tmp"
        leftover.write_text("old")
        leftover.chmod(0o644)
        await FileTokenStore(path).save(_token(1))
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert not leftover.exists()
