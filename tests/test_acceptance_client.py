"""Acceptance tests for the client issue, written from the issue text alone.

Whole flows run against the in-process emulator. Exact request sequences run against
``Server``, a small aiohttp server on a loopback port that answers each request with the
next scripted step: real sockets, real timeouts, real dropped connections. Waits the
client asks for go through an injected sleep on a fake clock wherever the test allows,
and the server stamps each request with that clock, so waits are measured exactly.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import itertools
import json
import logging
import pickle
import socket
import ssl
import subprocess
import time
import traceback
import warnings
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import attrs
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from conftest import FakeTime

import nexudus_async
from nexudus_async import (
    APIStatusError,
    AuthenticationError,
    AuthError,
    BasicAuth,
    BearerAuth,
    ClientStateError,
    CommandParameter,
    ConflictError,
    ConnectError,
    ImportFileCreate,
    ImportFileUpdate,
    NexudusClient,
    NexudusError,
    NotFoundError,
    OutcomeUnknownError,
    PasswordAuth,
    PermissionDeniedError,
    ProtocolError,
    RateLimits,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    SortDirection,
    ThrottledError,
    Token,
    TransportError,
    UnsuccessfulError,
    ValidationError,
    Window,
)
from nexudus_async.emulator import Emulator, EmulatorConfig, Faults, Limits, User

PATH = "/api/crm/crmopportunityimportfiles"
TOKEN_PATH = "/api/token"
USER = "admin@example.com"
PASSWORD = "password"
NEW = ImportFileCreate(business_id=1, name="file")

PLANTED_PASSWORD = "pw-PLANTED-7d1e0c"
PLANTED_TOKEN = "tok-PLANTED-93af21"
PLANTED_REFRESH = "refresh-PLANTED-55c2b8"
PLANTED_TOTP = "totp-PLANTED-6161"

NAME_REQUIRED = [
    {"AttemptedValue": "", "Message": "is a required field", "PropertyName": "Name"}
]


# --- wire documents -------------------------------------------------------------------


def record(id: int, name: str = "file", business: int = 1) -> dict[str, Any]:
    """A stored record as the API returns it."""
    return {"Id": id, "BusinessId": business, "Name": name}


def envelope(
    id: int | None = 1,
    *,
    ok: bool = True,
    status: int = 200,
    message: str = "done",
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A write-result envelope."""
    return {
        "Status": status,
        "Message": message,
        "Value": {"Id": id} if ok and id is not None else None,
        "OpenInDialog": False,
        "OpenInWindow": False,
        "RedirectURL": None,
        "JavaScript": None,
        "UpdatedOn": None,
        "UpdatedBy": None,
        "Errors": errors,
        "WasSuccessful": ok,
    }


def page(
    records: list[dict[str, Any]], number: int, *, has_next: bool
) -> dict[str, Any]:
    """A listing page wrapper."""
    return {
        "Records": records,
        "CurrentPage": number,
        "CurrentPageSize": 2,
        "CurrentOrderField": "Id",
        "CurrentSortDirection": 1,
        "FirstItem": 0,
        "LastItem": 0,
        "TotalItems": 99,
        "TotalPages": 50,
        "HasNextPage": has_next,
        "HasPreviousPage": number > 1,
    }


def token(access: str, refresh: str, expires_in: int = 3600) -> dict[str, Any]:
    """A token endpoint answer."""
    return {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": expires_in,
        "refresh_token": refresh,
    }


INVALID_GRANT = {
    "error": "invalid_grant",
    "error_description": "The user name or password is incorrect.",
}


# --- a scripted loopback server -------------------------------------------------------


@attrs.frozen
class Hit:
    """One request as the server received it, stamped with the server's clock."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    at: float

    @property
    def form(self) -> dict[str, str]:
        """The body read as a form."""
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    @property
    def authorization(self) -> str | None:
        """The Authorization header."""
        return self.headers.get("Authorization")


Step = Callable[[web.Request], Awaitable[web.StreamResponse]]
_NO_JSON: Any = object()


def reply(
    data: Any = _NO_JSON,
    *,
    status: int = 200,
    text: str = "",
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/json",
    delay: float = 0.0,
    reason: str | None = None,
) -> Step:
    """Answer with JSON ``data`` (or ``text``), after ``delay`` real seconds."""

    async def step(request: web.Request) -> web.StreamResponse:
        if delay:
            await asyncio.sleep(delay)
        body = json.dumps(data) if data is not _NO_JSON else text
        return web.Response(
            status=status,
            reason=reason,
            text=body,
            headers=dict(headers or {}),
            content_type=content_type,
        )

    return step


def throttle(retry_after: str | None, status: int = 409) -> Step:
    """The documented throttle answer: empty body, ``Retry-After`` when given."""
    headers = {"Cache-Control": "no-cache", "Pragma": "no-cache", "Expires": "-1"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return reply(
        status=status,
        headers=headers,
        reason="You must wait before accessing this url again.",
    )


def drop() -> Step:
    """Close the connection after reading the request, answering nothing."""

    async def step(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    return step


def hang(seconds: float = 30.0) -> Step:
    """Answer nothing for ``seconds`` (cancelled when the client hangs up)."""

    async def step(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.Response(status=599)

    return step


class Server:
    """A loopback HTTP server answering each (method, path) with scripted steps.

    ``on(method, path, *steps)`` queues steps; the last one repeats. Requests nobody
    scripted get 418.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.hits: list[Hit] = []
        self._clock = clock
        self._port = port
        self._ssl = ssl_context
        self._scripts: dict[tuple[str, str], list[Step]] = {}
        self._runner: web.AppRunner | None = None
        self._arrived = asyncio.Condition()

    @property
    def base_url(self) -> str:
        scheme = "https" if self._ssl else "http"
        return f"{scheme}://127.0.0.1:{self._port}"

    def on(self, method: str, path: str, *steps: Step) -> None:
        self._scripts[(method, path)] = list(steps)

    def seen(self, method: str | None = None, path: str | None = None) -> list[Hit]:
        return [
            h
            for h in self.hits
            if (method is None or h.method == method)
            and (path is None or h.path == path)
        ]

    async def wait_for(self, count: int) -> None:
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.hits) >= count)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=0.2, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port, ssl_context=self._ssl)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.hits.append(
            Hit(
                request.method,
                request.path,
                dict(request.query),
                dict(request.headers),
                body,
                self._clock(),
            )
        )
        async with self._arrived:
            self._arrived.notify_all()
        script = self._scripts.get((request.method, request.path))
        if not script:
            return web.Response(status=418, text="unscripted request")
        step = script.pop(0) if len(script) > 1 else script[0]
        return await step(request)


def gaps(hits: list[Hit]) -> list[float]:
    """Seconds between successive requests."""
    return [later.at - earlier.at for earlier, later in itertools.pairwise(hits)]


