"""Running the emulator as a server until it is told to stop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Any

from ._app import COLLECTION_PATH, TOKEN_PATH
from ._config import EmulatorConfig, User
from ._emulator import Emulator
from ._options import config_from_args

__all__ = ["banner", "run_server", "serve"]


def _describe_user(user: User) -> str:
    if user.roles is None:
        rights = "full administrator"
    else:
        rights = "roles: " + (", ".join(sorted(user.roles)) or "none")
    two_factor = f", totp {user.totp}" if user.totp else ""
    return f"{user.email} / {user.password} ({rights}{two_factor})"


def banner(emulator: Emulator) -> str:
    """What the server prints when it starts: URLs, logins, limits and faults."""
    config = emulator.config
    base = emulator.base_url
    windows = config.limits.windows()
    if windows:
        limits = ", ".join(f"{w.name}={w.limit}" for w in windows)
        limits += f"; {config.throttle_status} when throttled; time scale {config.time_scale:g}"
    else:
        limits = "off"
    lines = [
        f"Nexudus API emulator listening on {base}",
        f"  token endpoint: {base}{TOKEN_PATH}",
        f"  resource:       {base}{COLLECTION_PATH}",
        *(f"  login:          {_describe_user(user)}" for user in config.users),
        f"  businesses:     {', '.join(str(b) for b in sorted(config.businesses))}",
        f"  limits:         {limits}",
        f"  faults:         {'on' if config.faults.active else 'none'}",
        "Press Ctrl+C to stop.",
    ]
    return "\n".join(lines)


@contextlib.contextmanager
def _stop_signals(stop: asyncio.Event) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):
            # Windows event loops have no signal handlers; Ctrl+C still interrupts.
            continue
        installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def _print(text: str) -> None:
    print(text, flush=True)


async def serve(
    config: EmulatorConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    announce: Callable[[str], Any] = _print,
) -> None:
    """Serve until SIGINT or SIGTERM (or until cancelled).

    Args:
        config: the emulator's settings.
        host: the address to listen on.
        port: the port; 0 picks a free one.
        announce: called once with the :func:`banner` text when serving starts.
    """
    stop = asyncio.Event()
    async with Emulator(config, host=host, port=port) as emulator:
        announce(banner(emulator))
        with _stop_signals(stop):
            await stop.wait()


async def run_server(ns: argparse.Namespace) -> None:
    """Serve with the options parsed from :func:`add_emulator_arguments`.

    Raises:
        ValueError: options the configuration refuses.
        OSError: the address cannot be bound.
    """
    await serve(config_from_args(ns), host=ns.host, port=ns.port)
