"""Pytest fixtures that run the Nexudus emulator for a test.

Installed with the package, so any project's tests can ask for ``nexudus_emulator``::

    async def test_create(nexudus_emulator):
        url = nexudus_emulator.base_url
        ...
        assert len(nexudus_emulator.records) == 1

The emulator runs on its own thread and event loop, so the fixture works for synchronous
tests and under any async test runner. Override ``nexudus_emulator_config`` in a
``conftest.py`` to change its settings.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._config import EmulatorConfig
from ._emulator import Emulator

__all__ = ["nexudus_emulator", "nexudus_emulator_config"]


@pytest.fixture
def nexudus_emulator_config() -> EmulatorConfig:
    """The emulator's settings: the documented behaviour unless a test overrides this."""
    return EmulatorConfig()


@pytest.fixture
def nexudus_emulator(nexudus_emulator_config: EmulatorConfig) -> Iterator[Emulator]:
    """A running emulator on a free loopback port, stopped after the test."""
    with Emulator(nexudus_emulator_config) as emulator:
        yield emulator
