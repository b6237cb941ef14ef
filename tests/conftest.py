"""Fixtures shared by the test modules."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Mapping
from types import SimpleNamespace
from typing import Any

import aiohttp
import attrs
import pytest
from aioresponses import CallbackResult, aioresponses
from yarl import URL

from nexudus_async import _json

#: Where ``fake_api`` answers; loopback so plain http is allowed.
FAKE_BASE = "http://127.0.0.1:8080"


class FakeTime:
    """A monotonic clock that only moves when something sleeps on it.

    Sleeping yields to the event loop once, then moves the clock to the end of the
    sleep (never backwards), so concurrent sleepers overlap as they would in real
    time while the test runs instantly.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        target = self.now + seconds
        await asyncio.sleep(0)
        self.now = max(self.now, target)


@pytest.fixture
def fake_time() -> FakeTime:
    """A fake clock and sleep pair; pass both to the code under test."""
    return FakeTime()


@attrs.frozen
class Reply:
    """One scripted answer of ``FakeAPI``."""

    status: int = 200
    json: Any = None
    body: bytes | str = b""
    headers: Mapping[str, str] = attrs.field(factory=dict)
    content_type: str = "application/json"


@attrs.frozen
class Seen:
    """One request as ``FakeAPI`` received it."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: Any


class _MockResponse(aiohttp.ClientResponse):
    """A response aioresponses can build on aiohttp versions that need a stream writer.

    aioresponses creates responses without the ``stream_writer`` argument newer aiohttp
    requires; a stand-in reporting zero bytes written is all the response reads from it.
    """

    def __init__(self, method: str, url: URL, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


class FakeAPI:
    """Scripted answers per method and path over aioresponses; records every request.

    ``on(method, path, *steps)`` queues answers (``Reply``) or exceptions to raise;
    the last step repeats once the others are used up.
    """

    def __init__(self, mock: aioresponses) -> None:
        self.requests: list[Seen] = []
        self._scripts: dict[tuple[str, str], list[Reply | BaseException]] = {}
        pattern = re.compile("^" + re.escape(FAKE_BASE) + "/")
        for method in ("GET", "POST", "PUT", "DELETE"):
            mock.add(
                pattern, method=method, callback=self._callback(method), repeat=True
            )

    def on(self, method: str, path: str, *steps: Reply | BaseException) -> None:
        self._scripts[(method, path)] = list(steps)

    def seen(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method)
            and (path is None or r.path == path)
        ]

    def _callback(self, method: str) -> Any:
        async def answer(url: URL, **kwargs: Any) -> CallbackResult:
            return self._answer(method, url, kwargs)

        return answer

    def _answer(
        self, method: str, url: URL, kwargs: Mapping[str, Any]
    ) -> CallbackResult:
        self.requests.append(
            Seen(
                method,
                url.path,
                dict(url.query),
                dict(kwargs.get("headers") or {}),
                kwargs.get("data"),
            )
        )
        script = self._scripts.get((method, url.path))
        if not script:
            raise AssertionError(f"unscripted request {method} {url.path}")
        step = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(step, BaseException):
            raise step
        body = _json.dumps(step.json) if step.json is not None else step.body
        return CallbackResult(
            status=step.status,
            body=body,
            headers=dict(step.headers),
            content_type=step.content_type,
            response_class=_MockResponse,
        )


@pytest.fixture
def fake_api() -> Iterator[FakeAPI]:
    """A scripted API at ``FAKE_BASE``; unscripted requests fail the test."""
    with aioresponses() as mock:
        yield FakeAPI(mock)
