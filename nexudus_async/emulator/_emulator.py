"""The emulator's handle: start it, find its URL, look at what it stores, stop it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final

from aiohttp import web

from ._app import build_app
from ._config import EmulatorConfig
from ._state import EmulatorState
from ._stats import EmulatorStats
from ._thread import LoopThread
from ._validation import check_record

__all__ = ["Emulator"]

_logger = logging.getLogger(__name__)

# Seconds a stop waits for requests still being handled (say, a delay fault) to finish.
_SHUTDOWN_TIMEOUT: Final = 0.5


class Emulator:
    """A local stand-in for the Nexudus REST API, serving on a loopback port.

    Use it as an async context manager inside a running event loop, or as a plain
    context manager from synchronous code, which runs it on a background thread::

        async with Emulator(EmulatorConfig(limits=Limits.off())) as emulator:
            url = emulator.base_url

    Args:
        config: the settings; the defaults behave like the documented API.
        host: the address to listen on.
        port: the port; 0 picks a free one.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._config = config if config is not None else EmulatorConfig()
        self._host = host
        self._port = port
        self._state = EmulatorState(self._config)
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._thread: LoopThread | None = None

    def __repr__(self) -> str:
        where = self._base_url or "not running"
        return f"<Emulator {where}, {len(self._state.store)} records>"

    @property
    def config(self) -> EmulatorConfig:
        """The settings it runs with."""
        return self._config

    @property
    def base_url(self) -> str:
        """The URL to give a client, such as ``http://127.0.0.1:54321``.

        Raises:
            RuntimeError: the emulator is not running.
        """
        if self._base_url is None:
            raise RuntimeError("the emulator is not running")
        return self._base_url

    @property
    def records(self) -> Mapping[int, Mapping[str, Any]]:
        """A live, read-only mapping of Id to stored record, with wire field names."""
        return self._state.store.view()

    @property
    def stats(self) -> EmulatorStats:
        """Counters of requests, writes, throttling and faults."""
        return self._state.stats

    def add_record(
        self, fields: Mapping[str, Any], *, updated_by: str | None = None
    ) -> int:
        """Store a record directly, as if it had been created earlier.

        Args:
            fields: a create body with wire field names (``BusinessId``, ``Name`` …).
            updated_by: the email to record; the first configured user's by default.

        Returns:
            The new record's Id.

        Raises:
            ValueError: the fields fail the same checks a create request gets.
        """
        config = self._config
        checked = check_record(
            fields,
            businesses=config.businesses,
            strict_names=config.strict_names,
            with_id=False,
        )
        if checked.record is None:
            summary = "; ".join(
                f"{p.property_name}: {p.message}" for p in checked.problems
            )
            raise ValueError(summary)
        if updated_by is None:
            updated_by = (
                config.users[0].email if config.users else "emulator@example.com"
            )
        row = self._state.store.add(checked.record, updated_by=updated_by)

        return int(row["Id"])

    async def start(self) -> None:
        """Start serving.

        Raises:
            RuntimeError: it is already running.
            OSError: the address cannot be bound.
        """
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        runner = web.AppRunner(
            build_app(self._state), access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port, backlog=1024)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise

        host, port = runner.addresses[0][:2]
        if ":" in host:
            host = f"[{host}]"
        self._runner = runner
        self._base_url = f"http://{host}:{port}"
        _logger.debug("emulator listening on %s", self._base_url)

    async def close(self) -> None:
        """Stop serving; the records and counters stay readable."""
        runner, self._runner = self._runner, None
        self._base_url = None
        if runner is not None:
            await runner.cleanup()
            _logger.debug("emulator stopped")

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __enter__(self) -> Emulator:
        thread = LoopThread("nexudus-emulator")
        try:
            thread.call(self.start())
        except BaseException:
            thread.stop()
            raise
        self._thread = thread
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        try:
            thread.call(self.close())
        finally:
            thread.stop()
