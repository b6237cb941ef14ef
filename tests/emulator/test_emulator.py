"""Tests of the emulator's handle: lifecycle, URL, records view, counters."""

from __future__ import annotations

import threading

import aiohttp
import pytest

from nexudus_async.emulator import Emulator, EmulatorConfig, Limits

from .conftest import ADMIN, COLLECTION, basic

BODY = {"BusinessId": 1, "Name": "a"}


class TestAsyncContextManager:
    async def test_serves_on_loopback(self) -> None:
        """It listens on 127.0.0.1 on a free port and answers HTTP."""
        async with Emulator() as emulator, aiohttp.ClientSession() as session:
            assert emulator.base_url.startswith("http://127.0.0.1:")
            async with session.get(
                emulator.base_url + COLLECTION, headers=basic(*ADMIN)
            ) as response:
                assert response.status == 200

    async def test_base_url_only_while_running(self) -> None:
        """base_url raises before start and after close."""
        emulator = Emulator()
        with pytest.raises(RuntimeError, match="not running"):
            _ = emulator.base_url
        async with emulator:
            assert emulator.base_url
        with pytest.raises(RuntimeError, match="not running"):
            _ = emulator.base_url

    async def test_cannot_start_twice(self) -> None:
        """Starting a running emulator is an error."""
        async with Emulator() as emulator:
            with pytest.raises(RuntimeError, match="already running"):
                await emulator.start()

    async def test_close_is_idempotent(self) -> None:
        """Closing twice is harmless."""
        emulator = Emulator()
        await emulator.start()
        await emulator.close()
        await emulator.close()

    async def test_records_and_stats_outlive_the_server(self) -> None:
        """What was stored stays readable after close."""
        async with (
            Emulator(EmulatorConfig(limits=Limits.off())) as emulator,
            aiohttp.ClientSession() as session,
            session.post(
                emulator.base_url + COLLECTION, json=BODY, headers=basic(*ADMIN)
            ) as response,
        ):
            assert response.status == 200
        assert emulator.records[1]["Name"] == "a"
        assert emulator.stats.requests == 1
        assert emulator.stats.creates == 1
        assert emulator.stats.writes == 1

    async def test_repr(self) -> None:
        """The repr shows the URL and the record count."""
        emulator = Emulator()
        assert repr(emulator) == "<Emulator not running, 0 records>"
        async with emulator:
            assert emulator.base_url in repr(emulator)


class TestRecordsView:
    def test_read_only(self) -> None:
        """records cannot be changed through the view."""
        emulator = Emulator()
        record_id = emulator.add_record(BODY)
        with pytest.raises(TypeError):
            emulator.records[record_id] = {}  # type: ignore[index]
        with pytest.raises(TypeError):
            emulator.records[record_id]["Name"] = "b"  # type: ignore[index]


class TestAddRecord:
    def test_adds_with_every_field(self) -> None:
        """add_record stores a record as a create would, by the first user."""
        emulator = Emulator()
        record_id = emulator.add_record({**BODY, "Imported": True})
        record = emulator.records[record_id]
        assert (record["Name"], record["Imported"], record["UpdatedBy"]) == (
            "a",
            True,
            "admin@example.com",
        )
        assert emulator.stats.creates == 0

    def test_refuses_what_a_create_would(self) -> None:
        """add_record raises ValueError with every problem."""
        with pytest.raises(
            ValueError,
            match="BusinessId: is a required field; Name: is a required field",
        ):
            Emulator().add_record({})

    def test_updated_by(self) -> None:
        """The recorded updater can be chosen."""
        emulator = Emulator()
        record_id = emulator.add_record(BODY, updated_by="etl@example.com")
        assert emulator.records[record_id]["UpdatedBy"] == "etl@example.com"


class TestSyncContextManager:
    def test_runs_on_a_thread(self) -> None:
        """Used with a plain with, it serves from a background thread."""
        before = threading.active_count()
        with Emulator(EmulatorConfig(limits=Limits.off())) as emulator:
            assert threading.active_count() == before + 1
            emulator.add_record(BODY)
            assert emulator.base_url.startswith("http://127.0.0.1:")
        assert threading.active_count() == before

    async def test_usable_from_async_code(self) -> None:
        """A thread-run emulator serves requests made from another event loop."""
        with Emulator(EmulatorConfig(limits=Limits.off())) as emulator:
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    emulator.base_url + COLLECTION, json=BODY, headers=basic(*ADMIN)
                ) as response,
            ):
                assert response.status == 200
            assert len(emulator.records) == 1

    def test_bind_failure_stops_the_thread(self) -> None:
        """If the port cannot be bound, the error surfaces and no thread is left."""
        before = threading.active_count()
        with Emulator() as first:
            port = int(first.base_url.rsplit(":", 1)[1])
            with pytest.raises(OSError, match="address"), Emulator(port=port):
                pass
        assert threading.active_count() == before
