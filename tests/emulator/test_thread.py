"""Tests of the background event loop thread."""

from __future__ import annotations

import asyncio
import threading

import pytest

from nexudus_async.emulator._thread import LoopThread


async def where() -> str:
    await asyncio.sleep(0)
    return threading.current_thread().name


async def fail() -> None:
    raise LookupError("boom")


class TestLoopThread:
    def test_runs_coroutines_on_its_thread(self) -> None:
        """call runs the coroutine on the named thread and returns its result."""
        thread = LoopThread("loop-under-test")
        try:
            assert thread.call(where()) == "loop-under-test"
        finally:
            thread.stop()

    def test_errors_propagate(self) -> None:
        """An exception inside the coroutine is raised to the caller."""
        thread = LoopThread("loop-under-test")
        try:
            with pytest.raises(LookupError, match="boom"):
                thread.call(fail())
        finally:
            thread.stop()

    def test_stop_ends_the_thread(self) -> None:
        """After stop no thread is left behind."""
        before = threading.active_count()
        LoopThread("loop-under-test").stop()
        assert threading.active_count() == before
