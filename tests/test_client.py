"""NexudusClient: lifecycle, answers, retries, auth flows, timeouts, logging, warnings."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import pickle
import re
import socket
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

import aiohttp
import attrs
import pytest
from aiohttp import web
from aiohttp.client_reqrep import ConnectionKey
from aiohttp.test_utils import TestServer
from conftest import FAKE_BASE, Reply

from nexudus_async._auth import BasicAuth, BearerAuth, PasswordAuth
from nexudus_async._client import NexudusClient
from nexudus_async._errors import (
    APIStatusError,
    AuthenticationError,
    AuthError,
    BadRequestError,
    ClientStateError,
    ConflictError,
    ConnectError,
    HostNotFoundError,
    NexudusError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    ProtocolError,
    RequestTimeoutError,
    ServerError,
    ThrottledError,
    UnsuccessfulError,
    ValidationError,
    WireFormatError,
)
from nexudus_async._limiter import RateLimits, Window
from nexudus_async._models import ImportFileCreate, Token
from nexudus_async._retry import RetryPolicy
from nexudus_async._sending import CallWithdrawn, Phase, SendState, send_state
from nexudus_async.emulator import Emulator, EmulatorConfig, Limits

if TYPE_CHECKING:
    from conftest import FakeAPI, FakeTime

ITEMS = "/api/crm/crmopportunityimportfiles"
TOKEN = "/api/token"
SECRET_PASSWORD = "pw-PLANTED-7f3a9c"
SECRET_ACCESS = "at-PLANTED-51d0e2"
SECRET_REFRESH = "rt-PLANTED-a8b4c6"
RECORD = {"Id": 7, "BusinessId": 1, "Name": "leads.csv"}
OK = {
    "Status": 200,
    "Message": "created",
    "Value": {"Id": 42},
    "WasSuccessful": True,
    "Errors": None,
}
NO_JITTER = RetryPolicy(jitter=0.0)
NEW = ImportFileCreate(business_id=1, name="leads.csv")


def _key(host: str = "127.0.0.1") -> ConnectionKey:
    return ConnectionKey(host, 8080, False, True, None, None, None)


def refused() -> aiohttp.ClientConnectorError:
    return aiohttp.ClientConnectorError(
        _key(), ConnectionRefusedError(111, "Connection refused")
    )


def unresolved() -> aiohttp.ClientConnectorDNSError:
    return aiohttp.ClientConnectorDNSError(
        _key("nowhere.invalid"), socket.gaierror(-2, "Name or service not known")
    )


def read_timeout() -> aiohttp.SocketTimeoutError:
    return aiohttp.SocketTimeoutError("Timeout on reading data from socket")


def token_answer(n: int = 1, expires_in: int = 3600) -> Reply:
    return Reply(
        json={
            "access_token": f"{SECRET_ACCESS}-{n}",
            "token_type": "bearer",
            "expires_in": expires_in,
            "refresh_token": f"{SECRET_REFRESH}-{n}",
        }
    )


def token_refused(description: str = "The refresh token is invalid.") -> Reply:
    return Reply(400, json={"error": "invalid_grant", "error_description": description})


class MemoryStore:
    """A token store in memory."""

    def __init__(self, token: Token | None = None) -> None:
        self.token = token

    async def load(self) -> Token | None:
        return self.token

    async def save(self, token: Token) -> None:
        self.token = token


def expired_token() -> Token:
    return Token(
        access_token=f"{SECRET_ACCESS}-0",
        token_type="bearer",
        expires_in=3600,
        refresh_token=f"{SECRET_REFRESH}-0",
        expires_at=datetime.now(timezone.utc) - timedelta(seconds=1),
    )


@asynccontextmanager
async def open_client(
    fake_time: FakeTime, **kwargs: Any
) -> AsyncIterator[NexudusClient]:
    kwargs.setdefault("auth", BearerAuth("static-token"))
    kwargs.setdefault("rate_limits", None)
    kwargs.setdefault("retry", NO_JITTER)
    kwargs.setdefault("base_url", FAKE_BASE)
    kwargs.setdefault("sleep", fake_time.sleep)
    async with NexudusClient(clock=fake_time.clock, **kwargs) as client:
        yield client


class TestLifecycle:
    async def test_owned_session_closed_on_exit(self, fake_time: FakeTime) -> None:
        """The session the client created is closed when the block ends."""
        async with open_client(fake_time) as client:
            session = client._session
            assert session is not None
            assert not session.closed
        assert session.closed
        assert client.closed

    async def test_caller_session_left_open(self, fake_time: FakeTime) -> None:
        """A session passed in is never closed by the client."""
        async with aiohttp.ClientSession() as session:
            async with open_client(fake_time, session=session):
                pass
            assert not session.closed

    async def test_use_before_open_and_after_close(self, fake_time: FakeTime) -> None:
        """Calls outside the open state fail with a clear ClientStateError."""
        client = NexudusClient(auth=BearerAuth("t"), base_url=FAKE_BASE)
        with pytest.raises(ClientStateError, match="not open"):
            await client.import_files.get(1)
        async with client:
            pass
        with pytest.raises(ClientStateError, match="is closed"):
            await client.import_files.get(1)
        with pytest.raises(ClientStateError, match="already closed"):
            await client.open()
        await client.close()  # a second close is harmless

    async def test_cannot_open_twice(self, fake_time: FakeTime) -> None:
        """Entering an open client again is refused."""
        async with open_client(fake_time) as client:
            with pytest.raises(ClientStateError, match="already open"):
                await client.open()

    async def test_closed_caller_session(self, fake_time: FakeTime) -> None:
        """A caller's session closed behind the client's back gives ClientStateError."""
        session = aiohttp.ClientSession()
        await session.close()
        async with open_client(fake_time, session=session) as client:
            with pytest.raises(ClientStateError, match="session"):
                await client.import_files.get(1)

    async def test_garbage_collected_open_client_warns(self) -> None:
        """An open client dropped without closing warns with a ResourceWarning naming it."""
        # Collect what earlier tests left first, so that only this client's warning
        # can appear below.
        gc.collect()
        client = NexudusClient(auth=BearerAuth("t"), base_url=FAKE_BASE)
        await client.open()
        session = client._session
        assert session is not None
        del client
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gc.collect()
        await session.close()
        messages = [str(w.message) for w in caught if w.category is ResourceWarning]
        assert any(
            re.match(r"Unclosed NexudusClient NexudusClient\(base_url=", m)
            for m in messages
        ), messages

    def test_failed_construction_does_not_warn(self) -> None:
        """A client whose construction failed leaves no warning behind."""
        gc.collect()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ValueError, match="plain http"):
                NexudusClient(auth=BearerAuth("t"), base_url="http://example.com")
            gc.collect()

    async def test_trust_env_reaches_owned_session(self, fake_time: FakeTime) -> None:
        """Proxy settings from the environment are used only when asked for."""
        async with open_client(fake_time) as client:
            assert client._session is not None
            assert client._session.trust_env is False
        async with open_client(fake_time, trust_env=True) as client:
            assert client._session is not None
            assert client._session.trust_env is True

    def test_repr_masks_credentials(self) -> None:
        """The client's repr names its URL and auth type, never the secret."""
        client = NexudusClient(auth=PasswordAuth("a@example.com", SECRET_PASSWORD))
        text = repr(client)
        assert text.startswith("NexudusClient(base_url='https://spaces.nexudus.com'")
        assert "state='new'" in text
        assert SECRET_PASSWORD not in text