def free_port() -> int:
    """A loopback port nothing listens on (at the moment of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class MemoryStore:
    """A token store keeping its token in memory and every saved token in a list."""

    def __init__(self, token: Token | None = None) -> None:
        self.token = token
        self.saved: list[Token] = []

    async def load(self) -> Token | None:
        return self.token

    async def save(self, token: Token) -> None:
        self.saved.append(token)
        self.token = token


def stored_token(
    *, access: str = "old-access", refresh: str = "R0", expires_in_seconds: float = -1
) -> Token:
    """A token as a store would keep it, expiring ``expires_in_seconds`` from now."""
    return Token(
        access_token=access,
        token_type="bearer",
        expires_in=3600,
        refresh_token=refresh,
        expires_at=datetime.now(timezone.utc) + timedelta(seconds=expires_in_seconds),
    )


def make_client(
    base_url: str,
    *,
    auth: BasicAuth | BearerAuth | PasswordAuth | None = None,
    fake: FakeTime | None = None,
    **options: Any,
) -> NexudusClient:
    """A client without pacing and with exact (jitter-free) backoff, unless overridden."""
    options.setdefault("rate_limits", None)
    options.setdefault("retry", RetryPolicy(backoff_initial=0.5, jitter=0.0))
    if fake is not None:
        options.setdefault("sleep", fake.sleep)
        options.setdefault("clock", fake.clock)
    return NexudusClient(
        auth=auth if auth is not None else BasicAuth(USER, PASSWORD),
        base_url=base_url,
        **options,
    )


@pytest.fixture
async def server(fake_time: FakeTime) -> Any:
    """A scripted server stamping requests with the fake clock."""
    async with Server(clock=fake_time.clock) as running:
        yield running


@pytest.fixture
async def real_server() -> Any:
    """A scripted server stamping requests with the real monotonic clock."""
    async with Server() as running:
        yield running


@pytest.fixture
async def emulator() -> Any:
    """An emulator without throttling."""
    async with Emulator(EmulatorConfig(limits=Limits.off())) as running:
        yield running


# --- 1. the client object -------------------------------------------------------------


class TestLifecycle:
    async def test_owned_session_closed_and_use_after_close_is_clear_error(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """Leaving the context closes the client; a later call raises ClientStateError."""
        server.on("GET", f"{PATH}/1", reply(record(1)))
        client = make_client(server.base_url, fake=fake_time)
        async with client:
            assert (await client.import_files.get(1)) is not None
        assert client.closed

        with pytest.raises(ClientStateError, match="closed") as caught:
            await client.import_files.get(1)
        assert isinstance(caught.value, NexudusError)
        assert len(server.seen("GET")) == 1

    async def test_caller_session_is_never_closed(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """A session the caller passes in is used and left open for the caller."""
        server.on("GET", f"{PATH}/1", reply(record(1)))
        async with aiohttp.ClientSession() as session:
            async with make_client(
                server.base_url, fake=fake_time, session=session
            ) as client:
                await client.import_files.get(1)
            assert not session.closed
            async with session.get(f"{server.base_url}{PATH}/1") as response:
                assert response.status == 200
        assert len(server.seen("GET")) == 2

    async def test_open_client_garbage_collected_warns_naming_it(self) -> None:
        """An open client dropped without closing warns with a ResourceWarning naming it."""
        gc.collect()
        client = make_client("http://127.0.0.1:9")
        await client.open()
        session = client._session
        assert session is not None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del client
            gc.collect()
        # Close the session the dropped client owned, so that its own warning cannot
        # surface later, in another test's garbage collection.
        await session.close()
        messages = [
            str(w.message) for w in caught if issubclass(w.category, ResourceWarning)
        ]
        assert any("NexudusClient" in m for m in messages), messages

    def test_default_base_url_is_spaces_host(self) -> None:
        """Without a base URL the client talks to https://spaces.nexudus.com."""
        client = NexudusClient(auth=BasicAuth(USER, PASSWORD))
        assert client.base_url.rstrip("/") == "https://spaces.nexudus.com"

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://localhost:8080",
            "http://[::1]:8080",
            "https://api.example.com",
        ],
    )
    def test_allowed_base_urls(self, url: str) -> None:
        """Plain http is accepted for loopback hosts; https anywhere."""
        NexudusClient(auth=BasicAuth(USER, PASSWORD), base_url=url)

    @pytest.mark.parametrize(
        "url", ["http://api.example.com", "http://10.1.2.3:8080", "http://192.168.0.1"]
    )
    def test_plain_http_elsewhere_needs_explicit_permission(self, url: str) -> None:
        """Plain http to a host that is not loopback is refused unless allowed."""
        with pytest.raises(ValueError, match="http"):
            NexudusClient(auth=BasicAuth(USER, PASSWORD), base_url=url)
        NexudusClient(auth=BasicAuth(USER, PASSWORD), base_url=url, allow_http=True)

    async def test_tls_certificate_is_verified(
        self, self_signed: ssl.SSLContext, fake_time: FakeTime
    ) -> None:
        """A server with a certificate nobody trusts is refused before any request."""
        async with Server(ssl_context=self_signed) as tls_server:
            tls_server.on("GET", f"{PATH}/1", reply(record(1)))
            client = make_client(
                tls_server.base_url,
                fake=fake_time,
                retry=RetryPolicy(max_attempts=2, jitter=0.0),
            )
            async with client:
                with pytest.raises(ConnectError) as caught:
                    await client.import_files.get(1)
        assert caught.value.sent is False
        assert tls_server.hits == []

    @pytest.mark.parametrize("trust_env", [False, True])
    async def test_proxy_from_environment_only_when_asked(
        self, trust_env: bool, monkeypatch: pytest.MonkeyPatch, fake_time: FakeTime
    ) -> None:
        """HTTP_PROXY is obeyed only with trust_env=True."""
        async with Server() as target, Server() as proxy:
            target.on("GET", f"{PATH}/1", reply(record(1, "direct")))
            proxy.on("GET", f"{PATH}/1", reply(record(1, "proxied")))
            for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
                monkeypatch.delenv(name, raising=False)
            monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
            monkeypatch.setenv("http_proxy", proxy.base_url)
            async with make_client(
                target.base_url, fake=fake_time, trust_env=trust_env
            ) as client:
                found = await client.import_files.get(1)
        assert found is not None
        assert found.name == ("proxied" if trust_env else "direct")
        assert len(proxy.hits) == (1 if trust_env else 0)


@pytest.fixture
def self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A server TLS context with a freshly made self-signed certificate for 127.0.0.1."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


# --- 2. credentials -------------------------------------------------------------------


