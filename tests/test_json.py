"""Tests for the JSON codec."""

from __future__ import annotations

import pickle

import pytest

from nexudus_async._errors import NexudusError, WireFormatError
from nexudus_async._json import (
    JSONDecodeError,
    dumps,
    dumps_escaping,
    loads,
    repeated_keys,
)


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

    @pytest.mark.parametrize(
        ("obj", "path", "value"),
        [
            ({"BusinessId": 1, "Name": "bad \ud800"}, "Name", "bad \ud800"),
            ({"Parameters": [{"Value": "\udc00"}]}, "Parameters[0].Value", "\udc00"),
            ({"ok": {"\ud800": 1}}, "ok", "\ud800"),
            ("\ud800", "$", "\ud800"),
        ],
        ids=["field", "nested", "key", "root"],
    )
    def test_lone_surrogate_error_names_where(
        self, obj: object, path: str, value: str
    ) -> None:
        """The refusal is a WireFormatError whose path names the bad string."""
        with pytest.raises(WireFormatError) as caught:
            dumps(obj)
        assert (caught.value.path, caught.value.value) == (path, value)
        assert isinstance(caught.value, NexudusError)

    def test_integer_too_long_to_write_names_where(self) -> None:
        """An int with more digits than Python will print is refused by its path."""
        with pytest.raises(WireFormatError, match=r"^BusinessId: .*too many digits"):
            dumps({"BusinessId": 10**5000})

    def test_unsupported_type_is_refused(self) -> None:
        """An object JSON cannot represent raises TypeError."""
        with pytest.raises(TypeError):
            dumps({"x": object()})


class TestDumpsEscaping:
    def test_same_as_dumps_without_surrogates(self) -> None:
        """Output without a lone surrogate is exactly that of dumps."""
        obj = {"Name": "Café ☕", "Id": 2**70, "L": [1.5, None, True]}
        assert dumps_escaping(obj) == dumps(obj)

    def test_lone_surrogate_is_escaped(self) -> None:
        """A lone surrogate is written as its JSON escape and reads back the same."""
        data = dumps_escaping({"Name": "Zoë \ud800", "Id": 2**70})
        assert data == '{"Name":"Zoë \\ud800","Id":1180591620717411303424}'.encode()
        assert loads(data) == {"Name": "Zoë \ud800", "Id": 2**70}


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

    def test_lone_surrogate_escape_is_read(self) -> None:
        """A lone surrogate escape decodes to that code point, from text or bytes."""
        line = '{"BusinessId":1,"Name":"bad\\ud800"}'
        expected = {"BusinessId": 1, "Name": "bad\ud800"}
        assert loads(line) == expected
        assert loads(line.encode()) == expected

    def test_second_decoder_keeps_integers_exact(self) -> None:
        """A document only the fallback decoder reads still has exact big ints."""
        decoded = loads(f'{{"Id":{2**70},"Name":"\\udc00"}}'.encode())
        assert decoded["Id"] == 2**70
        assert type(decoded["Id"]) is int

    @pytest.mark.parametrize(
        "data",
        ["[" * 100_000 + "]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000],
        ids=["arrays", "objects"],
    )
    def test_deep_nesting_is_a_decode_error(self, data: str | bytes) -> None:
        """A document nested too deeply raises JSONDecodeError, not RecursionError."""
        with pytest.raises(JSONDecodeError, match="nested too deeply"):
            loads(data)

    @pytest.mark.parametrize(
        "data",
        ["[NaN]", "[Infinity]", "[-Infinity]", "[1e400]", '["\\ud800", NaN]'],
    )
    def test_non_json_numbers_stay_refused(self, data: str) -> None:
        """The fallback decoder takes no NaN, Infinity or out-of-range float."""
        with pytest.raises(JSONDecodeError):
            loads(data)

    def test_too_many_digits_is_a_decode_error(self) -> None:
        """An integer past the conversion limit raises JSONDecodeError, not ValueError."""
        with pytest.raises(JSONDecodeError):
            loads("1" * 5000)

    def test_mark_and_utf16_bytes_stay_refused(self) -> None:
        """Bytes must be plain UTF-8: no byte-order mark, no UTF-16."""
        for data in (b"\xef\xbb\xbf{}", '{"a": 1}'.encode("utf-16")):
            with pytest.raises(JSONDecodeError):
                loads(data)

    def test_position_is_a_byte_offset(self) -> None:
        """The position counts UTF-8 bytes even when the text has wide characters."""
        with pytest.raises(JSONDecodeError) as caught:
            loads('{"é": "\\ud800",, }')
        # Character 15, but byte 16: the é takes two bytes.
        assert caught.value.pos == len('{"é": "\\ud800",'.encode()) == 16
        assert "(byte 16)" in str(caught.value)

    def test_not_utf8_names_the_byte(self) -> None:
        """Bytes that are not UTF-8 are refused with the offset of the first bad one."""
        with pytest.raises(JSONDecodeError, match="not valid UTF-8") as caught:
            loads(b'{"a": "\xff"}')
        assert caught.value.pos == 7

    def test_error_pickles_with_position(self) -> None:
        """The decode error survives pickling with its message and position."""
        error = JSONDecodeError("broken (byte 4)", 4)
        copy = pickle.loads(pickle.dumps(error))
        assert (str(copy), copy.pos) == ("broken (byte 4)", 4)


class TestRepeatedKeys:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ('{"a": 1, "b": "x"}', {}),
            ('{"a": 1, "a": 2}', {"a": [1, 2]}),
            ('{"a": "x", "b": 2, "a": "y", "a": null}', {"a": ["x", "y", None]}),
            ('{"a": "say \\"hi\\""}', {}),
            ('{"a": {"b": 1, "b": 2}}', {}),
            ('{"a": {"b": 1}, "a": [2]}', {"a": [{"b": 1}, [2]]}),
            ('[{"a": 1, "a": 2}]', {}),
            ('"a"', {}),
            (
                '{"a": 123456789012345678901234567890, "a": 1.5}',
                {"a": [123456789012345678901234567890, 1.5]},
            ),
        ],
        ids=[
            "none",
            "twice",
            "three-times",
            "escaped-quotes",
            "nested-only",
            "object-and-list-values",
            "not-an-object",
            "a-string",
            "exact-numbers",
        ],
    )
    def test_finds_each_top_level_repeat_with_every_value(
        self, text: str, expected: dict[str, list[object]]
    ) -> None:
        """Every key the top-level object names more than once, with all its values."""
        assert repeated_keys(text, loads(text)) == expected