class TestBaseUrl:
    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:5000",
            "http://127.8.9.10",
            "http://localhost:1",
            "http://[::1]:80",
            "https://x.example",
        ],
    )
    def test_accepted(self, url: str) -> None:
        """https anywhere and plain http on loopback hosts are accepted."""
        NexudusClient(auth=BearerAuth("t"), base_url=url)

    def test_http_refused_for_remote_host(self) -> None:
        """Plain http to a remote host is refused, naming the host."""
        with pytest.raises(ValueError, match=r"'api\.example\.com'"):
            NexudusClient(auth=BearerAuth("t"), base_url="http://api.example.com")

    def test_http_allowed_when_asked(self) -> None:
        """allow_http lifts the loopback rule."""
        client = NexudusClient(
            auth=BearerAuth("t"), base_url="http://10.0.0.5", allow_http=True
        )
        assert client.base_url == "http://10.0.0.5"

    @pytest.mark.parametrize(
        "url",
        [
            "ftp://x.example",
            "https://",
            "https://u:p@x.example",
            "https://x.example/?a=1",
            "x.example",
        ],
    )
    def test_unusable_refused(self, url: str) -> None:
        """URLs with credentials, a query, no host or another scheme are refused."""
        with pytest.raises(ValueError, match="base_url"):
            NexudusClient(auth=BearerAuth("t"), base_url=url)

    def test_trailing_slash_dropped(self) -> None:
        """A trailing slash does not double up in request paths."""
        client = NexudusClient(
            auth=BearerAuth("t"), base_url="https://x.example/prefix/"
        )
        assert client.base_url == "https://x.example/prefix"

    def test_default_is_spaces_host(self) -> None:
        """By default the client talks to spaces.nexudus.com over https."""
        assert (
            NexudusClient(auth=BearerAuth("t")).base_url == "https://spaces.nexudus.com"
        )


