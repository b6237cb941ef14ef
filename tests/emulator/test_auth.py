"""Tests of credential checks and of the token grants."""

from __future__ import annotations

import base64

import pytest

from nexudus_async.emulator import EmulatorConfig, User
from nexudus_async.emulator._auth import Authenticator, GrantError

ADMIN = User("admin@example.com", "password")
TWO_FACTOR = User("tf@example.com", "pw", totp="123456")
RESET = User("reset@example.com", "pw", must_reset_password=True)
ACCENTED = User("zoë@example.com", "pässwörd")


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def make(**settings: object) -> tuple[Authenticator, FakeClock]:
    clock = FakeClock()
    config = EmulatorConfig(users=[ADMIN, TWO_FACTOR, RESET, ACCENTED], **settings)  # type: ignore[arg-type]
    return Authenticator(config, clock=clock), clock


def login(
    auth: Authenticator, client_id: str | None = None, **form: str
) -> dict[str, object]:
    fields = {"username": "admin@example.com", "password": "password", **form}
    return auth.password_grant(fields, client_id)


def refused(call: object, *args: object) -> tuple[str, str]:
    with pytest.raises(GrantError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value.error, caught.value.description


def basic(email: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{email}:{password}".encode()).decode()


class TestPasswordGrant:
    def test_answer_shape(self) -> None:
        """A good login gets the documented token fields."""
        auth, _ = make(token_lifetime=90.5)
        answer = login(auth)
        assert set(answer) == {
            "access_token",
            "token_type",
            "expires_in",
            "refresh_token",
        }
        assert answer["token_type"] == "bearer"
        assert answer["expires_in"] == 91

    @pytest.mark.parametrize(
        ("username", "password"),
        [("admin@example.com", "wrong"), ("nobody@example.com", "password"), ("", "")],
    )
    def test_bad_credentials(self, username: str, password: str) -> None:
        """Wrong or missing credentials answer invalid_grant with the documented text."""
        auth, _ = make()
        assert refused(
            auth.password_grant, {"username": username, "password": password}, None
        ) == (
            "invalid_grant",
            "The user name or password is incorrect.",
        )

    def test_email_case_is_ignored(self) -> None:
        """The user name matches whatever its case."""
        auth, _ = make()
        assert login(auth, username="Admin@Example.COM")["token_type"] == "bearer"

    def test_two_factor_missing(self) -> None:
        """A 2FA user without a code gets two_factor_auth_check."""
        auth, _ = make()
        error, _ = refused(
            auth.password_grant, {"username": "tf@example.com", "password": "pw"}, None
        )
        assert error == "two_factor_auth_check"

    def test_two_factor_wrong(self) -> None:
        """A wrong code gets invalid_grant."""
        auth, _ = make()
        error, _ = refused(
            auth.password_grant,
            {"username": "tf@example.com", "password": "pw", "totp": "000000"},
            None,
        )
        assert error == "invalid_grant"

    def test_two_factor_right(self) -> None:
        """The configured code lets the user in."""
        auth, _ = make()
        answer = auth.password_grant(
            {"username": "tf@example.com", "password": "pw", "totp": "123456"}, None
        )
        assert answer["access_token"]

    def test_must_reset_password(self) -> None:
        """A user flagged to reset gets must_reset_password."""
        auth, _ = make()
        error, _ = refused(
            auth.password_grant,
            {"username": "reset@example.com", "password": "pw"},
            None,
        )
        assert error == "must_reset_password"


class TestRefreshGrant:
    def test_rotation(self) -> None:
        """A refresh gives new tokens, and the used refresh token is dead."""
        auth, _ = make()
        first = login(auth, "app-1")
        second = auth.refresh_grant(
            {"refresh_token": str(first["refresh_token"])}, "app-1"
        )
        assert second["access_token"] != first["access_token"]
        assert second["refresh_token"] != first["refresh_token"]
        error, description = refused(
            auth.refresh_grant, {"refresh_token": str(first["refresh_token"])}, "app-1"
        )
        assert error == "invalid_grant"
        assert "already been used" in description

    def test_old_access_token_stays_valid(self) -> None:
        """Rotating the refresh token does not revoke live access tokens."""
        auth, _ = make()
        first = login(auth, "app-1")
        auth.refresh_grant({"refresh_token": str(first["refresh_token"])}, "app-1")
        assert auth.authenticate(f"Bearer {first['access_token']}") is not None

    def test_client_id_defaults_to_email(self) -> None:
        """Without client_id at login, the email is the client to refresh as."""
        auth, _ = make()
        first = login(auth)
        answer = auth.refresh_grant(
            {"refresh_token": str(first["refresh_token"])}, "admin@example.com"
        )
        assert answer["token_type"] == "bearer"

    def test_client_id_must_match(self) -> None:
        """A refresh token works only for the client it was issued to."""
        auth, _ = make()
        first = login(auth, "app-1")
        error, _ = refused(
            auth.refresh_grant, {"refresh_token": str(first["refresh_token"])}, "app-2"
        )
        assert error == "invalid_grant"

    def test_client_id_is_required(self) -> None:
        """By default the refresh grant needs a client_id."""
        auth, _ = make()
        first = login(auth)
        error, description = refused(
            auth.refresh_grant, {"refresh_token": str(first["refresh_token"])}, None
        )
        assert error == "invalid_grant"
        assert "client_id" in description

    def test_client_id_can_be_optional(self) -> None:
        """With the switch off, the refresh grant works without client_id."""
        auth, _ = make(refresh_requires_client_id=False)
        first = login(auth)
        assert auth.refresh_grant({"refresh_token": str(first["refresh_token"])}, None)[
            "access_token"
        ]

    def test_new_login_retires_the_clients_refresh_token(self) -> None:
        """One refresh token per client: logging in again kills the previous one."""
        auth, _ = make()
        first = login(auth, "app-1")
        other = login(auth, "app-2")
        login(auth, "app-1")
        assert (
            refused(
                auth.refresh_grant,
                {"refresh_token": str(first["refresh_token"])},
                "app-1",
            )[0]
            == "invalid_grant"
        )
        assert auth.refresh_grant(
            {"refresh_token": str(other["refresh_token"])}, "app-2"
        )["access_token"]

    def test_expired_refresh_token(self) -> None:
        """A refresh token past its lifetime is refused."""
        auth, clock = make(refresh_token_lifetime=100)
        first = login(auth, "app-1")
        clock.now += 101
        error, description = refused(
            auth.refresh_grant, {"refresh_token": str(first["refresh_token"])}, "app-1"
        )
        assert error == "invalid_grant"
        assert "expired" in description

    def test_unknown_refresh_token(self) -> None:
        """A made-up refresh token is refused."""
        auth, _ = make()
        assert (
            refused(auth.refresh_grant, {"refresh_token": "nope"}, "x")[0]
            == "invalid_grant"
        )


class TestAuthenticate:
    def test_bearer(self) -> None:
        """A live access token names its user and client."""
        auth, _ = make()
        token = login(auth, "app-9")["access_token"]
        principal = auth.authenticate(f"Bearer {token}")
        assert principal is not None
        assert (principal.user.email, principal.client) == (
            "admin@example.com",
            "app-9",
        )
        assert auth.authenticate(f"bearer {token}") is not None

    def test_bearer_expires(self) -> None:
        """An access token stops working after its lifetime."""
        auth, clock = make(token_lifetime=10)
        token = login(auth)["access_token"]
        clock.now += 10
        assert auth.authenticate(f"Bearer {token}") is None

    def test_unknown_bearer(self) -> None:
        """A made-up token is refused."""
        auth, _ = make()
        assert auth.authenticate("Bearer made-up") is None

    def test_basic(self) -> None:
        """Basic credentials name the user; the client is the email."""
        auth, _ = make()
        principal = auth.authenticate(basic("admin@example.com", "password"))
        assert principal is not None
        assert principal.client == "admin@example.com"

    def test_basic_utf8(self) -> None:
        """Basic credentials are decoded as UTF-8."""
        auth, _ = make()
        principal = auth.authenticate(basic("zoë@example.com", "pässwörd"))
        assert principal is not None
        assert principal.user is ACCENTED

    @pytest.mark.parametrize(
        "header",
        [
            None,
            "",
            basic("admin@example.com", "wrong"),
            basic("nobody@example.com", "password"),
            "Basic " + base64.b64encode(b"no-colon").decode(),
            "Basic !!!not-base64",
            "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
            "Digest abc",
        ],
    )
    def test_refused_headers(self, header: str | None) -> None:
        """Missing, wrong, malformed or unknown-scheme headers are refused."""
        auth, _ = make()
        assert auth.authenticate(header) is None

    def test_basic_answer_is_cached_but_still_right(self) -> None:
        """A repeated Basic header gives the same principal each time."""
        auth, _ = make()
        header = basic("admin@example.com", "password")
        assert auth.authenticate(header) == auth.authenticate(header)
