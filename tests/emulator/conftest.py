"""Fixtures for the emulator's tests: emulators on loopback ports and plain HTTP calls."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import pytest

from nexudus_async.emulator import Emulator, EmulatorConfig, Limits

COLLECTION = "/api/crm/crmopportunityimportfiles"
ADMIN = ("admin@example.com", "password")
READER = ("reader@example.com", "password")


def basic(email: str, password: str) -> dict[str, str]:
    """An Authorization header for Basic authentication."""
    token = base64.b64encode(f"{email}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


class Api:
    """Plain HTTP calls against one emulator, returning (status, decoded body)."""

    def __init__(self, emulator: Emulator, session: aiohttp.ClientSession) -> None:
        self.emulator = emulator
        self.session = session
        self.url = emulator.base_url
        self.headers = basic(*ADMIN)

    async def call(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        """Send a request; the body is decoded as JSON when it is JSON."""
        sent = dict(self.headers if headers is None else headers)
        async with self.session.request(
            method, self.url + path, headers=sent, **kwargs
        ) as resp:
            raw = await resp.read()
            body: Any = raw
            if resp.content_type == "application/json" and raw:
                body = await resp.json()
        return resp.status, body, resp

    async def create(self, body: Any, **kwargs: Any) -> tuple[int, Any]:
        """POST a create body."""
        status, answer, _ = await self.call("POST", COLLECTION, json=body, **kwargs)
        return status, answer

    async def get(self, path: str = "", **kwargs: Any) -> tuple[int, Any]:
        """GET below the collection."""
        status, answer, _ = await self.call("GET", COLLECTION + path, **kwargs)
        return status, answer

    async def token(
        self, form: Mapping[str, str], *, headers: Mapping[str, str] | None = None
    ) -> tuple[int, Any]:
        """POST a form to the token endpoint (no Authorization header)."""
        status, answer, _ = await self.call(
            "POST", "/api/token", headers=headers or {}, data=form
        )
        return status, answer


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session, closed after the test."""
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def start_emulator() -> AsyncIterator[Callable[..., Awaitable[Emulator]]]:
    """Start emulators on free ports (limits off unless given); all stop after the test."""
    started: list[Emulator] = []

    async def start(config: EmulatorConfig | None = None, **settings: Any) -> Emulator:
        if config is None:
            settings.setdefault("limits", Limits.off())
            config = EmulatorConfig(**settings)
        emulator = Emulator(config)
        await emulator.start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        await emulator.close()


@pytest.fixture
async def make_api(
    start_emulator: Callable[..., Awaitable[Emulator]], session: aiohttp.ClientSession
) -> Callable[..., Awaitable[Api]]:
    """Start an emulator with the given settings and wrap it for plain HTTP calls."""

    async def make(config: EmulatorConfig | None = None, **settings: Any) -> Api:
        return Api(await start_emulator(config, **settings), session)

    return make


@pytest.fixture
async def api(make_api: Callable[..., Awaitable[Api]]) -> Api:
    """An emulator with default settings but no limits, called as the administrator."""
    return await make_api()
