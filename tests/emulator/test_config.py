"""Tests of the emulator's settings."""

from __future__ import annotations

import attrs
import pytest

from nexudus_async.emulator import (
    ALL_ROLES,
    READ_ROLES,
    EmulatorConfig,
    Faults,
    Limits,
    User,
    role,
)


class TestUser:
    def test_administrator_holds_every_role(self) -> None:
        """A user without a role list is a full administrator."""
        admin = User("a@example.com", "pw")
        assert all(admin.may(name) for name in ALL_ROLES)

    def test_roles_limit_what_a_user_may_do(self) -> None:
        """A user with roles may do only what they name."""
        reader = User("r@example.com", "pw", roles=READ_ROLES)
        assert reader.may(role("List"))
        assert reader.may(role("Read"))
        assert not reader.may(role("Create"))

    def test_roles_accept_any_iterable(self) -> None:
        """Roles given as a list are stored as a frozenset."""
        assert User("r@example.com", "pw", roles=[role("List")]).roles == frozenset(
            {role("List")}
        )

    def test_repr_hides_secrets(self) -> None:
        """Neither the password nor the two-factor code shows in the repr."""
        text = repr(User("a@example.com", "s3cret-pw", totp="987654"))
        assert "s3cret-pw" not in text
        assert "987654" not in text
        assert "a@example.com" in text

    def test_role_names(self) -> None:
        """Role names follow the Entity-Action pattern."""
        assert role("Create") == "CrmOpportunityImportFile-Create"


class TestEmulatorConfig:
    def test_defaults(self) -> None:
        """The defaults: an administrator, a reader, businesses 1-3 and 123, documented limits."""
        config = EmulatorConfig()
        assert [(u.email, u.password) for u in config.users] == [
            ("admin@example.com", "password"),
            ("reader@example.com", "password"),
        ]
        assert config.users[0].roles is None
        assert config.users[1].roles == READ_ROLES
        assert config.businesses == frozenset({1, 2, 3, 123})
        assert config.limits == Limits.documented()
        assert config.faults == Faults()
        assert config.throttle_status == 409
        assert config.time_scale == 1.0

    def test_user_lookup_ignores_case(self) -> None:
        """Emails are matched case-insensitively."""
        config = EmulatorConfig()
        found = config.user("ADMIN@Example.com")
        assert found is not None
        assert found.email == "admin@example.com"
        assert config.user("nobody@example.com") is None

    def test_duplicate_emails_are_refused(self) -> None:
        """Two users may not share an email, whatever the case."""
        with pytest.raises(ValueError, match="share"):
            EmulatorConfig(
                users=[User("a@example.com", "x"), User("A@example.com", "y")]
            )

    def test_businesses_become_a_frozenset(self) -> None:
        """Businesses given as a list are stored as a frozenset."""
        assert EmulatorConfig(businesses=[7, 8]).businesses == frozenset({7, 8})

    @pytest.mark.parametrize(
        "change",
        [
            {"time_scale": 0},
            {"throttle_status": 418},
            {"token_lifetime": 0},
            {"token_lifetime": float("inf")},
            {"refresh_token_lifetime": float("nan")},
            {"dir_encoding": "up"},
            {"name_filter": "fuzzy"},
            {"missing_role_status": 402},
            {"validation_status": 422},
            {"missing_record_status": 410},
            {"max_page_size": 0},
            {"timestamp_suffix": "+00:00"},
            {"client_id_from": "cookie"},
        ],
    )
    def test_bad_values_are_refused(self, change: dict[str, object]) -> None:
        """Values outside the documented choices raise ValueError."""
        with pytest.raises(ValueError):  # noqa: PT011 -- attrs words each message differently
            EmulatorConfig(**change)  # type: ignore[arg-type]

    def test_frozen(self) -> None:
        """A configuration cannot be changed after it is made."""
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            EmulatorConfig().time_scale = 2  # type: ignore[misc]
