"""Tests for the JSON codec."""

from __future__ import annotations

import pickle

import pytest

from nexudus_async._json import JSONDecodeError, dumps, loads


class TestDumps:
    def test_output_is_compact_utf8(self) -> None:
        """Encoding uses no spaces and writes non-ASCII text as raw UTF-8."""
        assert dumps({"BusinessId": 1, "Name": "Café ☕"}) == (
            '{"BusinessId":1,"Name":"Café ☕"}'.encode()
        )

    def test_big_integers_are_exact(self) -> None:
        """Integers wider than 64 bits are written digit for digit."""
        assert dumps({"Id": 2**70}) == b'{"Id":1180591620717411303424}'

    def test_lone_surrogate_is_refused(self) -> None:
        """Text that is not valid Unicode raises ValueError instead of writing junk."""
        with pytest.raises(ValueError, match="UTF-8"):
            dumps({"Name": "bad \ud800"})

    def test_unsupported_type_is_refused(self) -> None:
        """An object JSON cannot represent raises TypeError."""
        with pytest.raises(TypeError):
            dumps({"x": object()})


class TestLoads:
    def test_bytes_and_text_decode_alike(self) -> None:
        """UTF-8 bytes and str inputs give the same value."""
        text = '{"Name":"Zoë","Ok":true,"Value":null,"L":[1,2.5]}'
        expected = {"Name": "Zoë", "Ok": True, "Value": None, "L": [1, 2.5]}
        assert loads(text) == expected
        assert loads(text.encode()) == expected

    @pytest.mark.parametrize("number", [2**63, 2**64, 2**70, -(2**70), 10**40 + 1])
    def test_big_integers_stay_exact_ints(self, number: int) -> None:
        """Integers of any size decode as exact ints, never floats."""
        decoded = loads(f'{{"Id":{number}}}'.encode())["Id"]
        assert type(decoded) is int
        assert decoded == number

    def test_malformed_document_reports_position(self) -> None:
        """Bad JSON raises JSONDecodeError carrying the byte offset."""
        with pytest.raises(JSONDecodeError) as caught:
            loads(b'{"a": 1,, "b": 2}')
        assert caught.value.pos == 8
        assert isinstance(caught.value, ValueError)

    @pytest.mark.parametrize(
        "data",
        [b"", b'{"a": ', b"\xff\xfe", b"[1] 2", b"nul", "\ud800"],
        ids=["empty", "truncated", "not-utf8", "trailing", "bad-literal", "surrogate"],
    )
    def test_undecodable_input_raises_own_error(self, data: bytes | str) -> None:
        """Every kind of undecodable input raises the module's JSONDecodeError."""
        with pytest.raises(JSONDecodeError):
            loads(data)

    def test_error_pickles_with_position(self) -> None:
        """The decode error survives pickling with its message and position."""
        error = JSONDecodeError("broken (byte 4)", 4)
        copy = pickle.loads(pickle.dumps(error))
        assert (str(copy), copy.pos) == ("broken (byte 4)", 4)
