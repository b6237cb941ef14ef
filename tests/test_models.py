"""Tests for the models."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from nexudus_async._models import (
    Command,
    CommandParameter,
    CommandParameterSpec,
    FieldError,
    ImportFile,
    ImportFileCreate,
    ImportFileUpdate,
    Page,
    SortDirection,
    Token,
    WriteResult,
)

NOW = datetime(2025, 1, 15, 10, 30, tzinfo=timezone.utc)

SAMPLES: list[Any] = [
    ImportFileCreate(1, "x"),
    ImportFileUpdate(7, 1, "x"),
    ImportFile(7, 1, "x"),
    FieldError("Name", "is a required field"),
    WriteResult(True),
    Page(records=(), current_page=1, has_next_page=False, has_previous_page=False),
    Token("a", "bearer", 60, "r", NOW),
    Command("K"),
    CommandParameter("n", "v"),
    CommandParameterSpec("n", "string"),
]


def _token(**changes: Any) -> Token:
    values: dict[str, Any] = {
        "access_token": "secret-access-4711",
        "token_type": "bearer",
        "expires_in": 3600,
        "refresh_token": "secret-refresh-4712",
        "expires_at": NOW,
    }
    values.update(changes)
    return Token(**values)


class TestShape:
    @pytest.mark.parametrize("model", SAMPLES, ids=lambda m: type(m).__name__)
    def test_models_are_frozen(self, model: Any) -> None:
        """No model can be changed after it is built."""
        first = attrs.fields(type(model))[0].name
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(model, first, None)

    @pytest.mark.parametrize("model", SAMPLES, ids=lambda m: type(m).__name__)
    def test_models_use_slots(self, model: Any) -> None:
        """Models are slotted classes without a per-instance dict."""
        assert not hasattr(model, "__dict__")
        assert "__slots__" in type(model).__dict__

    def test_create_defaults_leave_optionals_unset(self) -> None:
        """A create payload's optional fields default to None (unset)."""
        payload = ImportFileCreate(business_id=123, name="x")
        assert payload.new_file_data_url is None
        assert payload.clear_file_data_file is None
        assert payload.imported is None

    def test_payload_reprs_show_their_values(self) -> None:
        """Payloads hold no secrets, so their reprs show every field."""
        assert repr(ImportFileCreate(123, "x")) == (
            "ImportFileCreate(business_id=123, name='x', new_file_data_url=None, "
            "clear_file_data_file=None, imported=None)"
        )
        assert "id=9" in repr(ImportFileUpdate(9, 123, "x"))

    def test_sort_direction_values_are_the_dir_parameter(self) -> None:
        """Ascending is 1 and descending is -1, the values the dir parameter takes."""
        assert SortDirection.ASCENDING.value == 1
        assert SortDirection.DESCENDING.value == -1


class TestPayloadTypes:
    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"business_id": "1e3"}, "business_id"),
            ({"business_id": True}, "business_id"),
            ({"business_id": 1.0}, "business_id"),
            ({"name": 5}, "name"),
            ({"name": None}, "name"),
            ({"new_file_data_url": b"http://x"}, "new_file_data_url"),
            ({"clear_file_data_file": 1}, "clear_file_data_file"),
            ({"imported": "yes"}, "imported"),
        ],
    )
    def test_create_wrong_type_names_field(
        self, changes: dict[str, Any], field: str
    ) -> None:
        """Building a create payload with a wrong type raises TypeError naming it."""
        values: dict[str, Any] = {"business_id": 1, "name": "a"}
        values.update(changes)
        with pytest.raises(TypeError, match=f"^{field} must be "):
            ImportFileCreate(**values)

    @pytest.mark.parametrize("field", ["id", "business_id"])
    def test_update_ids_must_be_ints(self, field: str) -> None:
        """An update payload refuses a text or boolean id, naming the field."""
        values: dict[str, Any] = {"id": 7, "business_id": 1, "name": "a"}
        for bad in ("7", False):
            with pytest.raises(TypeError, match=f"^{field} must be an int"):
                ImportFileUpdate(**{**values, field: bad})

    def test_update_checks_optionals(self) -> None:
        """An update payload checks its optional fields as a create payload does."""
        with pytest.raises(TypeError, match=r"^imported must be a bool or None"):
            ImportFileUpdate(7, 1, "a", imported=0)  # type: ignore[arg-type]

    def test_right_types_are_accepted(self) -> None:
        """Every field of the right type, big ids included, builds the payload."""
        payload = ImportFileUpdate(
            2**70, 1, "a", "https://x.example/f.csv", False, True
        )
        assert (payload.id, payload.imported) == (2**70, True)

    def test_subclasses_pass_where_the_checks_allow_them(self) -> None:
        """An int or str subclass is accepted (bool is not), optionals included."""

        class Number(int):
            pass

        class Text(str):
            pass

        payload = ImportFileCreate(Number(3), Text("a"), Text("https://x"), True)
        assert payload.business_id == 3
        with pytest.raises(TypeError, match=r"^business_id must be an int, not bool"):
            ImportFileCreate(True, "a")  # type: ignore[arg-type]

    def test_first_wrong_field_in_order_is_named(self) -> None:
        """With several wrong fields, the error names the first in field order."""
        with pytest.raises(TypeError, match=r"^name must be a str"):
            ImportFileCreate(1, 2, imported="no")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^new_file_data_url must be"):
            ImportFileCreate(1, "a", 5, imported="no")  # type: ignore[arg-type]

    def test_evolve_is_checked_too(self) -> None:
        """A changed copy is checked like a new payload."""
        with pytest.raises(TypeError, match=r"^name must be a str"):
            attrs.evolve(ImportFileCreate(1, "a"), name=3)  # type: ignore[arg-type]


