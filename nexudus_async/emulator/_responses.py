"""Building the answers: the write envelope, error bodies and the special failures."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgspec
from aiohttp import web

from ._config import ENTITY
from ._validation import Problem

__all__ = [
    "THROTTLE_REASON",
    "UNAUTHORIZED_MESSAGE",
    "decode_json",
    "envelope",
    "html_page",
    "json_response",
    "message_response",
    "not_found",
    "oauth_error",
    "problems_response",
    "throttled",
    "unauthorized",
]

THROTTLE_REASON: Final = "You must wait before accessing this url again."
UNAUTHORIZED_MESSAGE: Final = "Authorization has been denied for this request."

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
_NO_CACHE: Final = {"Cache-Control": "no-cache", "Pragma": "no-cache", "Expires": "-1"}


def decode_json(data: bytes) -> Any:
    """Decode a JSON body.

    Raises:
        ValueError: the body is not valid UTF-8 JSON.
    """
    try:
        return _decode(data)
    except msgspec.DecodeError as exc:
        raise ValueError(str(exc)) from None
    except RecursionError:
        # msgspec stops at a fixed depth; a body nested that deep is a bad request,
        # not a fault of the server.
        raise ValueError("it is nested too deeply") from None


def json_response(
    payload: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON answer, encoded the way the service does: UTF-8, no extra spaces."""
    return web.Response(
        body=_encode(payload),
        status=status,
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def envelope(
    *,
    status: int,
    message: str,
    value: Any = None,
    successful: bool,
    updated_on: str | None = None,
    updated_by: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The envelope every write answers with, every field present."""
    return {
        "Status": status,
        "Message": message,
        "Value": value,
        "OpenInDialog": False,
        "OpenInWindow": False,
        "RedirectURL": None,
        "JavaScript": None,
        "UpdatedOn": updated_on,
        "UpdatedBy": updated_by,
        "Errors": errors,
        "WasSuccessful": successful,
    }


def message_response(
    status: int, message: str, *, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A failed envelope with a message and no field errors."""
    return json_response(
        envelope(status=status, message=message, successful=False),
        status=status,
        headers=headers,
    )


def problems_response(
    problems: Iterable[Problem], *, status: int = 400, body_status: int = 400
) -> web.Response:
    """A validation failure: a ``PropertyName: message`` summary and one entry per field.

    ``status`` is the HTTP status; ``body_status`` the ``Status`` inside the body, which
    stays 400 even when the emulator is told to answer validation failures with 200.
    """
    problems = list(problems)
    errors = [
        {
            "AttemptedValue": problem.attempted_value,
            "Message": problem.message,
            "PropertyName": problem.property_name,
        }
        for problem in problems
    ]
    summary = "; ".join(
        f"{problem.property_name}: {problem.message}" for problem in problems
    )
    body = envelope(
        status=body_status, message=summary, successful=False, errors=errors
    )

    return json_response(body, status=status)


def unauthorized(status: int = 401) -> web.Response:
    """The answer to missing or wrong credentials, or to a missing role."""
    return json_response({"Message": UNAUTHORIZED_MESSAGE}, status=status)


def throttled(status: int, retry_after: int) -> web.Response:
    """A throttle answer: empty body, ``Retry-After`` in seconds, the documented headers."""
    headers = {"Retry-After": str(retry_after), **_NO_CACHE}
    return web.Response(status=status, reason=THROTTLE_REASON, headers=headers)


def oauth_error(error: str, description: str) -> web.Response:
    """A token endpoint refusal."""
    return json_response(
        {"error": error, "error_description": description},
        status=400,
        headers=_NO_CACHE,
    )


def html_page(status: int) -> web.Response:
    """An HTML error page, as a proxy or a maintenance page in front of the API sends."""
    reason = web.Response(status=status).reason
    text = (
        "<!DOCTYPE html>\n<html><head><title>"
        f"{status} {reason}</title></head>\n"
        f"<body><h1>{status} {reason}</h1><p>The service is temporarily unable to handle "
        "the request.</p></body></html>\n"
    )
    return web.Response(
        text=text, status=status, content_type="text/html", charset="utf-8"
    )


def not_found(record_id: int | str) -> web.Response:
    """The answer for an Id that does not exist."""
    return message_response(404, f"{ENTITY} {record_id} was not found.")