class TestAnswers:
    @pytest.mark.parametrize("status", [200, 201, 202])
    async def test_any_2xx_successful_envelope(
        self, fake_time: FakeTime, fake_api: FakeAPI, status: int
    ) -> None:
        """Any 2xx with WasSuccessful true is a success."""
        fake_api.on("POST", ITEMS, Reply(status, json=OK))
        async with open_client(fake_time) as client:
            result = await client.import_files.create(NEW)
        assert result.was_successful
        assert result.id == 42

    async def test_unsuccessful_200(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A 200 with WasSuccessful false raises with its field errors."""
        envelope = {
            "Message": "Name: is a required field",
            "WasSuccessful": False,
            "Errors": [
                {
                    "AttemptedValue": None,
                    "Message": "is a required field",
                    "PropertyName": "Name",
                }
            ],
        }
        fake_api.on("POST", ITEMS, Reply(json=envelope))
        async with open_client(fake_time) as client:
            with pytest.raises(UnsuccessfulError) as caught:
                await client.import_files.create(NEW)
        error = caught.value
        assert (error.status, error.method, error.path) == (200, "POST", ITEMS)
        assert [f.property_name for f in error.field_errors] == ["Name"]
        assert "Name: is a required field" in str(error)
        assert len(fake_api.requests) == 1

    @pytest.mark.parametrize(
        "content_type", ["text/html", "text/plain", "application/octet-stream"]
    )
    async def test_json_read_whatever_the_label(
        self, fake_time: FakeTime, fake_api: FakeAPI, content_type: str
    ) -> None:
        """JSON is read whatever content type the server claims."""
        fake_api.on("GET", f"{ITEMS}/7", Reply(json=RECORD, content_type=content_type))
        async with open_client(fake_time) as client:
            found = await client.import_files.get(7)
        assert found is not None
        assert found.name == "leads.csv"

    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            (b"", "the body is empty"),
            (b"  \n", "the body is empty"),
            (b"<html><body>Maintenance</body></html>", "the body is not JSON"),
            (b'{"Value": 1}', "not a write result"),
            (b"[1, 2]", "not a write result"),
            (b'{"WasSuccessful": "yes"}', "not a write result"),
        ],
    )
    async def test_non_envelope_is_protocol_error(
        self, fake_time: FakeTime, fake_api: FakeAPI, body: bytes, reason: str
    ) -> None:
        """Empty, HTML or non-envelope bodies become ProtocolError with status and body start."""
        fake_api.on("POST", ITEMS, Reply(200, body=body, content_type="text/html"))
        async with open_client(fake_time) as client:
            with pytest.raises(ProtocolError, match=reason) as caught:
                await client.import_files.create(NEW)
        assert caught.value.status == 200
        assert caught.value.body == body.decode()
        assert caught.value.__cause__ is None or isinstance(
            caught.value.__cause__, NexudusError
        )

    async def test_bad_envelope_field_is_protocol_error(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """An envelope whose fields do not fit is a ProtocolError, never a raw converter error."""
        fake_api.on(
            "POST",
            ITEMS,
            Reply(json={"WasSuccessful": True, "UpdatedOn": "not a date"}),
        )
        async with open_client(fake_time) as client:
            with pytest.raises(ProtocolError, match="UpdatedOn"):
                await client.import_files.create(NEW)

    @pytest.mark.parametrize(
        ("envelope", "path", "value"),
        [
            (
                {"WasSuccessful": True, "UpdatedOn": "2025-02-30T10:30:00Z"},
                "UpdatedOn",
                "2025-02-30T10:30:00Z",
            ),
            ({"WasSuccessful": True, "Status": 200.0}, "Status", 200.0),
            ({"WasSuccessful": True, "Value": [42]}, "Value", [42]),
            (
                {"WasSuccessful": False, "Errors": [{"Message": 3}]},
                "Errors[0].Message",
                3,
            ),
        ],
    )
    async def test_bad_envelope_error_names_the_field(
        self,
        fake_time: FakeTime,
        fake_api: FakeAPI,
        envelope: dict[str, Any],
        path: str,
        value: Any,
    ) -> None:
        """A misfit 2xx envelope is a ProtocolError quoting the wire path and raw value."""
        fake_api.on("POST", ITEMS, Reply(json=envelope))
        async with open_client(fake_time) as client:
            with pytest.raises(ProtocolError) as caught:
                await client.import_files.create(NEW)
        cause = caught.value.__cause__
        assert isinstance(cause, WireFormatError)
        assert (cause.path, cause.value) == (path, value)
        assert (
            str(caught.value) == f"POST {ITEMS} answered 200: bad write result: {cause}"
        )

    @pytest.mark.parametrize(
        "body", [b"", b"<html></html>", b"42", b'"text"', b"{broken"]
    )
    async def test_get_needs_a_document(
        self, fake_time: FakeTime, fake_api: FakeAPI, body: bytes
    ) -> None:
        """A read answered with no JSON object or array is a ProtocolError."""
        fake_api.on("GET", f"{ITEMS}/7", Reply(body=body))
        async with open_client(fake_time) as client:
            with pytest.raises(ProtocolError) as caught:
                await client.import_files.get(7)
        assert type(caught.value) is ProtocolError

    async def test_long_body_cut(self, fake_time: FakeTime, fake_api: FakeAPI) -> None:
        """Errors keep only the start of a long body."""
        fake_api.on("GET", f"{ITEMS}/7", Reply(502, body="<html>" + "x" * 10_000))
        async with open_client(fake_time, retry=RetryPolicy(max_attempts=1)) as client:
            with pytest.raises(ServerError) as caught:
                await client.import_files.get(7)
        assert caught.value.body is not None
        assert caught.value.body.startswith("<html>xxx")
        assert len(caught.value.body) <= 501

    async def test_validation_error(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A 400 with field errors is a ValidationError carrying them."""
        envelope = {
            "Message": "BusinessId: unknown business",
            "Value": None,
            "WasSuccessful": False,
            "Errors": [
                {
                    "AttemptedValue": 99,
                    "Message": "unknown business",
                    "PropertyName": "BusinessId",
                }
            ],
        }
        fake_api.on("POST", ITEMS, Reply(400, json=envelope))
        async with open_client(fake_time) as client:
            with pytest.raises(ValidationError) as caught:
                await client.import_files.create(NEW)
        assert caught.value.field_errors[0].attempted_value == 99
        assert caught.value.envelope is not None
        assert len(fake_api.requests) == 1

    @pytest.mark.parametrize(
        ("status", "body", "cls"),
        [
            (400, b'{"Message": "bad"}', BadRequestError),
            (400, b"", BadRequestError),
            (401, b"", AuthenticationError),
            (403, b"", PermissionDeniedError),
            (404, b"<html>nope</html>", NotFoundError),
            (418, b"", APIStatusError),
            (500, b"<html>boom</html>", ServerError),
            (302, b"", ProtocolError),
        ],
    )
    async def test_status_classes(
        self,
        fake_time: FakeTime,
        fake_api: FakeAPI,
        status: int,
        body: bytes,
        cls: type[APIStatusError],
    ) -> None:
        """Each error status maps to its class, keeping method, path, status and body."""
        headers = {"Location": "https://elsewhere.example/"} if status == 302 else {}
        fake_api.on("POST", ITEMS, Reply(status, body=body, headers=headers))
        async with open_client(fake_time) as client:
            with pytest.raises(APIStatusError) as caught:
                await client.import_files.create(NEW)
        assert type(caught.value) is cls
        assert (caught.value.method, caught.value.path, caught.value.status) == (
            "POST",
            ITEMS,
            status,
        )
        assert caught.value.body == body.decode()
        assert len(fake_api.requests) == 1

    @pytest.mark.parametrize(
        ("headers", "body"),
        [
            ({"Retry-After": "1"}, b""),
            ({}, b""),
            ({}, b'{"Message": "You must wait before accessing this url again."}'),
            (
                {"Retry-After": "1"},
                b'{"WasSuccessful": false, "Errors": [{"PropertyName": "Name", "Message": "taken"}]}',
            ),
            ({}, b"<html>wait</html>"),
        ],
    )
    async def test_409_throttle_signs(
        self,
        fake_time: FakeTime,
        fake_api: FakeAPI,
        headers: dict[str, str],
        body: bytes,
    ) -> None:
        """A 409 with Retry-After, an empty body, the "must wait" phrase or no envelope is a throttle."""
        fake_api.on("POST", ITEMS, Reply(409, body=body, headers=headers))
        async with open_client(fake_time, retry=RetryPolicy(max_attempts=1)) as client:
            with pytest.raises(ThrottledError):
                await client.import_files.create(NEW)

    async def test_409_with_field_errors_is_conflict(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A 409 explaining itself with field errors and no Retry-After is a real conflict."""
        body = {
            "WasSuccessful": False,
            "Errors": [{"PropertyName": "Name", "Message": "already exists"}],
        }
        fake_api.on("POST", ITEMS, Reply(409, json=body))
        async with open_client(fake_time) as client:
            with pytest.raises(ConflictError) as caught:
                await client.import_files.create(NEW)
        assert caught.value.field_errors[0].message == "already exists"
        assert len(fake_api.requests) == 1

    async def test_409_envelope_without_field_errors_is_conflict(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A 409 whose envelope explains itself, even without field errors, is not re-sent."""
        body = {
            "Message": "Name already exists",
            "WasSuccessful": False,
            "Errors": None,
        }
        fake_api.on("POST", ITEMS, Reply(409, json=body))
        async with open_client(fake_time) as client:
            with pytest.raises(ConflictError, match="Name already exists"):
                await client.import_files.create(NEW)
        assert len(fake_api.requests) == 1
        assert fake_time.sleeps == []

    async def test_429_always_throttle(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A 429 is a throttle whatever its body says."""
        body = {
            "WasSuccessful": False,
            "Errors": [{"PropertyName": "Name", "Message": "x"}],
        }
        fake_api.on("POST", ITEMS, Reply(429, json=body, headers={"Retry-After": "3"}))
        async with open_client(fake_time, retry=RetryPolicy(max_attempts=1)) as client:
            with pytest.raises(ThrottledError) as caught:
                await client.import_files.create(NEW)
        assert caught.value.retry_after == 3.0

    async def test_redirect_not_followed(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A redirect is not followed, so credentials never travel to another host."""
        fake_api.on(
            "GET",
            f"{ITEMS}/7",
            Reply(301, headers={"Location": f"{FAKE_BASE}/elsewhere"}),
        )
        async with open_client(fake_time) as client:
            with pytest.raises(ProtocolError, match="unexpected status"):
                await client.import_files.get(7)
        assert [r.path for r in fake_api.requests] == [f"{ITEMS}/7"]

    async def test_error_text_has_path_without_query(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """Error messages name the path but never the query string."""
        fake_api.on("GET", ITEMS, Reply(400, body=b""))
        async with open_client(fake_time) as client:
            with pytest.raises(BadRequestError) as caught:
                await client.import_files.list(name="private-name")
        assert str(caught.value) == f"GET {ITEMS} answered 400"
        assert "private-name" not in repr(caught.value.__dict__)

    async def test_request_headers(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """Requests ask for JSON, name the SDK and carry the credentials."""
        fake_api.on("POST", ITEMS, Reply(json=OK))
        async with open_client(
            fake_time, auth=BasicAuth("a@example.com", "pw")
        ) as client:
            await client.import_files.create(NEW)
        headers = fake_api.requests[0].headers
        assert headers["Accept"] == "application/json"
        assert headers["Content-Type"] == "application/json"
        assert headers["User-Agent"].startswith("nexudus-async/")
        assert headers["Authorization"].startswith("Basic ")


class TestRetries:
    async def test_get_retried_on_5xx(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A GET answered 503 is retried after capped exponential backoff."""
        fake_api.on("GET", f"{ITEMS}/7", Reply(503), Reply(502), Reply(json=RECORD))
        async with open_client(fake_time) as client:
            assert await client.import_files.get(7) is not None
        assert len(fake_api.requests) == 3
        assert fake_time.sleeps == [0.5, 1.0]

    @pytest.mark.parametrize(
        "failure", [read_timeout, aiohttp.ServerDisconnectedError, refused, unresolved]
    )
    async def test_get_retried_on_transport_failures(
        self, fake_time: FakeTime, fake_api: FakeAPI, failure: Any
    ) -> None:
        """A GET is retried after timeouts, drops and connection failures."""
        fake_api.on("GET", f"{ITEMS}/7", failure(), Reply(json=RECORD))
        async with open_client(fake_time) as client:
            assert await client.import_files.get(7) is not None
        assert len(fake_api.requests) == 2

    async def test_get_timeouts_exhausted(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """After the last attempt a timeout surfaces as RequestTimeoutError, a TimeoutError."""
        fake_api.on("GET", f"{ITEMS}/7", read_timeout())
        async with open_client(
            fake_time, retry=RetryPolicy(max_attempts=3, jitter=0.0)
        ) as client:
            with pytest.raises(TimeoutError) as caught:
                await client.import_files.get(7)
        assert isinstance(caught.value, RequestTimeoutError)
        assert caught.value.sent is True
        assert isinstance(caught.value.__cause__, aiohttp.SocketTimeoutError)
        assert len(fake_api.requests) == 3

    @pytest.mark.parametrize(
        ("method", "path"), [("PUT", ITEMS), ("DELETE", f"{ITEMS}/7")]
    )
    async def test_put_and_delete_retried(
        self, fake_time: FakeTime, fake_api: FakeAPI, method: str, path: str
    ) -> None:
        """PUT and DELETE are retried on 5xx and timeouts."""
        from nexudus_async._models import ImportFileUpdate

        fake_api.on(method, path, Reply(500), read_timeout(), Reply(json=OK))
        async with open_client(fake_time) as client:
            if method == "PUT":
                await client.import_files.update(
                    ImportFileUpdate(id=7, business_id=1, name="n")
                )
            else:
                await client.import_files.delete(7)
        assert len(fake_api.requests) == 3

    async def test_create_5xx_not_retried(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A create answered 5xx is not sent again."""
        fake_api.on("POST", ITEMS, Reply(503), Reply(json=OK))
        async with open_client(fake_time) as client:
            with pytest.raises(ServerError):
                await client.import_files.create(NEW)
        assert len(fake_api.requests) == 1

    @pytest.mark.parametrize(
        "failure",
        [read_timeout, aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError],
    )
    async def test_create_lost_after_sending(
        self, fake_time: FakeTime, fake_api: FakeAPI, failure: Any
    ) -> None:
        """A create that was sent and got no answer is never re-sent: outcome unknown."""
        fake_api.on("POST", ITEMS, failure(), Reply(json=OK))
        async with open_client(fake_time) as client:
            with pytest.raises(OutcomeUnknownError) as caught:
                await client.import_files.create(NEW)
        assert len(fake_api.requests) == 1
        assert (caught.value.method, caught.value.path) == ("POST", ITEMS)
        assert caught.value.__cause__ is not None
        assert not isinstance(caught.value, TimeoutError)

    async def test_create_refused_at_connect_is_retried(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A create whose connection was refused was never sent, so it is retried."""
        fake_api.on(
            "POST",
            ITEMS,
            refused(),
            aiohttp.ConnectionTimeoutError("connect"),
            Reply(json=OK),
        )
        async with open_client(fake_time) as client:
            result = await client.import_files.create(NEW)
        assert result.id == 42
        assert len(fake_api.requests) == 3

    async def test_unresolved_host_exhausted(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A host that never resolves ends in HostNotFoundError, not sent."""
        fake_api.on("POST", ITEMS, unresolved())
        async with open_client(fake_time, retry=RetryPolicy(max_attempts=2)) as client:
            with pytest.raises(HostNotFoundError) as caught:
                await client.import_files.create(NEW)
        assert caught.value.sent is False
        assert isinstance(caught.value, ConnectError)
        assert "nowhere.invalid" in str(caught.value)
        assert len(fake_api.requests) == 2

    async def test_refused_exhausted(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """Connection refused on every attempt ends in ConnectError(sent=False)."""
        fake_api.on("GET", f"{ITEMS}/7", refused())
        async with open_client(fake_time) as client:
            with pytest.raises(ConnectError) as caught:
                await client.import_files.get(7)
        assert type(caught.value) is ConnectError
        assert caught.value.sent is False
        assert len(fake_api.requests) == 5

    async def test_throttle_retry_after_seconds(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A create throttled with Retry-After: 2 waits two seconds, then is sent again."""
        fake_api.on(
            "POST", ITEMS, Reply(409, headers={"Retry-After": "2"}), Reply(json=OK)
        )
        async with open_client(fake_time) as client:
            start = fake_time.now
            await client.import_files.create(NEW)
        assert fake_time.sleeps == [2.0]
        assert fake_time.now - start == 2.0
        assert len(fake_api.requests) == 2

    async def test_throttle_retry_after_http_date(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """An HTTP-date Retry-After is measured against the server's Date header."""
        server_now = datetime(2025, 1, 15, 10, 30, tzinfo=timezone.utc)
        headers = {
            "Date": format_datetime(server_now, usegmt=True),
            "Retry-After": format_datetime(
                server_now + timedelta(seconds=3), usegmt=True
            ),
        }
        fake_api.on("POST", ITEMS, Reply(429, headers=headers), Reply(json=OK))
        async with open_client(fake_time) as client:
            await client.import_files.create(NEW)
        assert fake_time.sleeps == [3.0]

    @pytest.mark.parametrize("value", ["soon", "-5", "", "Tue, 99 Foo"])
    async def test_bad_retry_after_falls_back(
        self, fake_time: FakeTime, fake_api: FakeAPI, value: str
    ) -> None:
        """Garbage or negative Retry-After values fall back to the backoff."""
        fake_api.on(
            "POST", ITEMS, Reply(409, headers={"Retry-After": value}), Reply(json=OK)
        )
        async with open_client(fake_time) as client:
            await client.import_files.create(NEW)
        assert fake_time.sleeps == [0.5]

    async def test_retry_after_capped(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A long Retry-After is cut to the policy's cap."""
        fake_api.on(
            "GET",
            f"{ITEMS}/7",
            Reply(429, headers={"Retry-After": "600"}),
            Reply(json=RECORD),
        )
        async with open_client(
            fake_time, retry=RetryPolicy(retry_after_max=9.0)
        ) as client:
            await client.import_files.get(7)
        assert fake_time.sleeps == [9.0]

    async def test_throttle_past_give_up_is_not_retried(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A throttle asking for hours (a spent daily quota) raises at once, unretried."""
        fake_api.on("POST", ITEMS, Reply(409, headers={"Retry-After": "7200"}))
        async with open_client(fake_time) as client:
            with pytest.raises(ThrottledError) as caught:
                await client.import_files.create(NEW)
        assert caught.value.retry_after == 7200.0
        assert len(fake_api.requests) == 1
        assert fake_time.sleeps == []

    async def test_throttles_exhausted(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """Still throttled after the last attempt: ThrottledError with retry_after."""
        fake_api.on("POST", ITEMS, Reply(409, headers={"Retry-After": "1"}))
        async with open_client(fake_time, retry=RetryPolicy(max_attempts=4)) as client:
            with pytest.raises(ThrottledError) as caught:
                await client.import_files.create(NEW)
        assert caught.value.retry_after == 1.0
        assert len(fake_api.requests) == 4
        assert fake_time.sleeps == [1.0, 1.0, 1.0]

    async def test_throttle_pauses_every_request(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """One throttle answer holds the other requests of the client until it passes."""
        arrivals: dict[str, float] = {}
        fake_api.on(
            "POST", ITEMS, Reply(409, headers={"Retry-After": "5"}), Reply(json=OK)
        )
        fake_api.on("GET", f"{ITEMS}/7", Reply(json=RECORD))
        async with open_client(fake_time) as client:
            start = fake_time.now

            async def create() -> None:
                await client.import_files.create(NEW)
                arrivals["create"] = fake_time.now - start

            paused = asyncio.Event()
            pause = client.limiter.pause

            def pause_and_tell(seconds: float) -> None:
                pause(seconds)
                paused.set()

            client.limiter.pause = pause_and_tell  # type: ignore[method-assign]

            async def read_once_paused() -> None:
                await paused.wait()
                await client.import_files.get(7)
                arrivals["get"] = fake_time.now - start

            await asyncio.gather(create(), read_once_paused())
        assert arrivals["get"] >= 5.0
        assert arrivals["create"] >= 5.0

    async def test_max_attempts_one_disables_retry(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """max_attempts=1 sends every request exactly once."""
        fake_api.on("GET", f"{ITEMS}/7", Reply(503))
        async with open_client(fake_time, retry=RetryPolicy(max_attempts=1)) as client:
            with pytest.raises(ServerError):
                await client.import_files.get(7)
        assert len(fake_api.requests) == 1
        assert fake_time.sleeps == []


class TestAuthFlows:
    async def test_password_grant_then_bearer(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """The client signs in form-encoded at /api/token and sends the bearer token."""
        fake_api.on("POST", TOKEN, token_answer(1))
        fake_api.on("GET", f"{ITEMS}/7", Reply(json=RECORD))
        auth = PasswordAuth("a+b@example.com", "p&ss=word", client_id="app-1")
        async with open_client(fake_time, auth=auth) as client:
            await client.import_files.get(7)
            await client.import_files.get(7)
        token_request, *reads = fake_api.requests
        assert (
            token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        )
        assert token_request.headers["client_id"] == "app-1"
        assert "Authorization" not in token_request.headers
        assert (
            token_request.body
            == b"grant_type=password&username=a%2Bb%40example.com&password=p%26ss%3Dword"
        )
        assert [r.headers["Authorization"] for r in reads] == [
            f"Bearer {SECRET_ACCESS}-1"
        ] * 2

    async def test_token_refusal_is_auth_error(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A refused sign-in raises AuthError with the server's reason; nothing else is sent."""
        fake_api.on(
            "POST", TOKEN, token_refused("The user name or password is incorrect.")
        )
        async with open_client(
            fake_time, auth=PasswordAuth("a@example.com", "bad")
        ) as client:
            with pytest.raises(AuthError) as caught:
                await client.import_files.get(7)
        assert caught.value.error == "invalid_grant"
        assert caught.value.status == 400
        assert "incorrect" in str(caught.value)
        assert [r.path for r in fake_api.requests] == [TOKEN]

    async def test_token_endpoint_retried_when_safe(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """Asking for a token is retried after 5xx, timeouts and throttles."""
        fake_api.on(
            "POST",
            TOKEN,
            Reply(503),
            read_timeout(),
            Reply(409, headers={"Retry-After": "1"}),
            token_answer(),
        )
        fake_api.on("GET", f"{ITEMS}/7", Reply(json=RECORD))
        async with open_client(
            fake_time, auth=PasswordAuth("a@example.com", "pw")
        ) as client:
            await client.import_files.get(7)
        assert len(fake_api.seen("POST", TOKEN)) == 4

    async def test_twenty_requests_at_expiry_one_refresh(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """Twenty concurrent requests at token expiry cause exactly one refresh."""
        fake_api.on("POST", TOKEN, token_answer(1))
        fake_api.on("GET", f"{ITEMS}/7", Reply(json=RECORD))
        auth = PasswordAuth(
            "a@example.com", "pw", token_store=MemoryStore(expired_token())
        )
        async with open_client(fake_time, auth=auth) as client:
            await asyncio.gather(*(client.import_files.get(7) for _ in range(20)))
        token_requests = fake_api.seen("POST", TOKEN)
        assert len(token_requests) == 1
        assert b"grant_type=refresh_token" in token_requests[0].body
        reads = fake_api.seen("GET")
        assert {r.headers["Authorization"] for r in reads} == {
            f"Bearer {SECRET_ACCESS}-1"
        }
        assert len(reads) == 20

    async def test_token_that_expires_while_paced_is_renewed_before_sending(
        self, fake_time: FakeTime, fake_api: FakeAPI, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A request held by the rate limiter asks for the credential again.

        The token is good when the request starts and expiring by the time the
        limiter lets it go: the request carries the renewed token, not the stale
        one, and does not meet a 401 first.
        """
        fake_api.on("POST", TOKEN, token_answer(1), token_answer(2))
        fake_api.on("GET", f"{ITEMS}/7", Reply(json=RECORD))
        held = False
        sleep = fake_time.sleep

        async def sleep_then_expire(seconds: float) -> None:
            nonlocal held
            await sleep(seconds)
            held = True

        real_is_expired = Token.is_expired

        def is_expired(
            token: Token, *, now: datetime | None = None, leeway: float = 0.0
        ) -> bool:
            first = token.access_token == f"{SECRET_ACCESS}-1"
            return (held and first) or real_is_expired(token, now=now, leeway=leeway)

        monkeypatch.setattr(Token, "is_expired", is_expired)
        async with NexudusClient(
            auth=PasswordAuth("a@example.com", "pw"),
            base_url=FAKE_BASE,
            rate_limits=RateLimits([Window(2, 60.0)]),
            retry=NO_JITTER,
            sleep=sleep_then_expire,
            clock=fake_time.clock,
        ) as client:
            # The token request and the first read fill the window.
            await client.import_files.get(7)
            await client.import_files.get(7)
        used = [r.headers["Authorization"] for r in fake_api.seen("GET")]
        assert used == [f"Bearer {SECRET_ACCESS}-1", f"Bearer {SECRET_ACCESS}-2"]
        assert held

    async def test_revoked_token_one_refresh_then_success(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A token revoked mid-way causes one refresh and then success."""
        fake_api.on("POST", TOKEN, token_answer(1), token_answer(2))
        fake_api.on(
            "GET", f"{ITEMS}/7", Reply(json=RECORD), Reply(401), Reply(json=RECORD)
        )
        async with open_client(
            fake_time, auth=PasswordAuth("a@example.com", "pw")
        ) as client:
            await client.import_files.get(7)
            assert await client.import_files.get(7) is not None
        grants = [r.body.split(b"&")[0] for r in fake_api.seen("POST", TOKEN)]
        assert grants == [b"grant_type=password", b"grant_type=refresh_token"]
        used = [r.headers["Authorization"] for r in fake_api.seen("GET")]
        assert used == [f"Bearer {SECRET_ACCESS}-1"] * 2 + [f"Bearer {SECRET_ACCESS}-2"]
        assert fake_time.sleeps == []

    async def test_create_after_401_is_sent_again(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A 401 means the create was not processed, so it is sent again after a refresh."""
        fake_api.on("POST", TOKEN, token_answer(1), token_answer(2))
        fake_api.on("POST", ITEMS, Reply(401), Reply(json=OK))
        async with open_client(
            fake_time, auth=PasswordAuth("a@example.com", "pw")
        ) as client:
            assert (await client.import_files.create(NEW)).id == 42
        assert len(fake_api.seen("POST", ITEMS)) == 2

    async def test_second_401_raises(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A 401 right after a renewal is final: the account lacks the right."""
        fake_api.on("POST", TOKEN, token_answer(1), token_answer(2))
        fake_api.on("GET", f"{ITEMS}/7", Reply(401))
        async with open_client(
            fake_time, auth=PasswordAuth("a@example.com", "pw")
        ) as client:
            with pytest.raises(AuthenticationError):
                await client.import_files.get(7)
        assert len(fake_api.seen("GET")) == 2
        assert len(fake_api.seen("POST", TOKEN)) == 2

    async def test_static_credentials_401_not_retried(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """With Basic or a fixed token there is nothing to renew: a 401 raises at once."""
        fake_api.on("GET", f"{ITEMS}/7", Reply(401))
        async with open_client(
            fake_time, auth=BasicAuth("a@example.com", "pw")
        ) as client:
            with pytest.raises(AuthenticationError):
                await client.import_files.get(7)
        assert len(fake_api.requests) == 1

    async def test_rejected_refresh_falls_back_then_one_error(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A refused refresh falls back once to the password grant, then fails with one AuthError."""
        fake_api.on(
            "POST",
            TOKEN,
            token_refused(),
            token_refused("The user name or password is incorrect."),
        )
        auth = PasswordAuth(
            "a@example.com", "pw", token_store=MemoryStore(expired_token())
        )
        async with open_client(fake_time, auth=auth) as client:
            results = await asyncio.gather(
                *(client.import_files.get(7) for _ in range(20)), return_exceptions=True
            )
        assert all(type(r) is AuthError for r in results)
        assert {str(r) for r in results} == {
            "token request refused: invalid_grant (The user name or password is incorrect.)"
        }
        grants = [r.body.split(b"&")[0] for r in fake_api.seen("POST", TOKEN)]
        assert grants == [b"grant_type=refresh_token", b"grant_type=password"]
        assert fake_api.seen("GET") == []


class TestLogging:
    async def test_debug_line_per_request(
        self, fake_time: FakeTime, fake_api: FakeAPI, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Each request logs method, path without query, status, attempt and time at DEBUG."""
        caplog.set_level(logging.DEBUG, logger="nexudus_async")
        fake_api.on(
            "GET",
            ITEMS,
            Reply(503),
            Reply(
                json={
                    "Records": [],
                    "CurrentPage": 1,
                    "HasNextPage": False,
                    "HasPreviousPage": False,
                }
            ),
        )
        async with open_client(fake_time) as client:
            await client.import_files.list(name="secret-filter")
        lines = [(r.levelname, r.getMessage()) for r in caplog.records]
        assert [level for level, _ in lines] == ["DEBUG", "INFO", "DEBUG"]
        assert lines[0][1].startswith(f"GET {ITEMS} -> 503 (attempt 1, ")
        assert lines[1][1] == f"retrying GET {ITEMS} in 0.50s after ServerError (503)"
        assert lines[2][1].startswith(f"GET {ITEMS} -> 200 (attempt 2, ")
        assert all(r.name.startswith("nexudus_async.") for r in caplog.records)
        assert "secret-filter" not in caplog.text
        assert (
            caplog.records[0].args is not None
        )  # lazy %-formatting, not pre-built text

    async def test_transport_failure_logged_by_name(
        self, fake_time: FakeTime, fake_api: FakeAPI, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A failed exchange logs the failure's type instead of a status."""
        caplog.set_level(logging.DEBUG, logger="nexudus_async")
        fake_api.on("POST", ITEMS, read_timeout())
        async with open_client(fake_time) as client:
            with pytest.raises(OutcomeUnknownError):
                await client.import_files.create(NEW)
        assert (
            caplog.records[0]
            .getMessage()
            .startswith(f"POST {ITEMS} -> SocketTimeoutError (attempt 1, ")
        )

    async def test_planted_secrets_never_leak(
        self, fake_time: FakeTime, fake_api: FakeAPI, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A planted password and tokens appear in no log record, repr or error text."""
        caplog.set_level(logging.DEBUG)
        fake_api.on(
            "POST",
            TOKEN,
            Reply(503, body=b"<html>down</html>"),
            token_answer(1),
            # Some OAuth servers answer form-encoded: not JSON, and full of secrets.
            Reply(
                200,
                body=f"access_token={SECRET_ACCESS}&expires_in=60",
                content_type="text/plain",
            ),
            Reply(200, json={"access_token": SECRET_ACCESS, "token_type": "bearer"}),
            token_refused(),
            token_refused("no"),
        )
        fake_api.on(
            "GET",
            f"{ITEMS}/7",
            Reply(json=RECORD),
            Reply(401),
            Reply(401),
            Reply(401),
        )
        fake_api.on(
            "POST",
            ITEMS,
            Reply(
                400, json={"WasSuccessful": False, "Errors": [{"PropertyName": "Name"}]}
            ),
            read_timeout(),
        )
        errors: list[BaseException] = []
        auth = PasswordAuth("a@example.com", SECRET_PASSWORD, totp=SECRET_PASSWORD)
        async with open_client(
            fake_time, auth=auth, retry=RetryPolicy(max_attempts=2, jitter=0.0)
        ) as client:
            texts = [repr(client), repr(client._auth), repr(auth)]
            await client.import_files.get(7)
            for action in (
                lambda: client.import_files.get(7),
                lambda: client.import_files.get(7),
                lambda: client.import_files.get(7),
                lambda: client.import_files.create(NEW),
                lambda: client.import_files.create(NEW),
            ):
                try:
                    await action()
                except NexudusError as exc:
                    errors.append(exc)
            texts.append(repr(client._auth))
        assert len(errors) == 5
        for error in errors:
            chain: BaseException | None = error
            while chain is not None:
                texts += [str(chain), repr(chain), repr(vars(chain))]
                chain = chain.__cause__ or chain.__context__
            texts.append(repr(pickle.loads(pickle.dumps(error)).__dict__))
        texts.append(caplog.text)
        texts += [repr(r.args) for r in caplog.records]
        for secret in (SECRET_PASSWORD, SECRET_ACCESS, SECRET_REFRESH):
            assert not [t for t in texts if secret in t], secret


class TestTimeouts:
    """Timeouts against a real local server."""

    @staticmethod
    @asynccontextmanager
    async def server(delay: float) -> AsyncIterator[tuple[TestServer, list[str]]]:
        seen: list[str] = []
        release = asyncio.Event()

        async def handler(request: web.Request) -> web.Response:
            seen.append(request.method)
            # Ends early when the test is over, so shutting the server down is quick.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(release.wait(), delay)
            return web.json_response(OK if request.method == "POST" else RECORD)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        async with TestServer(app) as server:
            try:
                yield server, seen
            finally:
                release.set()

    async def test_create_timeout_after_sending(self, fake_time: FakeTime) -> None:
        """A create that times out after sending is not re-sent and raises OutcomeUnknownError."""
        async with self.server(delay=2.0) as (server, seen):
            base = str(server.make_url("")).rstrip("/")
            async with open_client(fake_time, base_url=base, timeout=0.1) as client:
                with pytest.raises(OutcomeUnknownError, match="timed out") as caught:
                    await client.import_files.create(NEW)
        assert seen == ["POST"]
        assert isinstance(caught.value.__cause__, asyncio.TimeoutError)

    async def test_get_timeout_retried(self, fake_time: FakeTime) -> None:
        """A slow GET is retried, then raises RequestTimeoutError marked as sent."""
        async with self.server(delay=2.0) as (server, seen):
            base = str(server.make_url("")).rstrip("/")
            policy = RetryPolicy(max_attempts=2, jitter=0.0)
            async with open_client(
                fake_time, base_url=base, timeout=0.1, retry=policy
            ) as client:
                with pytest.raises(RequestTimeoutError) as caught:
                    await client.import_files.get(7)
        assert seen == ["GET", "GET"]
        assert caught.value.sent is True

    async def test_refused_connection_real(self, fake_time: FakeTime) -> None:
        """A port nobody listens on gives ConnectError(sent=False) after the retries."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        policy = RetryPolicy(max_attempts=2, jitter=0.0)
        async with open_client(
            fake_time, base_url=f"http://127.0.0.1:{port}", retry=policy
        ) as client:
            with pytest.raises(ConnectError) as caught:
                await client.import_files.create(NEW)
        assert caught.value.sent is False
        assert fake_time.sleeps == [0.5]

    async def test_limiter_wait_not_counted(self) -> None:
        """Time spent waiting for the rate limiter does not count towards the timeout."""
        limits = RateLimits([Window(1, 0.4)])
        async with self.server(delay=0.0) as (server, seen):
            base = str(server.make_url("")).rstrip("/")
            async with NexudusClient(
                auth=BearerAuth("t"), base_url=base, timeout=0.2, rate_limits=limits
            ) as client:
                await asyncio.gather(*(client.import_files.get(7) for _ in range(3)))
        assert seen == ["GET"] * 3

    async def test_pool_wait_not_counted(self) -> None:
        """Time spent waiting for a free pooled connection does not count either."""
        async with self.server(delay=0.15) as (server, seen):
            base = str(server.make_url("")).rstrip("/")
            connector = aiohttp.TCPConnector(limit=1)
            async with aiohttp.ClientSession(connector=connector) as session:
                policy = RetryPolicy(max_attempts=1)
                async with NexudusClient(
                    auth=BearerAuth("t"),
                    base_url=base,
                    session=session,
                    timeout=0.3,
                    retry=policy,
                    rate_limits=None,
                ) as client:
                    await asyncio.gather(
                        *(client.import_files.get(7) for _ in range(4))
                    )
        assert seen == ["GET"] * 4


class Hold:
    """A sleep that never ends, and an event set once something starts one."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.started.set()
        await asyncio.Event().wait()


class BlockingStore:
    """A token store whose load never returns: the credential is never ready."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def load(self) -> Token | None:
        self.started.set()
        await asyncio.Event().wait()
        return None

    async def save(self, token: Token) -> None:
        raise AssertionError("nothing to save")


async def cancel_once(
    started: Awaitable[object], call: Callable[[], Awaitable[object]], state: SendState
) -> None:
    """Run ``call`` with ``state`` in its context; cancel it once ``started`` is done."""

    async def tracked() -> None:
        send_state.set(state)
        await call()

    task = asyncio.ensure_future(tracked())
    await started
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


class TestSendState:
    """What the client tells a caller that asks whether a cancelled call was sent."""

    @pytest.mark.parametrize("held_by", ["full window", "pause"])
    async def test_a_create_the_limiter_holds_is_waiting(
        self, fake_time: FakeTime, fake_api: FakeAPI, held_by: str
    ) -> None:
        """A create cancelled while the rate limiter holds it was never sent."""
        fake_api.on("POST", ITEMS, Reply(json=OK))
        hold = Hold()
        state = SendState()
        async with open_client(
            fake_time, sleep=hold.sleep, rate_limits=RateLimits([Window(1, 60.0)])
        ) as client:
            if held_by == "full window":
                await client.import_files.create(NEW)
            else:
                client.limiter.pause(30.0)
            sent_before = len(fake_api.requests)
            await cancel_once(
                hold.started.wait(), lambda: client.import_files.create(NEW), state
            )
        assert state.phase is Phase.WAITING
        assert len(fake_api.requests) == sent_before

    async def test_a_create_throttled_then_held_is_waiting_again(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A create the server throttled and the pause then holds is waiting again."""
        fake_api.on("POST", ITEMS, Reply(429, headers={"Retry-After": "5"}))
        hold = Hold()
        state = SendState()
        async with open_client(fake_time, sleep=hold.sleep) as client:
            await cancel_once(
                hold.started.wait(), lambda: client.import_files.create(NEW), state
            )
        assert state.phase is Phase.WAITING
        assert len(fake_api.seen("POST", ITEMS)) == 1

    async def test_a_create_waiting_for_its_token_is_waiting(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A create cancelled while the credential is not ready was never sent."""
        store = BlockingStore()
        state = SendState()
        auth = PasswordAuth("a@example.com", "pw", token_store=store)
        async with open_client(fake_time, auth=auth) as client:
            await cancel_once(
                store.started.wait(), lambda: client.import_files.create(NEW), state
            )
        assert state.phase is Phase.WAITING
        assert fake_api.requests == []

    async def test_the_token_request_on_the_way_is_not_the_create(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A token fetched for a create, which the limiter then holds: still waiting."""
        fake_api.on("POST", TOKEN, token_answer(1))
        hold = Hold()
        state = SendState()
        # The token request takes the only slot.
        async with open_client(
            fake_time,
            sleep=hold.sleep,
            auth=PasswordAuth("a@example.com", "pw"),
            rate_limits=RateLimits([Window(1, 60.0)]),
        ) as client:
            await cancel_once(
                hold.started.wait(), lambda: client.import_files.create(NEW), state
            )
        assert state.phase is Phase.WAITING
        assert [r.path for r in fake_api.requests] == [TOKEN]

    async def test_a_create_at_the_server_is_sent(self, fake_time: FakeTime) -> None:
        """A create cancelled after it was handed to the transport may have landed."""
        state = SendState()
        async with TestTimeouts.server(delay=5.0) as (server, seen):
            base = str(server.make_url("")).rstrip("/")
            async with open_client(fake_time, base_url=base) as client:
                await cancel_once(
                    requested(seen), lambda: client.import_files.create(NEW), state
                )
        assert seen == ["POST"]
        assert state.phase is Phase.SENT

    async def test_a_finished_create_is_sent(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A create that got its answer stays marked as sent."""
        fake_api.on("POST", ITEMS, Reply(json=OK))
        state = SendState()

        async def create() -> None:
            send_state.set(state)
            await client.import_files.create(NEW)

        async with open_client(fake_time) as client:
            await asyncio.ensure_future(create())
        assert state.phase is Phase.SENT

    @pytest.mark.parametrize("later", ["read", "create"])
    async def test_later_calls_do_not_undo_a_send(
        self, fake_time: FakeTime, fake_api: FakeAPI, later: str
    ) -> None:
        """A read, or a second create, held after a create was sent leaves it sent."""
        fake_api.on("POST", ITEMS, Reply(json=OK))
        hold = Hold()
        state = SendState()
        async with open_client(fake_time, sleep=hold.sleep) as client:

            async def create_then_held() -> None:
                await client.import_files.create(NEW)
                client.limiter.pause(30.0)
                if later == "read":
                    await client.import_files.get(7)
                else:
                    await client.import_files.create(NEW)

            await cancel_once(hold.started.wait(), create_then_held, state)
        assert state.phase is Phase.SENT
        assert len(fake_api.requests) == 1


async def requested(seen: list[str]) -> None:
    """Return once the server has seen a request."""
    # The server only keeps a list; it has no event to wait on.
    while not seen:  # noqa: ASYNC110
        await asyncio.sleep(0.005)


@contextmanager
def no_leak_warnings(loop: asyncio.AbstractEventLoop) -> Iterator[list[str]]:
    """Collect ResourceWarnings and loop complaints about unclosed sessions or connectors."""
    complaints: list[str] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(
        lambda _loop, context: complaints.append(str(context.get("message")))
    )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield complaints
            gc.collect()
        complaints += [
            str(w.message) for w in caught if issubclass(w.category, ResourceWarning)
        ]
    finally:
        loop.set_exception_handler(previous)


class TestWithdrawn:
    """A caller that withdraws what the client has not sent yet."""

    async def test_a_withdrawn_create_held_by_the_limiter_never_leaves(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """Withdrawn while the limiter holds it: CallWithdrawn, and no request."""
        fake_api.on("POST", ITEMS, Reply(json=OK))
        started, go = asyncio.Event(), asyncio.Event()

        async def sleep(seconds: float) -> None:
            started.set()
            await go.wait()
            await fake_time.sleep(seconds)

        state = SendState()
        async with open_client(fake_time, sleep=sleep) as client:
            client.limiter.pause(30.0)

            async def create() -> None:
                send_state.set(state)
                await client.import_files.create(NEW)

            task = asyncio.ensure_future(create())
            await started.wait()
            state.withdrawn = True
            go.set()
            with pytest.raises(CallWithdrawn):
                await task
        assert fake_api.requests == []
        assert state.phase is Phase.WAITING

    async def test_a_withdrawn_state_lets_nothing_more_leave(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """Calls made under a withdrawn state raise at once; untracked ones go on."""
        fake_api.on("POST", ITEMS, Reply(json=OK))
        fake_api.on("GET", f"{ITEMS}/1", Reply(json=RECORD))
        state = SendState()
        state.withdrawn = True
        async with open_client(fake_time) as client:

            async def calls() -> object:
                send_state.set(state)
                with pytest.raises(CallWithdrawn):
                    await client.import_files.create(NEW)
                # A read is not tracked: withdrawing creates leaves it alone.
                return await client.import_files.get(1)

            found = await calls()
        assert found is not None
        assert [r.method for r in fake_api.requests] == ["GET"]
        assert "withdrawn" in repr(state)


class TestNoLeaks:
    """Under warnings-as-errors, no unclosed session or connector is left behind."""

    @pytest.mark.parametrize(
        ("action", "expected"),
        [("ok", None), ("error", BadRequestError), ("cancel", asyncio.CancelledError)],
    )
    async def test_no_unclosed_warnings(
        self, action: str, expected: type[BaseException] | None
    ) -> None:
        """Success, an exception and cancellation all leave nothing unclosed."""

        async def handler(request: web.Request) -> web.Response:
            if action == "error":
                return web.Response(status=400)
            await asyncio.sleep(0.2 if action == "cancel" else 0)
            return web.json_response(RECORD)

        async def run(base: str) -> None:
            async with NexudusClient(
                auth=BearerAuth("t"), base_url=base, rate_limits=None
            ) as client:
                task = asyncio.create_task(client.import_files.get(7))
                if action == "cancel":
                    await asyncio.sleep(0.05)
                    task.cancel()
                await task

        app = web.Application()
        app.router.add_get(ITEMS + "/{id}", handler)
        with no_leak_warnings(asyncio.get_running_loop()) as complaints:
            async with TestServer(app) as server:
                base = str(server.make_url("")).rstrip("/")
                if expected is None:
                    await run(base)
                else:
                    with pytest.raises(expected):
                        await run(base)
        assert complaints == []


class TestAgainstEmulator:
    """Whole flows against the emulator, in real time."""

    async def _signed_in_token(self, emulator: Emulator) -> Token:
        store = MemoryStore()
        auth = PasswordAuth("admin@example.com", "password", token_store=store)
        async with NexudusClient(
            auth=auth, base_url=emulator.base_url, rate_limits=None
        ) as client:
            await client.import_files.list()
        assert store.token is not None
        return store.token

    async def test_twenty_requests_at_expiry_one_refresh(self) -> None:
        """Twenty concurrent requests at token expiry lead to one refresh grant."""
        async with Emulator(EmulatorConfig(limits=Limits.off())) as emulator:
            token = await self._signed_in_token(emulator)
            expired = attrs.evolve(
                token, expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)
            )
            store = MemoryStore(expired)
            auth = PasswordAuth("admin@example.com", "password", token_store=store)
            async with NexudusClient(
                auth=auth, base_url=emulator.base_url, rate_limits=None
            ) as client:
                pages = await asyncio.gather(
                    *(client.import_files.list() for _ in range(20))
                )
        assert len(pages) == 20
        assert emulator.stats.token_grants == 2
        assert emulator.stats.unauthorized == 0
        assert store.token is not None
        assert store.token.refresh_token != token.refresh_token

    async def test_revoked_token_refreshed_once(self) -> None:
        """A token the server no longer accepts is refreshed once, then the call succeeds."""
        async with Emulator(EmulatorConfig(limits=Limits.off())) as emulator:
            token = await self._signed_in_token(emulator)
            revoked = attrs.evolve(token, access_token="revoked")
            auth = PasswordAuth(
                "admin@example.com", "password", token_store=MemoryStore(revoked)
            )
            async with NexudusClient(
                auth=auth, base_url=emulator.base_url, rate_limits=None
            ) as client:
                await client.import_files.create(
                    ImportFileCreate(business_id=1, name="a.csv")
                )
        assert emulator.stats.unauthorized == 1
        assert emulator.stats.token_grants == 2
        assert emulator.stats.creates == 1

    async def test_rejected_refresh_then_bad_password(self) -> None:
        """A refused refresh falls back to one password grant, whose refusal is the error."""
        async with Emulator(EmulatorConfig(limits=Limits.off())) as emulator:
            token = await self._signed_in_token(emulator)
            stale = attrs.evolve(
                token,
                refresh_token="used",
                expires_at=datetime.now(timezone.utc) - timedelta(seconds=1),
            )
            auth = PasswordAuth(
                "admin@example.com", "wrong", token_store=MemoryStore(stale)
            )
            async with NexudusClient(
                auth=auth, base_url=emulator.base_url, rate_limits=None
            ) as client:
                results = await asyncio.gather(
                    *(client.import_files.list() for _ in range(10)),
                    return_exceptions=True,
                )
        assert {type(r) for r in results} == {AuthError}
        assert emulator.stats.requests == 1 + 1 + 2

    async def test_documented_pacing_is_never_throttled(self) -> None:
        """With the documented limits on both sides, the client is never throttled."""
        async with Emulator() as emulator:
            auth = PasswordAuth("admin@example.com", "password")
            async with NexudusClient(auth=auth, base_url=emulator.base_url) as client:
                await asyncio.gather(
                    *(
                        client.import_files.create(
                            ImportFileCreate(business_id=1, name=f"{n}.csv")
                        )
                        for n in range(6)
                    )
                )
        assert emulator.stats.throttled == 0
        assert emulator.stats.creates == 6

    async def test_throttle_answers_are_waited_out(self) -> None:
        """Without client pacing, the emulator's 409s are waited out and every create lands once."""
        async with Emulator() as emulator:
            auth = PasswordAuth("admin@example.com", "password")
            async with NexudusClient(
                auth=auth, base_url=emulator.base_url, rate_limits=None
            ) as client:
                results = await asyncio.gather(
                    *(
                        client.import_files.create(
                            ImportFileCreate(business_id=1, name=f"{n}.csv")
                        )
                        for n in range(4)
                    )
                )
        assert emulator.stats.throttled >= 1
        assert emulator.stats.creates == 4
        assert sorted(r.id for r in results) == sorted(emulator.records)