class TestWriteResultId:
    def test_id_comes_from_value(self) -> None:
        """The id property reads Value.Id."""
        assert WriteResult(True, value={"Id": 87654321}).id == 87654321

    def test_id_is_exact_for_big_integers(self) -> None:
        """A very large id is returned unchanged."""
        assert WriteResult(True, value={"Id": 2**70}).id == 2**70

    @pytest.mark.parametrize(
        "value", [None, {}, {"Id": None}, {"Id": "12"}, {"Id": True}, {"Id": 1.0}]
    )
    def test_id_is_none_without_an_integer(self, value: dict[str, Any] | None) -> None:
        """Without an integer Value.Id (a bool or float does not count) id is None."""
        assert WriteResult(True, value=value).id is None


class TestToken:
    def test_repr_masks_both_tokens(self) -> None:
        """The repr never shows the access or refresh token."""
        text = repr(_token())
        assert "secret-access-4711" not in text
        assert "secret-refresh-4712" not in text
        assert "access_token='***'" in text
        assert "refresh_token='***'" in text

    def test_repr_shows_missing_refresh_token(self) -> None:
        """A token without a refresh token says so rather than masking None."""
        assert "refresh_token=None" in repr(_token(refresh_token=None))

    def test_str_masks_tokens_too(self) -> None:
        """Formatting with str() hides the tokens as well."""
        assert "secret" not in str(_token())

    def test_is_expired_compares_with_now(self) -> None:
        """A token is expired from its expiry instant on, not before."""
        token = _token()
        assert not token.is_expired(now=NOW - timedelta(seconds=1))
        assert token.is_expired(now=NOW)
        assert token.is_expired(now=NOW + timedelta(seconds=1))

    def test_is_expired_with_leeway(self) -> None:
        """Leeway makes a token count as expired that many seconds early."""
        token = _token()
        early = NOW - timedelta(seconds=30)
        assert not token.is_expired(now=early, leeway=29)
        assert token.is_expired(now=early, leeway=30)

    def test_expires_within(self) -> None:
        """expires_within tells whether expiry falls inside the horizon."""
        token = _token()
        now = NOW - timedelta(minutes=5)
        assert token.expires_within(300, now=now)
        assert not token.expires_within(299, now=now)

    def test_naive_expiry_is_refused(self) -> None:
        """A token cannot be built with a naive expiry time."""
        with pytest.raises(ValueError, match=r"^expires_at must be timezone-aware"):
            _token(expires_at=datetime(2025, 1, 15, 10, 30))

    def test_expiry_must_be_a_datetime(self) -> None:
        """A token's expiry is a datetime, not a timestamp."""
        with pytest.raises(TypeError, match=r"^expires_at must be a datetime"):
            _token(expires_at=1736937000)

    def test_other_time_zones_are_accepted(self) -> None:
        """Any aware expiry is accepted, not only UTC."""
        plus_two = datetime(2025, 1, 15, 12, 30, tzinfo=timezone(timedelta(hours=2)))
        assert _token(expires_at=plus_two).is_expired(now=NOW)

    def test_negative_lifetime_is_refused(self) -> None:
        """expires_in may be 0 but not negative."""
        assert _token(expires_in=0).expires_in == 0
        with pytest.raises(ValueError, match=r"^expires_in must be 0 or more"):
            _token(expires_in=-1)

    def test_default_now_is_the_clock(self) -> None:
        """Without an explicit now the current UTC time is used."""
        future = _token(expires_at=datetime.now(timezone.utc) + timedelta(hours=1))
        past = _token(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
        assert not future.is_expired()
        assert past.is_expired()