class TestAuth:
    async def test_basic_is_utf8(self, server: Server, fake_time: FakeTime) -> None:
        """Basic credentials are the UTF-8 bytes of user:password, base64-encoded."""
        server.on("GET", f"{PATH}/1", reply(record(1)))
        auth = BasicAuth("josé@example.com", "pässwörd€")
        async with make_client(server.base_url, auth=auth, fake=fake_time) as client:
            await client.import_files.get(1)
        expected = base64.b64encode("josé@example.com:pässwörd€".encode()).decode()
        assert server.hits[0].authorization == f"Basic {expected}"

    async def test_basic_utf8_accepted_by_emulator(self) -> None:
        """The emulator, decoding Basic as UTF-8, accepts non-ASCII credentials."""
        config = EmulatorConfig(
            users=(User("josé@example.com", "pässwörd€"),), limits=Limits.off()
        )
        async with Emulator(config) as emu:
            auth = BasicAuth("josé@example.com", "pässwörd€")
            async with make_client(emu.base_url, auth=auth) as client:
                result = await client.import_files.create(NEW)
        assert result.was_successful
        assert emu.stats.unauthorized == 0

    async def test_static_bearer_sent_and_401_not_retried(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """A static token is sent as Bearer; with nothing to renew, a 401 raises at once."""
        server.on("GET", f"{PATH}/1", reply({"Message": "denied"}, status=401))
        auth = BearerAuth("static-token")
        async with make_client(server.base_url, auth=auth, fake=fake_time) as client:
            with pytest.raises(AuthenticationError) as caught:
                await client.import_files.get(1)
        assert caught.value.status == 401
        assert [h.authorization for h in server.hits] == ["Bearer static-token"]

    async def test_password_grant_is_form_encoded(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """The password grant posts email, password, TOTP and client_id as a form."""
        server.on("POST", TOKEN_PATH, reply(token("access-1", "R1")))
        server.on("GET", f"{PATH}/1", reply(record(1)))
        codes = iter(["123456"])
        auth = PasswordAuth(
            "ünï@example.com", "p&ss=wörd", totp=lambda: next(codes), client_id="app-7"
        )
        async with make_client(server.base_url, auth=auth, fake=fake_time) as client:
            await client.import_files.get(1)

        grant, get = server.hits
        assert (grant.method, grant.path) == ("POST", TOKEN_PATH)
        assert grant.headers["Content-Type"].startswith(
            "application/x-www-form-urlencoded"
        )
        form = grant.form
        assert form["grant_type"] == "password"
        assert form["username"] == "ünï@example.com"
        assert form["password"] == "p&ss=wörd"
        assert form["totp"] == "123456"
        assert "app-7" in (form.get("client_id"), grant.headers.get("client_id"))
        assert get.authorization == "Bearer access-1"

    async def test_password_grant_without_options_sends_no_totp(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """Without a TOTP the grant carries no totp field."""
        server.on("POST", TOKEN_PATH, reply(token("access-1", "R1")))
        server.on("GET", f"{PATH}/1", reply(record(1)))
        auth = PasswordAuth(USER, PASSWORD)
        async with make_client(server.base_url, auth=auth, fake=fake_time) as client:
            await client.import_files.get(1)
        assert "totp" not in server.hits[0].form

    async def test_twenty_concurrent_requests_at_expiry_one_refresh(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """20 requests meeting an expired token wait for one refresh grant, then all use it."""
        server.on("POST", TOKEN_PATH, reply(token("new-access", "R1"), delay=0.2))
        server.on("GET", f"{PATH}/1", reply(record(1)))
        store = MemoryStore(stored_token(refresh="R0"))
        auth = PasswordAuth(USER, PASSWORD, client_id="app", token_store=store)
        async with make_client(server.base_url, auth=auth, fake=fake_time) as client:
            found = await asyncio.gather(
                *(client.import_files.get(1) for _ in range(20))
            )

        assert all(f is not None for f in found)
        grants = server.seen("POST", TOKEN_PATH)
        assert len(grants) == 1
        assert grants[0].form["grant_type"] == "refresh_token"
        assert grants[0].form["refresh_token"] == "R0"
        gets = server.seen("GET")
        assert len(gets) == 20
        assert {h.authorization for h in gets} == {"Bearer new-access"}
        assert store.token is not None
        assert store.token.refresh_token == "R1"

    async def test_token_refreshed_before_it_expires(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """A token about to expire is refreshed before a request leaves with it."""
        server.on("POST", TOKEN_PATH, reply(token("new-access", "R1")))
        server.on("GET", f"{PATH}/1", reply(record(1)))
        store = MemoryStore(stored_token(refresh="R0", expires_in_seconds=2))
        auth = PasswordAuth(USER, PASSWORD, client_id="app", token_store=store)
        async with make_client(server.base_url, auth=auth, fake=fake_time) as client:
            await client.import_files.get(1)
        assert server.hits[0].form["grant_type"] == "refresh_token"
        assert server.hits[1].authorization == "Bearer new-access"

    async def test_stored_token_used_without_signing_in(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """A valid stored token is used as it is: no request to the token endpoint."""
        server.on("GET", f"{PATH}/1", reply(record(1)))
        store = MemoryStore(stored_token(access="kept", expires_in_seconds=3600))
        auth = PasswordAuth(USER, PASSWORD, client_id="app", token_store=store)
        async with make_client(server.base_url, auth=auth, fake=fake_time) as client:
            await client.import_files.get(1)
        assert [(h.method, h.authorization) for h in server.hits] == [
            ("GET", "Bearer kept")
        ]

    async def test_new_token_saved_to_store(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """A token from the password grant is handed to the store's save hook."""
        server.on("POST", TOKEN_PATH, reply(token("access-1", "R1")))
        server.on("GET", f"{PATH}/1", reply(record(1)))
        store = MemoryStore()
        auth = PasswordAuth(USER, PASSWORD, client_id="app", token_store=store)
        async with make_client(server.base_url, auth=auth, fake=fake_time) as client:
            await client.import_files.get(1)
        assert [(t.access_token, t.refresh_token) for t in store.saved] == [
            ("access-1", "R1")
        ]

    async def test_rotated_refresh_token_is_kept(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """The second refresh uses the refresh token the first refresh returned."""
        server.on(
            "POST",
            TOKEN_PATH,
            reply(token("access-1", "R1")),
            reply(token("access-2", "R2")),
        )
        server.on(
            "GET",
            f"{PATH}/1",
            reply(record(1)),
            reply({"Message": "denied"}, status=401),
            reply(record(1)),
        )
        store = MemoryStore(stored_token(refresh="R0"))
        auth = PasswordAuth(USER, PASSWORD, client_id="app", token_store=store)
        async with make_client(server.base_url, auth=auth, fake=fake_time) as client:
            await client.import_files.get(1)
            await client.import_files.get(1)

        refreshes = [h.form for h in server.seen("POST", TOKEN_PATH)]
        assert [(f["grant_type"], f["refresh_token"]) for f in refreshes] == [
            ("refresh_token", "R0"),
            ("refresh_token", "R1"),
        ]
        assert [t.refresh_token for t in store.saved] == ["R1", "R2"]

    async def test_revoked_token_one_refresh_then_success(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """A token refused mid-way is refreshed once and the request succeeds."""
        server.on(
            "POST",
            TOKEN_PATH,
            reply(token("access-1", "R1")),
            reply(token("access-2", "R2")),
        )
        server.on(
            "GET",
            f"{PATH}/1",
            reply(record(1)),
            reply(record(1)),
            reply({"Message": "denied"}, status=401),
            reply(record(1)),
        )
        auth = PasswordAuth(USER, PASSWORD, client_id="app")
        async with make_client(server.base_url, auth=auth, fake=fake_time) as client:
            for _ in range(3):
                assert (await client.import_files.get(1)) is not None

        grants = [h.form for h in server.seen("POST", TOKEN_PATH)]
        assert [g["grant_type"] for g in grants] == ["password", "refresh_token"]
        assert grants[1]["refresh_token"] == "R1"
        assert [h.authorization for h in server.seen("GET")] == [
            "Bearer access-1",
            "Bearer access-1",
            "Bearer access-1",
            "Bearer access-2",
        ]

    async def test_revoked_token_with_concurrent_requests_one_refresh(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """Ten requests refused with the same revoked token share a single refresh."""

        async def by_token(request: web.Request) -> web.StreamResponse:
            if request.headers.get("Authorization") == "Bearer access-2":
                return web.json_response(record(1))
            return web.json_response({"Message": "denied"}, status=401)

        server.on(
            "POST",
            TOKEN_PATH,
            reply(token("access-1", "R1")),
            reply(token("access-2", "R2"), delay=0.1),
        )
        server.on("GET", f"{PATH}/1", by_token)
        auth = PasswordAuth(USER, PASSWORD, client_id="app")
        async with make_client(server.base_url, auth=auth, fake=fake_time) as client:
            found = await asyncio.gather(
                *(client.import_files.get(1) for _ in range(10))
            )
        assert all(f is not None for f in found)
        grants = [h.form["grant_type"] for h in server.seen("POST", TOKEN_PATH)]
        assert grants == ["password", "refresh_token"]

    async def test_rejected_refresh_falls_back_to_password_grant(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """A refused refresh leads to one fresh password grant, and the call succeeds."""
        server.on(
            "POST",
            TOKEN_PATH,
            reply(INVALID_GRANT, status=400),
            reply(token("fresh", "R9")),
        )
        server.on("GET", f"{PATH}/1", reply(record(1)))
        store = MemoryStore(stored_token(refresh="R0"))
        auth = PasswordAuth(USER, PASSWORD, client_id="app", token_store=store)
        async with make_client(server.base_url, auth=auth, fake=fake_time) as client:
            assert (await client.import_files.get(1)) is not None

        grants = [h.form for h in server.seen("POST", TOKEN_PATH)]
        assert [g["grant_type"] for g in grants] == ["refresh_token", "password"]
        assert server.seen("GET")[0].authorization == "Bearer fresh"

    async def test_rejected_refresh_and_password_one_auth_error(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """When the fallback password grant is refused too, one AuthError says so."""
        server.on("POST", TOKEN_PATH, reply(INVALID_GRANT, status=400))
        server.on("GET", f"{PATH}/1", reply(record(1)))
        store = MemoryStore(stored_token(refresh="R0"))
        auth = PasswordAuth(USER, PASSWORD, client_id="app", token_store=store)
        async with make_client(server.base_url, auth=auth, fake=fake_time) as client:
            with pytest.raises(AuthError) as caught:
                await client.import_files.get(1)

        assert caught.value.error == "invalid_grant"
        assert isinstance(caught.value, NexudusError)
        grants = [h.form["grant_type"] for h in server.seen("POST", TOKEN_PATH)]
        assert grants == ["refresh_token", "password"]
        assert server.seen("GET") == []

    async def test_waiters_share_one_rejected_renewal(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """Five requests waiting on a refused renewal all fail after one refresh try."""
        server.on("POST", TOKEN_PATH, reply(INVALID_GRANT, status=400, delay=0.1))
        server.on("GET", f"{PATH}/1", reply(record(1)))
        store = MemoryStore(stored_token(refresh="R0"))
        auth = PasswordAuth(USER, PASSWORD, client_id="app", token_store=store)
        async with make_client(server.base_url, auth=auth, fake=fake_time) as client:
            outcomes = await asyncio.gather(
                *(client.import_files.get(1) for _ in range(5)), return_exceptions=True
            )
        assert all(isinstance(o, AuthError) for o in outcomes), outcomes
        grants = [h.form["grant_type"] for h in server.seen("POST", TOKEN_PATH)]
        assert grants == ["refresh_token", "password"]

    async def test_second_401_after_refresh_raises(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """A 401 is answered with one refresh and one retry; a second 401 raises."""
        server.on(
            "POST",
            TOKEN_PATH,
            reply(token("access-1", "R1")),
            reply(token("access-2", "R2")),
        )
        server.on("GET", f"{PATH}/1", reply({"Message": "denied"}, status=401))
        auth = PasswordAuth(USER, PASSWORD, client_id="app")
        async with make_client(server.base_url, auth=auth, fake=fake_time) as client:
            with pytest.raises(AuthenticationError):
                await client.import_files.get(1)
        assert len(server.seen("POST", TOKEN_PATH)) == 2
        assert len(server.seen("GET")) == 2

    async def test_create_refused_with_401_is_sent_again(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """A 401 means the create was not processed: refresh, then send it again."""
        server.on(
            "POST",
            TOKEN_PATH,
            reply(token("access-1", "R1")),
            reply(token("access-2", "R2")),
        )
        server.on(
            "POST",
            PATH,
            reply({"Message": "denied"}, status=401),
            reply(envelope(42)),
        )
        auth = PasswordAuth(USER, PASSWORD, client_id="app")
        async with make_client(server.base_url, auth=auth, fake=fake_time) as client:
            result = await client.import_files.create(NEW)
        assert result.id == 42
        assert [h.authorization for h in server.seen("POST", PATH)] == [
            "Bearer access-1",
            "Bearer access-2",
        ]

    async def test_password_flow_against_emulator(self) -> None:
        """Password grant with TOTP and client id works end to end on the emulator."""
        config = EmulatorConfig(
            users=(User("a@example.com", "pw", totp="777000"),), limits=Limits.off()
        )
        async with Emulator(config) as emu:
            auth = PasswordAuth("a@example.com", "pw", totp="777000", client_id="app")
            async with make_client(emu.base_url, auth=auth) as client:
                created = await client.import_files.create(NEW)
                assert created.id is not None
                found = await client.import_files.get(created.id)
        assert found is not None
        assert found.name == "file"
        assert emu.stats.token_grants == 1
        assert emu.stats.unauthorized == 0


# --- 3. the resource ------------------------------------------------------------------


class TestResource:
    async def test_crud_round_trip(self, emulator: Emulator) -> None:
        """Create, get, full update, delete; a missing id then reads as None."""
        async with make_client(emulator.base_url) as client:
            files = client.import_files
            created = await files.create(
                ImportFileCreate(
                    business_id=1,
                    name="alpha",
                    new_file_data_url="https://files.example.com/alpha.csv",
                )
            )
            assert created.was_successful
            assert created.id is not None
            found = await files.get(created.id)
            assert found is not None
            assert (found.name, found.business_id) == ("alpha", 1)
            assert found.file_data_file_name == "alpha.csv"

            updated = await files.update(
                ImportFileUpdate(
                    id=created.id, business_id=2, name="beta", imported=True
                )
            )
            assert updated.was_successful
            found = await files.get(created.id)
            assert found is not None
            assert (found.name, found.business_id, found.imported) == ("beta", 2, True)

            deleted = await files.delete(created.id)
            assert deleted.was_successful
            assert await files.get(created.id) is None
        assert dict(emulator.records) == {}

    async def test_delete_missing_is_not_found(self, emulator: Emulator) -> None:
        """Deleting an id that does not exist raises NotFoundError."""
        async with make_client(emulator.base_url) as client:
            with pytest.raises(NotFoundError) as caught:
                await client.import_files.delete(999)
        assert caught.value.status == 404

    async def test_get_many(self, emulator: Emulator) -> None:
        """Get many returns the records found and leaves out missing ids."""
        ids = [
            emulator.add_record({"BusinessId": 1, "Name": f"n{i}"}) for i in range(3)
        ]
        async with make_client(emulator.base_url) as client:
            found = await client.import_files.get_many([ids[2], ids[0], 999])
            assert await client.import_files.get_many([]) == []
        assert sorted(r.id for r in found) == sorted([ids[0], ids[2]])

    async def test_list_one_page_with_filters_order_and_size(
        self, emulator: Emulator
    ) -> None:
        """One page honours the business filter, ordering, direction and page size."""
        for i in range(30):
            emulator.add_record({"BusinessId": 1 + i % 2, "Name": f"name-{i:02d}"})
        async with make_client(emulator.base_url) as client:
            listed = await client.import_files.list(
                page=2,
                size=4,
                order_by="Name",
                direction=SortDirection.DESCENDING,
                business_id=2,
            )
        expected = sorted(
            (r["Name"] for r in emulator.records.values() if r["BusinessId"] == 2),
            reverse=True,
        )
        assert [r.name for r in listed.records] == expected[4:8]
        assert listed.current_page == 2
        assert listed.total_items == 15
        assert listed.has_next_page

    async def test_list_name_filter(self, emulator: Emulator) -> None:
        """The name filter narrows the listing."""
        emulator.add_record({"BusinessId": 1, "Name": "keep-me"})
        emulator.add_record({"BusinessId": 1, "Name": "other"})
        async with make_client(emulator.base_url) as client:
            listed = await client.import_files.list(name="keep-me")
        assert [r.name for r in listed.records] == ["keep-me"]

    async def test_list_time_and_flag_filters(self, emulator: Emulator) -> None:
        """Creation and update time ranges and the Imported flag filter the listing."""
        emulator.add_record({"BusinessId": 1, "Name": "a"})
        emulator.add_record({"BusinessId": 1, "Name": "b", "Imported": True})
        now = datetime.now(timezone.utc)
        before, after = now - timedelta(minutes=2), now + timedelta(minutes=2)
        async with make_client(emulator.base_url) as client:
            files = client.import_files
            recent = await files.list(created_from=before, created_to=after)
            old = await files.list(created_to=before)
            not_imported = await files.list(
                updated_from=before, updated_to=after, imported=False
            )
        assert len(recent.records) == 2
        assert old.records == ()
        assert [r.name for r in not_imported.records] == ["a"]

    async def test_iterate_walks_every_page_of_the_emulator(
        self, emulator: Emulator
    ) -> None:
        """Iterating yields every record exactly once, fetching each page once."""
        ids = [
            emulator.add_record({"BusinessId": 1, "Name": f"r{i}"}) for i in range(53)
        ]
        async with make_client(emulator.base_url) as client:
            before = emulator.stats.requests
            seen = [r.id async for r in client.import_files.iterate(size=10)]
            pages = emulator.stats.requests - before
        assert seen == sorted(ids)
        assert pages == 6

    async def test_iterate_with_filter_and_empty_store(
        self, emulator: Emulator
    ) -> None:
        """Iteration applies filters, and an empty result yields nothing."""
        for i in range(12):
            emulator.add_record({"BusinessId": 1 + i % 3, "Name": f"r{i}"})
        async with make_client(emulator.base_url) as client:
            second = [
                r.business_id
                async for r in client.import_files.iterate(size=3, business_id=2)
            ]
            none = [r async for r in client.import_files.iterate(business_id=123)]
        assert second == [2, 2, 2, 2]
        assert none == []

    async def test_iterate_stops_when_no_next_page(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """Iteration stops after a page saying HasNextPage false, whatever else it says."""
        server.on(
            "GET",
            PATH,
            reply(page([record(1), record(2)], 1, has_next=True)),
            reply(page([record(3)], 2, has_next=False)),
            reply(page([record(4)], 3, has_next=True)),
        )
        async with make_client(server.base_url, fake=fake_time) as client:
            seen = [r.id async for r in client.import_files.iterate(size=2)]
        assert seen == [1, 2, 3]
        assert [h.query.get("page") for h in server.hits] == ["1", "2"]

    async def test_iterate_stops_on_empty_page(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """Iteration stops at an empty page even when it claims a next page."""
        server.on(
            "GET",
            PATH,
            reply(page([record(1)], 1, has_next=True)),
            reply(page([], 2, has_next=True)),
            reply(page([record(9)], 3, has_next=False)),
        )
        async with make_client(server.base_url, fake=fake_time) as client:
            seen = [r.id async for r in client.import_files.iterate(size=1)]
        assert seen == [1]
        assert len(server.hits) == 2

    async def test_commands_and_run_command(self, emulator: Emulator) -> None:
        """Commands are listed, and running one with a parameter changes the record."""
        id = emulator.add_record({"BusinessId": 1, "Name": "x"})
        async with make_client(emulator.base_url) as client:
            keys = {c.key for c in await client.import_files.commands()}
            result = await client.import_files.run_command(
                "SET_SYSTEM_ID", [id], [CommandParameter("SystemId", "ext-1")]
            )
            marked = await client.import_files.run_command("MARK_AS_IMPORTED", [id])
            found = await client.import_files.get(id)
        assert {"MARK_AS_IMPORTED", "SET_SYSTEM_ID"} <= keys
        assert result.was_successful
        assert marked.was_successful
        assert found is not None
        assert (found.system_id, found.imported) == ("ext-1", True)


# --- 4. answers -----------------------------------------------------------------------


class TestAnswers:
    @pytest.mark.parametrize("status", [200, 201, 202])
    async def test_any_2xx_with_was_successful_is_success(
        self, status: int, server: Server, fake_time: FakeTime
    ) -> None:
        """Any 2xx whose envelope says WasSuccessful true is a success."""
        server.on("POST", PATH, reply(envelope(7, status=status), status=status))
        async with make_client(server.base_url, fake=fake_time) as client:
            result = await client.import_files.create(NEW)
        assert result.was_successful
        assert result.id == 7

    async def test_200_unsuccessful_is_error_with_field_errors(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """A 200 saying WasSuccessful false raises an error carrying the field errors."""
        body = envelope(ok=False, status=400, message="Name: is required")
        body["Errors"] = NAME_REQUIRED
        server.on("POST", PATH, reply(body))
        async with make_client(server.base_url, fake=fake_time) as client:
            with pytest.raises(UnsuccessfulError) as caught:
                await client.import_files.create(NEW)
        error = caught.value
        assert isinstance(error, APIStatusError)
        assert error.status == 200
        assert [f.property_name for f in error.field_errors] == ["Name"]
        assert len(server.hits) == 1

    async def test_200_unsuccessful_from_emulator(self) -> None:
        """The emulator's 200-style validation failure surfaces with its field errors."""
        config = EmulatorConfig(limits=Limits.off(), validation_status=200)
        async with Emulator(config) as emu, make_client(emu.base_url) as client:
            with pytest.raises(APIStatusError) as caught:
                await client.import_files.create(
                    ImportFileCreate(business_id=1, name="")
                )
        assert [f.property_name for f in caught.value.field_errors] == ["Name"]
        assert dict(emu.records) == {}

    @pytest.mark.parametrize(
        "content_type",
        ["text/plain", "text/html", "application/octet-stream", "application/xml"],
    )
    async def test_json_read_whatever_the_label(
        self, content_type: str, server: Server, fake_time: FakeTime
    ) -> None:
        """JSON bodies are read whatever content-type label they carry."""
        server.on("GET", f"{PATH}/1", reply(record(1, "x"), content_type=content_type))
        server.on("POST", PATH, reply(envelope(3), content_type=content_type))
        async with make_client(server.base_url, fake=fake_time) as client:
            found = await client.import_files.get(1)
            created = await client.import_files.create(NEW)
        assert found is not None
        assert found.name == "x"
        assert created.id == 3

    async def test_json_read_as_utf8_whatever_the_charset_label(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """UTF-8 JSON labelled with another charset still reads correctly."""

        async def mislabelled(request: web.Request) -> web.StreamResponse:
            return web.Response(
                body=json.dumps(record(1, "Café ü"), ensure_ascii=False).encode(),
                headers={"Content-Type": "text/plain; charset=iso-8859-1"},
            )

        server.on("GET", f"{PATH}/1", mislabelled)
        async with make_client(server.base_url, fake=fake_time) as client:
            found = await client.import_files.get(1)
        assert found is not None
        assert found.name == "Café ü"

    @pytest.mark.parametrize(
        ("method", "step", "start"),
        [
            ("POST", reply(text="", content_type="application/json"), ""),
            (
                "POST",
                reply(text="<html><body>Oops</body></html>", content_type="text/html"),
                "<html>",
            ),
            ("POST", reply({"Hello": "world"}), '{"Hello"'),
            ("POST", reply(text="{not json", content_type="application/json"), "{not"),
            (
                "GET",
                reply(text="<!DOCTYPE html><p>x</p>", content_type="text/html"),
                "<!",
            ),
            ("GET", reply(text="", content_type="text/plain"), ""),
        ],
        ids=["empty", "html", "not-envelope", "broken-json", "html-list", "empty-list"],
    )
    async def test_bad_bodies_become_protocol_errors(
        self, method: str, step: Step, start: str, server: Server, fake_time: FakeTime
    ) -> None:
        """Empty, HTML and non-envelope bodies raise ProtocolError with status and body."""
        server.on(method, PATH, step)
        retry = RetryPolicy(max_attempts=1)
        async with make_client(server.base_url, fake=fake_time, retry=retry) as client:
            files = client.import_files
            call = files.create(NEW) if method == "POST" else files.list()
            with pytest.raises(NexudusError) as caught:
                await call
        error = caught.value
        assert isinstance(error, ProtocolError), type(error)
        assert not isinstance(error, (json.JSONDecodeError, aiohttp.ContentTypeError))
        assert error.status == 200
        assert (error.body or "").startswith(start)

    async def test_long_body_kept_as_its_start(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """A long HTML error page is kept only as its beginning."""
        html = "<html><body>" + "x" * 20000 + "</body></html>"
        server.on("POST", PATH, reply(text=html, content_type="text/html"))
        async with make_client(server.base_url, fake=fake_time) as client:
            with pytest.raises(ProtocolError) as caught:
                await client.import_files.create(NEW)
        body = caught.value.body or ""
        assert body.startswith("<html><body>xxxx")
        assert len(body) < 5000
        assert len(str(caught.value)) < 5000


# --- 5. errors ------------------------------------------------------------------------


class TestErrors:
    def test_one_root(self) -> None:
        """Every exception the package exports derives from NexudusError."""
        exported = [
            getattr(nexudus_async, name)
            for name in nexudus_async.__all__
            if isinstance(getattr(nexudus_async, name), type)
            and issubclass(getattr(nexudus_async, name), BaseException)
        ]
        assert len(exported) > 10
        assert all(issubclass(cls, NexudusError) for cls in exported)
        assert issubclass(RequestTimeoutError, TransportError)
        assert issubclass(RequestTimeoutError, TimeoutError)
        assert issubclass(ConnectError, TransportError)
        assert not issubclass(OutcomeUnknownError, APIStatusError)
        assert not issubclass(OutcomeUnknownError, TransportError)

    @pytest.mark.parametrize(
        ("status", "errors", "cls"),
        [
            (400, NAME_REQUIRED, ValidationError),
            (401, None, AuthenticationError),
            (403, None, PermissionDeniedError),
            (404, None, NotFoundError),
            (500, None, ServerError),
            (503, None, ServerError),
        ],
    )
    async def test_status_branch_carries_the_answer(
        self,
        status: int,
        errors: list[dict[str, Any]] | None,
        cls: type[APIStatusError],
        server: Server,
        fake_time: FakeTime,
    ) -> None:
        """Each error status raises its class with method, path, status, body, envelope."""
        body = envelope(ok=False, status=status, message="it failed", errors=errors)
        server.on("POST", PATH, reply(body, status=status))
        async with make_client(server.base_url, fake=fake_time) as client:
            with pytest.raises(cls) as caught:
                await client.import_files.create(NEW)
        error = caught.value
        assert (error.method, error.path, error.status) == ("POST", PATH, status)
        assert error.body is not None
        assert "it failed" in error.body
        assert error.envelope is not None
        assert error.envelope.was_successful is False
        if errors:
            assert [(f.property_name, f.message) for f in error.field_errors] == [
                ("Name", "is a required field")
            ]
        assert len(server.hits) == 1

    async def test_error_path_has_no_query(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """A failed listing names its path without the query string."""
        server.on("GET", PATH, reply(envelope(ok=False, status=400), status=400))
        async with make_client(server.base_url, fake=fake_time) as client:
            with pytest.raises(APIStatusError) as caught:
                await client.import_files.list(name="needle-in-query")
        assert caught.value.path == PATH
        assert "needle" not in str(caught.value)

    async def test_timeout_is_a_timeout_error_and_says_sent(
        self, real_server: Server
    ) -> None:
        """A GET that gets no answer raises RequestTimeoutError, a TimeoutError, sent."""
        real_server.on("GET", f"{PATH}/1", hang())
        retry = RetryPolicy(max_attempts=2, backoff_initial=0.0, jitter=0.0)
        async with make_client(
            real_server.base_url, timeout=0.3, retry=retry
        ) as client:
            with pytest.raises(TimeoutError) as caught:
                await client.import_files.get(1)
        error = caught.value
        assert isinstance(error, RequestTimeoutError)
        assert error.sent is True
        assert (error.method, error.path) == ("GET", f"{PATH}/1")
        assert len(real_server.hits) == 2

    async def test_refused_connection_says_not_sent(self, fake_time: FakeTime) -> None:
        """A refused connection raises ConnectError saying nothing was sent."""
        retry = RetryPolicy(max_attempts=3, backoff_initial=0.1, jitter=0.0)
        client = make_client(
            f"http://127.0.0.1:{free_port()}", fake=fake_time, retry=retry
        )
        async with client:
            with pytest.raises(ConnectError) as caught:
                await client.import_files.get(1)
        assert caught.value.sent is False
        assert isinstance(caught.value, TransportError)

    async def test_errors_pickle(self, server: Server, fake_time: FakeTime) -> None:
        """Errors raised by real failures survive pickling with their attributes."""
        body = envelope(ok=False, status=400, message="bad", errors=NAME_REQUIRED)
        server.on("POST", PATH, reply(body, status=400))
        server.on("GET", f"{PATH}/1", throttle("3", status=429))
        server.on("POST", TOKEN_PATH, reply(INVALID_GRANT, status=400))
        retry = RetryPolicy(max_attempts=1)
        raised: list[NexudusError] = []
        async with make_client(server.base_url, fake=fake_time, retry=retry) as client:
            for call in (client.import_files.create(NEW), client.import_files.get(1)):
                with pytest.raises(NexudusError) as caught:
                    await call
                raised.append(caught.value)
        auth = PasswordAuth(USER, PASSWORD)
        async with make_client(server.base_url, auth=auth, fake=fake_time) as client:
            with pytest.raises(AuthError) as refused:
                await client.import_files.get(1)
        raised.append(refused.value)
        raised.append(OutcomeUnknownError(method="POST", path=PATH, reason="timeout"))
        raised.append(RequestTimeoutError("slow", method="GET", path=PATH, sent=True))
        raised.append(ConnectError("refused", method="GET", path=PATH, sent=False))

        for error in raised:
            copy = pickle.loads(pickle.dumps(error))
            assert type(copy) is type(error)
            assert str(copy) == str(error)
            assert copy.__dict__ == error.__dict__
        validation, throttled = raised[0], raised[1]
        assert isinstance(validation, ValidationError)
        assert isinstance(throttled, ThrottledError)
        assert throttled.retry_after == 3.0
        copy = pickle.loads(pickle.dumps(validation))
        assert [f.property_name for f in copy.field_errors] == ["Name"]


# --- 6. retries -----------------------------------------------------------------------


async def _call(client: NexudusClient, method: str) -> Any:
    """Make one call of the resource that uses ``method``."""
    files = client.import_files
    if method == "GET":
        return await files.get(1)
    if method == "PUT":
        return await files.update(ImportFileUpdate(id=1, business_id=1, name="x"))
    if method == "DELETE":
        return await files.delete(1)
    return await files.create(NEW)


def _route(method: str) -> tuple[str, str]:
    return (method, f"{PATH}/1" if method in {"GET", "DELETE"} else PATH)


def _success(method: str) -> Step:
    return reply(record(1) if method == "GET" else envelope(1))


class TestRetries:
    @pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
    @pytest.mark.parametrize("status", [500, 502, 503, 504])
    async def test_idempotent_retried_on_5xx(
        self, method: str, status: int, server: Server, fake_time: FakeTime
    ) -> None:
        """GET, PUT and DELETE are sent again after a 5xx."""
        failed = reply(envelope(ok=False, status=status), status=status)
        server.on(*_route(method), failed, _success(method))
        async with make_client(server.base_url, fake=fake_time) as client:
            assert await _call(client, method) is not None
        assert len(server.hits) == 2

    @pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
    async def test_idempotent_retried_after_dropped_connection(
        self, method: str, server: Server, fake_time: FakeTime
    ) -> None:
        """GET, PUT and DELETE survive connections dropped before the answer."""
        server.on(*_route(method), drop(), drop(), _success(method))
        async with make_client(server.base_url, fake=fake_time) as client:
            assert await _call(client, method) is not None
        assert len(server.hits) == 3

    @pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
    async def test_idempotent_retried_after_timeout(
        self, method: str, real_server: Server
    ) -> None:
        """GET, PUT and DELETE are sent again after a timeout."""
        real_server.on(*_route(method), hang(), _success(method))
        retry = RetryPolicy(backoff_initial=0.0, jitter=0.0)
        async with make_client(
            real_server.base_url, timeout=0.3, retry=retry
        ) as client:
            assert await _call(client, method) is not None
        assert len(real_server.hits) == 2

    async def test_create_not_retried_on_5xx(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """A create answered 5xx is not sent again: the server may have acted."""
        server.on("POST", PATH, reply(envelope(ok=False, status=503), status=503))
        async with make_client(server.base_url, fake=fake_time) as client:
            with pytest.raises(ServerError):
                await client.import_files.create(NEW)
        assert len(server.hits) == 1

    async def test_create_timing_out_after_sending_is_never_resent(
        self, real_server: Server
    ) -> None:
        """A create that times out after sending raises OutcomeUnknownError, sent once."""
        real_server.on("POST", PATH, hang(), reply(envelope(1)))
        async with make_client(real_server.base_url, timeout=0.3) as client:
            with pytest.raises(OutcomeUnknownError) as caught:
                await client.import_files.create(NEW)
            await asyncio.sleep(0.3)
        assert (caught.value.method, caught.value.path) == ("POST", PATH)
        assert len(real_server.seen("POST")) == 1

    @pytest.mark.parametrize("command", [False, True])
    async def test_post_dropped_after_sending_is_outcome_unknown(
        self, command: bool, server: Server, fake_time: FakeTime
    ) -> None:
        """A create or command whose connection drops after sending is not re-sent."""
        path = f"{PATH}/runcommand" if command else PATH
        server.on("POST", path, drop(), reply(envelope(1)))
        async with make_client(server.base_url, fake=fake_time) as client:
            files = client.import_files
            call = (
                files.run_command("MARK_AS_IMPORTED", [1])
                if command
                else files.create(NEW)
            )
            with pytest.raises(OutcomeUnknownError):
                await call
        assert len(server.hits) == 1

    async def test_create_refused_at_connect_is_retried(self) -> None:
        """A create whose connection was refused is retried, and created once."""
        port = free_port()
        late = Server(port=port)
        late.on("POST", PATH, reply(envelope(11)))
        sleeps: list[float] = []

        async def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            if len(sleeps) == 1:
                await late.start()

        try:
            client = make_client(f"http://127.0.0.1:{port}", sleep=sleep)
            async with client:
                result = await client.import_files.create(NEW)
        finally:
            await late.stop()
        assert result.id == 11
        assert len(late.hits) == 1
        assert len(sleeps) == 1

    async def test_create_timing_out_while_connecting_is_retried(self) -> None:
        """A create whose connection never opened is retried and then says not sent."""
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(0)
            port = listener.getsockname()[1]
            fillers = [socket.socket() for _ in range(3)]
            try:
                for filler in fillers:
                    filler.setblocking(False)
                    with contextlib.suppress(BlockingIOError):
                        filler.connect(("127.0.0.1", port))
                await asyncio.sleep(0.1)
                sleeps: list[float] = []

                async def sleep(seconds: float) -> None:
                    sleeps.append(seconds)

                client = make_client(
                    f"http://127.0.0.1:{port}",
                    timeout=0.3,
                    sleep=sleep,
                    retry=RetryPolicy(max_attempts=3, jitter=0.0),
                )
                async with client:
                    with pytest.raises(RequestTimeoutError) as caught:
                        await client.import_files.create(NEW)
            finally:
                for filler in fillers:
                    filler.close()
        assert caught.value.sent is False
        assert not isinstance(caught.value, OutcomeUnknownError)
        assert len(sleeps) == 2

    async def test_create_unresolved_host_is_retried(self, server: Server) -> None:
        """A create whose host name failed to resolve is retried, and created once."""
        server.on("POST", PATH, reply(envelope(12)))
        port = int(server.base_url.rsplit(":", 1)[1])
        resolver = FlakyResolver()
        connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False)
        async with aiohttp.ClientSession(connector=connector) as session:
            client = make_client(
                f"http://api.nexudus.test:{port}",
                allow_http=True,
                session=session,
                sleep=_no_sleep,
            )
            async with client:
                result = await client.import_files.create(NEW)
        assert result.id == 12
        assert resolver.calls == 2
        assert len(server.hits) == 1

    @pytest.mark.parametrize(
        "answer",
        [
            throttle("1", 409),
            throttle(None, 409),
            throttle("1", 429),
            throttle(None, 429),
        ],
        ids=["409-retry-after", "409-bare", "429-retry-after", "429-bare"],
    )
    async def test_create_retried_after_throttle(
        self, answer: Step, server: Server, fake_time: FakeTime
    ) -> None:
        """A throttled create was not acted on, so it is sent again."""
        server.on("POST", PATH, answer, reply(envelope(5)))
        async with make_client(server.base_url, fake=fake_time) as client:
            result = await client.import_files.create(NEW)
        assert result.id == 5
        assert len(server.hits) == 2

    @pytest.mark.parametrize("method", ["POST", "GET"])
    async def test_409_without_throttle_signs_is_a_conflict(
        self, method: str, server: Server, fake_time: FakeTime
    ) -> None:
        """A 409 with field errors and no Retry-After is a conflict, not retried."""
        body = envelope(ok=False, status=409, message="duplicate", errors=NAME_REQUIRED)
        server.on(*_route(method), reply(body, status=409))
        async with make_client(server.base_url, fake=fake_time) as client:
            with pytest.raises(ConflictError) as caught:
                await _call(client, method)
        assert not isinstance(caught.value, ThrottledError)
        assert caught.value.status == 409
        assert len(server.hits) == 1

    @pytest.mark.parametrize("status", [409, 429])
    async def test_retry_after_seconds_waited(
        self, status: int, server: Server, fake_time: FakeTime
    ) -> None:
        """Retry-After: 2 makes the retry go two seconds later."""
        server.on("GET", f"{PATH}/1", throttle("2", status), reply(record(1)))
        async with make_client(server.base_url, fake=fake_time) as client:
            await client.import_files.get(1)
        [gap] = gaps(server.hits)
        assert 2.0 <= gap <= 2.25

    async def test_retry_after_http_date_waited(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """Retry-After as an HTTP date five seconds past the Date header waits ~5 s."""
        now = datetime.now(timezone.utc).replace(microsecond=0)
        headers = {
            "Date": format_datetime(now, usegmt=True),
            "Retry-After": format_datetime(now + timedelta(seconds=5), usegmt=True),
        }
        server.on(
            "GET", f"{PATH}/1", reply(status=429, headers=headers), reply(record(1))
        )
        async with make_client(server.base_url, fake=fake_time) as client:
            await client.import_files.get(1)
        [gap] = gaps(server.hits)
        assert 4.0 <= gap <= 5.25

    @pytest.mark.parametrize("value", ["soon", "-3", "-1.5", "Thu, 99 Foo 20 25:61:61"])
    async def test_unusable_retry_after_falls_back_to_backoff(
        self, value: str, server: Server, fake_time: FakeTime
    ) -> None:
        """Garbage or negative Retry-After values give the ordinary backoff wait."""
        server.on("GET", f"{PATH}/1", throttle(value, 429), reply(record(1)))
        retry = RetryPolicy(backoff_initial=0.75, jitter=0.0)
        async with make_client(server.base_url, fake=fake_time, retry=retry) as client:
            await client.import_files.get(1)
        [gap] = gaps(server.hits)
        assert gap == pytest.approx(0.75, abs=0.05)

    async def test_retry_after_capped(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """A Retry-After longer than the cap waits only the cap."""
        server.on("GET", f"{PATH}/1", throttle("1000"), reply(record(1)))
        retry = RetryPolicy(retry_after_max=5.0, jitter=0.0)
        async with make_client(server.base_url, fake=fake_time, retry=retry) as client:
            await client.import_files.get(1)
        [gap] = gaps(server.hits)
        assert 5.0 <= gap <= 5.25

    async def test_backoff_is_exponential_and_capped(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """Without Retry-After the waits double from the initial one up to the cap."""
        failed = reply(envelope(ok=False, status=503), status=503)
        server.on("GET", f"{PATH}/1", failed, failed, failed, failed, reply(record(1)))
        retry = RetryPolicy(
            max_attempts=5, backoff_initial=1.0, backoff_max=3.0, jitter=0.0
        )
        async with make_client(server.base_url, fake=fake_time, retry=retry) as client:
            await client.import_files.get(1)
        assert gaps(server.hits) == pytest.approx([1.0, 2.0, 3.0, 3.0], abs=0.05)

    async def test_backoff_jitter_stays_within_bounds(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """With jitter 0.5 each wait lies between half and all of its backoff."""
        failed = reply(envelope(ok=False, status=503), status=503)
        server.on("GET", f"{PATH}/1", *([failed] * 5), reply(record(1)))
        retry = RetryPolicy(
            max_attempts=6, backoff_initial=1.0, backoff_max=100.0, jitter=0.5
        )
        async with make_client(server.base_url, fake=fake_time, retry=retry) as client:
            await client.import_files.get(1)
        waits = gaps(server.hits)
        for n, wait in enumerate(waits):
            assert 0.5 * 2**n - 0.01 <= wait <= 2**n + 0.01
        assert len({round(w / 2**n, 6) for n, w in enumerate(waits)}) > 1

    async def test_attempts_configurable_and_exhausted(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """max_attempts bounds the tries; the last failure is raised."""
        server.on("GET", f"{PATH}/1", reply(envelope(ok=False, status=502), status=502))
        retry = RetryPolicy(max_attempts=3, jitter=0.0)
        async with make_client(server.base_url, fake=fake_time, retry=retry) as client:
            with pytest.raises(ServerError) as caught:
                await client.import_files.get(1)
        assert caught.value.status == 502
        assert len(server.hits) == 3

    async def test_throttles_exhausted_raise_with_retry_after(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """When every try is throttled, ThrottledError carries retry_after."""
        server.on("POST", PATH, throttle("3"))
        retry = RetryPolicy(max_attempts=2)
        async with make_client(server.base_url, fake=fake_time, retry=retry) as client:
            with pytest.raises(ThrottledError) as caught:
                await client.import_files.create(NEW)
        assert caught.value.retry_after == 3.0
        assert caught.value.status == 409
        assert len(server.hits) == 2


async def _no_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


class FlakyResolver(AbstractResolver):
    """Fails to resolve the first time, then resolves every name to 127.0.0.1."""

    def __init__(self) -> None:
        self.calls = 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls += 1
        if self.calls == 1:
            raise OSError(socket.EAI_NONAME, "Name or service not known")
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


# --- 7. pacing ------------------------------------------------------------------------


class TestPacing:
    async def test_default_paces_one_request_per_100ms(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """By default successive requests leave at least 100 ms apart."""
        server.on("GET", f"{PATH}/1", reply(record(1)))
        client = NexudusClient(
            auth=BasicAuth(USER, PASSWORD),
            base_url=server.base_url,
            sleep=fake_time.sleep,
            clock=fake_time.clock,
        )
        async with client:
            for _ in range(5):
                await client.import_files.get(1)
        assert all(gap >= 0.1 - 1e-9 for gap in gaps(server.hits))
        assert client.limiter.limits == RateLimits.documented()

    async def test_default_limiter_shared_by_concurrent_requests(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """Concurrent requests of one client share the one-per-100-ms window."""
        server.on("GET", f"{PATH}/1", reply(record(1)))
        start = fake_time.now
        client = NexudusClient(
            auth=BasicAuth(USER, PASSWORD),
            base_url=server.base_url,
            sleep=fake_time.sleep,
            clock=fake_time.clock,
        )
        async with client:
            await asyncio.gather(*(client.import_files.get(1) for _ in range(6)))
        assert fake_time.now - start >= 0.5 - 1e-9

    async def test_default_writes_sixty_a_minute(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """By default the 61st write waits until a minute after the first."""
        server.on("POST", PATH, reply(envelope(1)))
        client = NexudusClient(
            auth=BasicAuth(USER, PASSWORD),
            base_url=server.base_url,
            sleep=fake_time.sleep,
            clock=fake_time.clock,
        )
        async with client:
            for _ in range(61):
                await client.import_files.create(NEW)
        first = server.hits[0].at
        assert server.hits[59].at - first < 60.0
        assert server.hits[60].at - first >= 60.0 - 1e-9

    async def test_default_requests_120_a_minute(
        self, server: Server, fake_time: FakeTime
    ) -> None:
        """By default the 121st request waits until a minute after the first."""
        server.on("GET", f"{PATH}/1", reply(record(1)))
        client = NexudusClient(
            auth=BasicAuth(USER, PASSWORD),
            base_url=server.base_url,
            sleep=fake_time.sleep,
            clock=fake_time.clock,
        )
        async with client:
            for _ in range(121):
                await client.import_files.get(1)
        first = server.hits[0].at
        assert server.hits[119].at - first < 60.0
        assert server.hits[120].at - first >= 60.0 - 1e-9

    async def test_configured_window(self, server: Server, fake_time: FakeTime) -> None:
        """A configured window of two a second holds the third request a second."""
        server.on("GET", f"{PATH}/1", reply(record(1)))
        limits = RateLimits([Window(2, 1.0)])
        async with make_client(
            server.base_url, fake=fake_time, rate_limits=limits
        ) as client:
            for _ in range(3):
                await client.import_files.get(1)
        first = server.hits[0].at
        assert server.hits[1].at == first
        assert server.hits[2].at - first >= 1.0 - 1e-9

    async def test_pacing_off(self, server: Server, fake_time: FakeTime) -> None:
        """With rate_limits=None nothing waits."""
        server.on("GET", f"{PATH}/1", reply(record(1)))
        start = fake_time.now
        async with make_client(server.base_url, fake=fake_time) as client:
            await asyncio.gather(*(client.import_files.get(1) for _ in range(10)))
        assert fake_time.now == start
        assert fake_time.sleeps == []

    async def test_throttle_pauses_every_request_then_spreads_them(
        self, real_server: Server
    ) -> None:
        """After a throttle, all requests wait out Retry-After and restart spread out."""
        throttled_at: list[float] = []

        async def throttled(request: web.Request) -> web.StreamResponse:
            throttled_at.append(time.monotonic())
            return await throttle("1")(request)

        real_server.on("GET", f"{PATH}/1", throttled, reply(record(1)))
        for n in range(2, 7):
            real_server.on("GET", f"{PATH}/{n}", reply(record(n)))
        async with make_client(real_server.base_url) as client:
            first = asyncio.ensure_future(client.import_files.get(1))
            await real_server.wait_for(1)
            await asyncio.sleep(0.1)
            others = [client.import_files.get(n) for n in range(2, 7)]
            await asyncio.gather(first, *others)

        later = [h.at for h in real_server.hits[1:]]
        assert len(later) == 6
        assert min(later) >= throttled_at[0] + 1.0 - 0.02
        assert max(later) - min(later) >= 0.1

    async def test_timeout_not_counted_while_waiting_for_a_pool_slot(
        self, real_server: Server
    ) -> None:
        """Waiting for a free connection does not count against a request's timeout."""
        real_server.on("GET", f"{PATH}/1", reply(record(1), delay=0.7))
        real_server.on("GET", f"{PATH}/2", reply(record(2), delay=0.7))
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            client = make_client(
                real_server.base_url,
                session=session,
                timeout=1.0,
                retry=RetryPolicy(max_attempts=1),
            )
            async with client:
                found = await asyncio.gather(
                    client.import_files.get(1), client.import_files.get(2)
                )
        assert [f.id for f in found if f is not None] == [1, 2]
        assert len(real_server.hits) == 2

    async def test_timeout_not_counted_while_waiting_for_the_limiter(
        self, real_server: Server
    ) -> None:
        """Waiting for the rate limiter does not count against a request's timeout."""
        real_server.on("GET", f"{PATH}/1", reply(record(1), delay=0.2))
        client = make_client(
            real_server.base_url,
            timeout=0.5,
            retry=RetryPolicy(max_attempts=1),
            rate_limits=RateLimits([Window(1, 1.0)]),
        )
        async with client:
            await asyncio.gather(client.import_files.get(1), client.import_files.get(1))
        assert len(real_server.hits) == 2
        assert real_server.hits[1].at - real_server.hits[0].at >= 0.95

    async def test_documented_pacing_never_throttled_by_emulator(self) -> None:
        """With default pacing, a burst of calls meets no throttle from the emulator."""
        async with (
            Emulator(EmulatorConfig()) as emu,
            NexudusClient(
                auth=BasicAuth(USER, PASSWORD), base_url=emu.base_url
            ) as client,
        ):
            created = await asyncio.gather(
                *(client.import_files.create(NEW) for _ in range(5))
            )
            ids = [c.id for c in created if c.id is not None]
            await asyncio.gather(
                *(client.import_files.get(i) for i in ids),
                *(client.import_files.list(page=1, size=2) for _ in range(4)),
            )
        assert emu.stats.throttled == 0
        assert len(emu.records) == 5

    async def test_emulator_throttle_waited_out(self, fake_time: FakeTime) -> None:
        """A throttled create on the emulator is waited out and created exactly once."""
        config = EmulatorConfig(
            limits=Limits.off(), faults=Faults(by_create={1: "throttle:3"})
        )
        start = fake_time.now
        async with (
            Emulator(config) as emu,
            make_client(emu.base_url, fake=fake_time) as client,
        ):
            result = await client.import_files.create(NEW)
        assert result.was_successful
        assert emu.stats.throttled == 1
        assert len(emu.records) == 1
        assert fake_time.now - start >= 3.0

    async def test_emulator_reset_after_store_not_resent(self) -> None:
        """A create whose answer is lost is not re-sent, so no duplicate appears."""
        config = EmulatorConfig(
            limits=Limits.off(), faults=Faults(by_create={1: "reset_after_store"})
        )
        async with Emulator(config) as emu, make_client(emu.base_url) as client:
            with pytest.raises(OutcomeUnknownError):
                await client.import_files.create(NEW)
        assert len(emu.records) == 1
        assert emu.stats.creates == 1


# --- 8. logging and secrets -----------------------------------------------------------


def _sdk_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "nexudus_async" or r.name.startswith("nexudus_async.")
    ]


class TestLogging:
    async def test_debug_line_per_request_without_query(
        self, server: Server, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Each request logs method, path without query and status at DEBUG, lazily."""
        caplog.set_level(logging.DEBUG)
        server.on("GET", PATH, reply(page([record(1)], 1, has_next=False)))
        failed = reply(envelope(ok=False, status=503), status=503)
        server.on("GET", f"{PATH}/1", failed, reply(record(1)))
        async with make_client(server.base_url, fake=fake_time) as client:
            await client.import_files.list(name="needle-in-query")
            await client.import_files.get(1)

        debug = [r for r in _sdk_records(caplog) if r.levelno == logging.DEBUG]
        listing = [
            r for r in debug if PATH in r.getMessage() and "GET" in r.getMessage()
        ]
        assert listing, [r.getMessage() for r in debug]
        assert all(r.args for r in listing)
        assert all(r.msg != r.getMessage() for r in listing)
        lines = [r for r in debug if f"{PATH}/1" in r.getMessage()]
        assert len(lines) == 2
        first, second = (tuple(r.args or ()) for r in lines)
        assert 1 in first
        assert 2 in second
        assert any(isinstance(a, float) for a in second)
        single = [r.getMessage() for r in lines]
        assert any("503" in m for m in single)
        assert any("200" in m for m in single)
        for r in _sdk_records(caplog):
            assert "needle" not in r.getMessage()
            assert "?" not in r.getMessage()

    async def test_info_when_retry_scheduled_with_delay(
        self, server: Server, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A scheduled retry is announced at INFO with its delay."""
        caplog.set_level(logging.DEBUG)
        server.on("GET", f"{PATH}/1", throttle("7", 429), reply(record(1)))
        async with make_client(server.base_url, fake=fake_time) as client:
            await client.import_files.get(1)
        info = [
            r.getMessage() for r in _sdk_records(caplog) if r.levelno == logging.INFO
        ]
        assert any("7" in m for m in info), info

    def test_reprs_mask_secrets(self) -> None:
        """Credentials, tokens and clients never show secrets in their repr."""
        store = MemoryStore()
        objects: list[object] = [
            BasicAuth(USER, PLANTED_PASSWORD),
            BearerAuth(PLANTED_TOKEN),
            PasswordAuth(
                USER,
                PLANTED_PASSWORD,
                totp=PLANTED_TOTP,
                client_id="app",
                token_store=store,
            ),
            stored_token(access=PLANTED_TOKEN, refresh=PLANTED_REFRESH),
        ]
        objects += [NexudusClient(auth=a) for a in objects[:3]]  # type: ignore[arg-type]
        for obj in objects:
            text = repr(obj) + str(obj)
            for secret in (
                PLANTED_PASSWORD,
                PLANTED_TOKEN,
                PLANTED_REFRESH,
                PLANTED_TOTP,
            ):
                assert secret not in text, text

    @pytest.mark.parametrize(
        "scenario",
        [
            "basic-server-error",
            "basic-create-timeout",
            "basic-refused",
            "basic-protocol",
            "bearer-unauthorized",
            "password-refused",
            "password-revoked-throttled",
            "refresh-rejected",
        ],
    )
    async def test_planted_secrets_never_leak(
        self, scenario: str, real_server: Server, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Planted password and tokens reach no log record, repr or exception text."""
        caplog.set_level(logging.DEBUG)
        base = real_server.base_url
        basic = BasicAuth(USER, PLANTED_PASSWORD)
        auth: BasicAuth | BearerAuth | PasswordAuth = basic
        one = f"{PATH}/1"
        if scenario == "basic-server-error":
            real_server.on("GET", one, reply(text="Internal failure", status=500))
        elif scenario == "basic-create-timeout":
            real_server.on("POST", PATH, hang())
        elif scenario == "basic-refused":
            base = f"http://127.0.0.1:{free_port()}"
        elif scenario == "basic-protocol":
            real_server.on("POST", PATH, reply(text="<html>oops</html>"))
        elif scenario == "bearer-unauthorized":
            auth = BearerAuth(PLANTED_TOKEN)
            real_server.on("GET", one, reply({"Message": "denied"}, status=401))
        elif scenario == "password-refused":
            auth = PasswordAuth(USER, PLANTED_PASSWORD, totp=PLANTED_TOTP)
            real_server.on("POST", TOKEN_PATH, reply(INVALID_GRANT, status=400))
        elif scenario == "password-revoked-throttled":
            auth = PasswordAuth(USER, PLANTED_PASSWORD, client_id="app")
            real_server.on(
                "POST",
                TOKEN_PATH,
                reply(token(PLANTED_TOKEN, PLANTED_REFRESH)),
                reply(token(PLANTED_TOKEN + "-2", PLANTED_REFRESH + "-2")),
            )
            real_server.on(
                "GET",
                one,
                reply({"Message": "denied"}, status=401),
                throttle("0", 429),
                reply(text="<html>not json</html>", content_type="text/html"),
            )
        else:
            store = MemoryStore(
                stored_token(access=PLANTED_TOKEN, refresh=PLANTED_REFRESH)
            )
            auth = PasswordAuth(USER, PLANTED_PASSWORD, token_store=store)
            real_server.on("POST", TOKEN_PATH, reply(INVALID_GRANT, status=400))

        retry = RetryPolicy(max_attempts=2, backoff_initial=0.0, jitter=0.0)
        client = make_client(base, auth=auth, timeout=0.3, retry=retry, sleep=_no_sleep)
        error: BaseException | None = None
        async with client:
            try:
                if scenario.endswith(("create-timeout", "protocol")):
                    await client.import_files.create(NEW)
                else:
                    await client.import_files.get(1)
            except NexudusError as exc:
                error = exc
        assert error is not None

        texts = [repr(client), str(client), repr(auth)]
        for r in caplog.records:
            texts += [r.getMessage(), repr(r.args), r.exc_text or ""]
            if r.exc_info:
                texts.append("".join(traceback.format_exception(*r.exc_info)))
        texts += [
            str(error),
            repr(error),
            repr(vars(error)),
            "".join(traceback.format_exception(error)),
        ]
        basic_b64 = base64.b64encode(f"{USER}:{PLANTED_PASSWORD}".encode()).decode()
        secrets = (
            PLANTED_PASSWORD,
            PLANTED_TOKEN,
            PLANTED_REFRESH,
            PLANTED_TOTP,
            basic_b64,
        )
        for text in texts:
            for secret in secrets:
                assert secret not in text, (scenario, text)


# --- resource warnings ----------------------------------------------------------------


class TestNoLeaks:
    @pytest.mark.parametrize(
        "outcome", ["success", "exception", "cancellation", "caller-session"]
    )
    async def test_no_unclosed_session_or_connector(
        self, outcome: str, real_server: Server, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Success, an error or a cancellation leave no unclosed session or connector."""
        real_server.on("GET", f"{PATH}/1", reply(record(1)))
        real_server.on("GET", f"{PATH}/2", reply(text="boom", status=500))
        real_server.on("GET", f"{PATH}/3", hang())

        async def use() -> None:
            retry = RetryPolicy(max_attempts=1)
            if outcome == "caller-session":
                async with aiohttp.ClientSession() as session:
                    client = make_client(
                        real_server.base_url, retry=retry, session=session
                    )
                    async with client:
                        await client.import_files.get(1)
                return
            id = {"success": 1, "exception": 2, "cancellation": 3}[outcome]
            async with make_client(real_server.base_url, retry=retry) as client:
                await client.import_files.get(id)

        gc.collect()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            task = asyncio.ensure_future(use())
            if outcome == "cancellation":
                await real_server.wait_for(1)
                task.cancel()
            with contextlib.suppress(ServerError, asyncio.CancelledError):
                await task
            del task
            await asyncio.sleep(0.05)
            gc.collect()
        leaks = [
            str(w.message) for w in caught if issubclass(w.category, ResourceWarning)
        ]
        assert leaks == []
        assert not [r for r in caplog.records if "nclosed" in r.getMessage()]
