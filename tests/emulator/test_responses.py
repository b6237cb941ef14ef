"""Tests of the answer builders."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from aiohttp import web

from nexudus_async.emulator._responses import (
    THROTTLE_REASON,
    decode_json,
    envelope,
    html_page,
    message_response,
    oauth_error,
    problems_response,
    throttled,
    unauthorized,
)
from nexudus_async.emulator._validation import Problem

ENVELOPE_FIELDS = {
    "Status",
    "Message",
    "Value",
    "OpenInDialog",
    "OpenInWindow",
    "RedirectURL",
    "JavaScript",
    "UpdatedOn",
    "UpdatedBy",
    "Errors",
    "WasSuccessful",
}


def body_of(response: web.Response) -> Any:
    assert isinstance(response.body, bytes)
    return msgspec.json.decode(response.body)


class TestEnvelope:
    def test_every_field_present(self) -> None:
        """The write envelope always carries every documented field."""
        assert (
            set(envelope(status=200, message="m", successful=True)) == ENVELOPE_FIELDS
        )


class TestProblemsResponse:
    def test_documented_shape(self) -> None:
        """A validation answer: 400, PropertyName: message summary, one entry per field."""
        response = problems_response(
            [
                Problem("BusinessId", "is a required field"),
                Problem("Name", "is a required field", ""),
            ]
        )
        body = body_of(response)
        assert response.status == 400
        assert (
            body["Message"]
            == "BusinessId: is a required field; Name: is a required field"
        )
        assert body["Errors"] == [
            {
                "AttemptedValue": None,
                "Message": "is a required field",
                "PropertyName": "BusinessId",
            },
            {
                "AttemptedValue": "",
                "Message": "is a required field",
                "PropertyName": "Name",
            },
        ]
        assert body["WasSuccessful"] is False
        assert body["Value"] is None
        assert body["Status"] == 400

    def test_status_can_be_200(self) -> None:
        """The HTTP status can differ from the Status in the body."""
        response = problems_response([Problem("Name", "x")], status=200)
        assert response.status == 200
        assert body_of(response)["Status"] == 400


class TestOtherAnswers:
    def test_throttled(self) -> None:
        """A throttle answer has an empty body, Retry-After and the documented headers."""
        response = throttled(409, 3)
        assert response.status == 409
        assert response.reason == THROTTLE_REASON
        assert response.body is None
        assert response.headers["Retry-After"] == "3"
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.headers["Pragma"] == "no-cache"
        assert response.headers["Expires"] == "-1"

    def test_oauth_error(self) -> None:
        """A token refusal is 400 with error and error_description."""
        response = oauth_error("invalid_grant", "nope")
        assert response.status == 400
        assert body_of(response) == {
            "error": "invalid_grant",
            "error_description": "nope",
        }

    def test_unauthorized(self) -> None:
        """A 401 says authorization was denied."""
        response = unauthorized()
        assert response.status == 401
        assert body_of(response) == {
            "Message": "Authorization has been denied for this request."
        }

    def test_message_response(self) -> None:
        """A message answer is a failed envelope with the given status."""
        response = message_response(404, "gone")
        assert response.status == 404
        assert body_of(response)["Message"] == "gone"
        assert response.content_type == "application/json"
        assert response.charset == "utf-8"

    def test_html_page(self) -> None:
        """The HTML error page names its status."""
        response = html_page(502)
        assert response.status == 502
        assert response.content_type == "text/html"
        assert "502 Bad Gateway" in (response.text or "")


class TestDecodeJson:
    def test_valid(self) -> None:
        """JSON decodes to plain Python values, big integers exact."""
        assert decode_json(b'{"a": 123456789012345678901}') == {
            "a": 123456789012345678901
        }

    def test_deep_nesting_is_invalid(self) -> None:
        """A body nested past the decoder's depth is invalid JSON, not a crash."""
        with pytest.raises(ValueError, match="nested too deeply"):
            decode_json(b"[" * 100_000 + b"]" * 100_000)

    @pytest.mark.parametrize("data", [b"{", b"", b"\xff", b"{'a': 1}"])
    def test_invalid(self, data: bytes) -> None:
        """Invalid JSON raises ValueError."""
        with pytest.raises(ValueError):  # noqa: PT011 -- the message comes from the decoder
            decode_json(data)
