"""ImportFiles: the requests each method sends and how it reads the answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from conftest import FAKE_BASE, Reply

from nexudus_async import _json
from nexudus_async._auth import BearerAuth, PasswordAuth
from nexudus_async._client import NexudusClient
from nexudus_async._errors import (
    NexudusError,
    NotFoundError,
    OutcomeUnknownError,
    ServerError,
    ValidationError,
    WireFormatError,
)
from nexudus_async._models import (
    CommandParameter,
    ImportFileCreate,
    ImportFileUpdate,
    SortDirection,
)
from nexudus_async._retry import RetryPolicy
from nexudus_async.emulator import Emulator, EmulatorConfig, Faults, Limits

if TYPE_CHECKING:
    from conftest import FakeAPI, FakeTime

ITEMS = "/api/crm/crmopportunityimportfiles"
OK = {"Message": "done", "Value": {"Id": 5}, "WasSuccessful": True, "Errors": None}


def record(n: int) -> dict[str, Any]:
    return {
        "Id": n,
        "BusinessId": 1,
        "Name": f"file-{n}.csv",
        "CreatedOn": "2025-01-15T10:30:00Z",
        "Imported": False,
    }


def page(number: int, ids: list[int], *, has_next: bool) -> Reply:
    return Reply(
        json={
            "Records": [record(i) for i in ids],
            "CurrentPage": number,
            "CurrentPageSize": 2,
            "HasNextPage": has_next,
            "HasPreviousPage": number > 1,
            "TotalItems": 5,
            "TotalPages": 3,
        }
    )


@asynccontextmanager
async def open_client(
    fake_time: FakeTime, **kwargs: Any
) -> AsyncIterator[NexudusClient]:
    kwargs.setdefault("retry", RetryPolicy(jitter=0.0))
    async with NexudusClient(
        auth=BearerAuth("t"),
        base_url=FAKE_BASE,
        rate_limits=None,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        **kwargs,
    ) as client:
        yield client


class TestCreate:
    async def test_sends_wire_json(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """create POSTs the PascalCase JSON body, leaving unset fields out."""
        fake_api.on("POST", ITEMS, Reply(json=OK))
        async with open_client(fake_time) as client:
            result = await client.import_files.create(
                ImportFileCreate(business_id=1, name="a.csv", imported=True)
            )
        assert result.id == 5
        (sent,) = fake_api.requests
        assert _json.loads(sent.body) == {
            "BusinessId": 1,
            "Name": "a.csv",
            "Imported": True,
        }
        assert sent.query == {}

    async def test_wrong_type_refused(self, fake_time: FakeTime) -> None:
        """create takes an ImportFileCreate, nothing else, and sends nothing otherwise."""
        async with open_client(fake_time) as client:
            with pytest.raises(TypeError, match="ImportFileCreate"):
                await client.import_files.create({"BusinessId": 1})  # type: ignore[arg-type]

    async def test_unencodable_name_is_wire_format_error(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A lone surrogate in Name raises WireFormatError naming Name; nothing is sent."""
        async with open_client(fake_time) as client:
            with pytest.raises(WireFormatError) as caught:
                await client.import_files.create(
                    ImportFileCreate(business_id=1, name="a\ud800")
                )
        assert isinstance(caught.value, NexudusError)
        assert (caught.value.path, caught.value.value) == ("Name", "a\ud800")
        assert fake_api.requests == []


class TestGet:
    async def test_found(self, fake_time: FakeTime, fake_api: FakeAPI) -> None:
        """get reads one record by id into an ImportFile."""
        fake_api.on("GET", f"{ITEMS}/7", Reply(json=record(7)))
        async with open_client(fake_time) as client:
            found = await client.import_files.get(7)
        assert found is not None
        assert (found.id, found.name) == (7, "file-7.csv")
        assert found.created_on == datetime(2025, 1, 15, 10, 30, tzinfo=timezone.utc)

    async def test_missing_is_none(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A 404 for the id gives None, and is not retried."""
        fake_api.on("GET", f"{ITEMS}/8", Reply(404, body=b""))
        async with open_client(fake_time) as client:
            assert await client.import_files.get(8) is None
        assert len(fake_api.requests) == 1

    async def test_other_failures_raise(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """Anything but a 404 still raises."""
        fake_api.on("GET", f"{ITEMS}/8", Reply(500))
        async with open_client(fake_time, retry=RetryPolicy(max_attempts=2)) as client:
            with pytest.raises(ServerError):
                await client.import_files.get(8)

    async def test_record_not_fitting_the_model(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A record missing a required field raises WireFormatError naming it."""
        fake_api.on("GET", f"{ITEMS}/8", Reply(json={"Id": 8, "BusinessId": 1}))
        async with open_client(fake_time) as client:
            with pytest.raises(WireFormatError, match="Name"):
                await client.import_files.get(8)


class TestGetMany:
    async def test_ids_in_brackets(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """get_many asks for all ids in one request, in square brackets."""
        fake_api.on("GET", ITEMS, Reply(json=[record(1), record(3)]))
        async with open_client(fake_time) as client:
            found = await client.import_files.get_many([1, 2, 3])
        assert [f.id for f in found] == [1, 3]
        assert fake_api.requests[0].query == {"id": "[1,2,3]"}

    async def test_accepts_a_page(self, fake_time: FakeTime, fake_api: FakeAPI) -> None:
        """A listing page as the answer is read too."""
        fake_api.on("GET", ITEMS, page(1, [4], has_next=False))
        async with open_client(fake_time) as client:
            assert [f.id for f in await client.import_files.get_many([4])] == [4]

    async def test_no_ids_no_request(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """No ids means no request at all."""
        async with open_client(fake_time) as client:
            assert await client.import_files.get_many([]) == []
        assert fake_api.requests == []


class TestList:
    async def test_defaults(self, fake_time: FakeTime, fake_api: FakeAPI) -> None:
        """list asks for page 1 of 25 ordered by Id ascending, and reads the counters."""
        fake_api.on("GET", ITEMS, page(1, [1, 2], has_next=True))
        async with open_client(fake_time) as client:
            result = await client.import_files.list()
        assert fake_api.requests[0].query == {
            "page": "1",
            "size": "25",
            "orderBy": "Id",
            "dir": "1",
        }
        assert [r.id for r in result.records] == [1, 2]
        assert (result.current_page, result.total_items, result.has_next_page) == (
            1,
            5,
            True,
        )

    async def test_filters_and_order(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """Filters use the documented names; times go out in UTC to the minute."""
        fake_api.on("GET", ITEMS, page(2, [], has_next=False))
        plus_two = timezone(timedelta(hours=2))
        async with open_client(fake_time) as client:
            await client.import_files.list(
                page=2,
                size=50,
                order_by="Name",
                direction=SortDirection.DESCENDING,
                name="leads & more",
                business_id=3,
                imported=False,
                created_from=datetime(2025, 1, 1, 12, 30, 45, tzinfo=plus_two),
                created_to=datetime(2025, 2, 1),
                updated_from=datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc),
                updated_to=datetime(2025, 3, 2, 9, 15),
            )
        assert fake_api.requests[0].query == {
            "page": "2",
            "size": "50",
            "orderBy": "Name",
            "dir": "-1",
            "CrmOpportunityImportFile_Name": "leads & more",
            "CrmOpportunityImportFile_Business": "3",
            "CrmOpportunityImportFile_Imported": "false",
            "from_CrmOpportunityImportFile_CreatedOn": "2025-01-01T10:30",
            "to_CrmOpportunityImportFile_CreatedOn": "2025-02-01T00:00",
            "from_CrmOpportunityImportFile_UpdatedOn": "2025-03-01T08:00",
            "to_CrmOpportunityImportFile_UpdatedOn": "2025-03-02T09:15",
        }

    @pytest.mark.parametrize(("number", "size"), [(0, 25), (1, 0), (-1, 10)])
    async def test_bad_paging_refused(
        self, fake_time: FakeTime, number: int, size: int
    ) -> None:
        """Page numbers and sizes below 1 are refused before sending."""
        async with open_client(fake_time) as client:
            with pytest.raises(ValueError, match="must be >= 1"):
                await client.import_files.list(page=number, size=size)

    async def test_other_404_raises(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """Only get turns a 404 into None; elsewhere it raises NotFoundError."""
        fake_api.on("GET", ITEMS, Reply(404))
        async with open_client(fake_time) as client:
            with pytest.raises(NotFoundError):
                await client.import_files.list()


class TestIterate:
    async def test_walks_until_no_next_page(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """iterate fetches pages in turn and stops when HasNextPage is false."""
        fake_api.on(
            "GET",
            ITEMS,
            page(1, [1, 2], has_next=True),
            page(2, [3, 4], has_next=True),
            page(3, [5], has_next=False),
        )
        async with open_client(fake_time) as client:
            ids = [
                f.id async for f in client.import_files.iterate(size=2, business_id=1)
            ]
        assert ids == [1, 2, 3, 4, 5]
        assert [r.query["page"] for r in fake_api.requests] == ["1", "2", "3"]
        assert {r.query["size"] for r in fake_api.requests} == {"2"}
        assert {
            r.query["CrmOpportunityImportFile_Business"] for r in fake_api.requests
        } == {"1"}

    async def test_stops_on_empty_page(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """An empty page ends the walk even if it claims a next page."""
        fake_api.on(
            "GET", ITEMS, page(1, [1], has_next=True), page(2, [], has_next=True)
        )
        async with open_client(fake_time) as client:
            ids = [f.id async for f in client.import_files.iterate()]
        assert ids == [1]
        assert len(fake_api.requests) == 2

    async def test_pages_fetched_lazily(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """Breaking out early leaves later pages unfetched."""
        fake_api.on(
            "GET", ITEMS, page(1, [1, 2], has_next=True), page(2, [3], has_next=False)
        )
        async with open_client(fake_time) as client:
            async for found in client.import_files.iterate(size=2):
                assert found.id == 1
                break
        assert len(fake_api.requests) == 1


class TestWrites:
    async def test_update_is_full_put(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """update PUTs the whole record, Id included, to the collection path."""
        fake_api.on("PUT", ITEMS, Reply(json=OK))
        async with open_client(fake_time) as client:
            result = await client.import_files.update(
                ImportFileUpdate(
                    id=5, business_id=2, name="b.csv", clear_file_data_file=True
                )
            )
        assert result.was_successful
        assert _json.loads(fake_api.requests[0].body) == {
            "Id": 5,
            "BusinessId": 2,
            "Name": "b.csv",
            "ClearFileDataFile": True,
        }

    async def test_update_wrong_type_refused(self, fake_time: FakeTime) -> None:
        """update refuses a create payload, which has no id."""
        async with open_client(fake_time) as client:
            with pytest.raises(TypeError, match="ImportFileUpdate"):
                await client.import_files.update(
                    ImportFileCreate(business_id=1, name="x")
                )  # type: ignore[arg-type]

    async def test_unencodable_update_is_wire_format_error(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """update refuses a lone surrogate with WireFormatError before sending."""
        async with open_client(fake_time) as client:
            with pytest.raises(WireFormatError, match=r"^NewFileDataUrl: "):
                await client.import_files.update(
                    ImportFileUpdate(
                        id=5, business_id=2, name="b", new_file_data_url="\udc00"
                    )
                )
        assert fake_api.requests == []

    async def test_delete(self, fake_time: FakeTime, fake_api: FakeAPI) -> None:
        """delete sends DELETE to the record's path and returns the write result."""
        fake_api.on("DELETE", f"{ITEMS}/5", Reply(json=OK))
        async with open_client(fake_time) as client:
            assert (await client.import_files.delete(5)).id == 5
        assert fake_api.requests[0].body is None


class TestCommands:
    async def test_list_commands(self, fake_time: FakeTime, fake_api: FakeAPI) -> None:
        """commands reads the command list, optionally for one record."""
        answer = [
            {
                "Key": "IMPORT",
                "Name": "Import",
                "RequiresParameters": [{"Name": "Mode", "Type": "string"}],
            },
            {"Key": "RESET", "Name": "Reset"},
        ]
        fake_api.on("GET", f"{ITEMS}/commands", Reply(json=answer))
        async with open_client(fake_time) as client:
            every = await client.import_files.commands()
            for_one = await client.import_files.commands(id=9)
        assert [c.key for c in every] == ["IMPORT", "RESET"]
        assert every[0].requires_parameters[0].name == "Mode"
        assert len(for_one) == 2
        assert [r.query for r in fake_api.requests] == [{}, {"id": "9"}]

    async def test_run_command(self, fake_time: FakeTime, fake_api: FakeAPI) -> None:
        """run_command POSTs key, ids and parameters to runcommand."""
        fake_api.on(
            "POST",
            f"{ITEMS}/runcommand",
            Reply(json={**OK, "Value": None, "RedirectURL": "/dl/1"}),
        )
        async with open_client(fake_time) as client:
            result = await client.import_files.run_command(
                "IMPORT", [1, 2], [CommandParameter(name="Mode", value="fast")]
            )
        assert result.redirect_url == "/dl/1"
        assert _json.loads(fake_api.requests[0].body) == {
            "Key": "IMPORT",
            "Ids": [1, 2],
            "Parameters": [{"Name": "Mode", "Value": "fast"}],
        }

    async def test_run_command_never_resent_after_sending(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A command lost after sending is not run twice: outcome unknown."""
        fake_api.on(
            "POST",
            f"{ITEMS}/runcommand",
            aiohttp.ServerDisconnectedError(),
            Reply(json=OK),
        )
        async with open_client(fake_time) as client:
            with pytest.raises(OutcomeUnknownError):
                await client.import_files.run_command("IMPORT", [1])
        assert len(fake_api.requests) == 1


@asynccontextmanager
async def emulated(
    config: EmulatorConfig | None = None,
) -> AsyncIterator[tuple[Emulator, NexudusClient]]:
    config = config or EmulatorConfig(limits=Limits.off())
    async with Emulator(config) as emulator:
        auth = PasswordAuth("admin@example.com", "password")
        async with NexudusClient(
            auth=auth, base_url=emulator.base_url, rate_limits=None
        ) as client:
            yield emulator, client


class TestAgainstEmulator:
    async def test_round_trip(self) -> None:
        """Create, read, update, list, run a command and delete against the emulator."""
        async with emulated() as (emulator, client):
            files = client.import_files
            created = await files.create(ImportFileCreate(business_id=1, name="a.csv"))
            assert created.id is not None
            assert emulator.records[created.id]["Name"] == "a.csv"
            found = await files.get(created.id)
            assert found is not None
            assert found.unique_id
            await files.update(
                ImportFileUpdate(id=created.id, business_id=2, name="b.csv")
            )
            listed = await files.list(name="b.csv")
            assert [r.id for r in listed.records] == [created.id]
            assert [r.id for r in await files.get_many([created.id, 999])] == [
                created.id
            ]
            keys = [c.key for c in await files.commands()]
            await files.run_command(keys[0], [created.id])
            await files.delete(created.id)
            assert await files.get(created.id) is None
        assert emulator.stats.token_grants == 1

    async def test_iterate_walks_every_page(self) -> None:
        """Iteration walks every page of the emulator and yields each record once."""
        async with emulated() as (emulator, client):
            expected = [
                emulator.add_record({"BusinessId": 1 + n % 3, "Name": f"f{n}.csv"})
                for n in range(23)
            ]
            ids = [f.id async for f in client.import_files.iterate(size=5)]
            only_two = [
                f.id async for f in client.import_files.iterate(size=4, business_id=2)
            ]
        assert ids == expected
        assert only_two == [i for n, i in enumerate(expected) if 1 + n % 3 == 2]
        assert emulator.stats.requests == 1 + 5 + 2

    async def test_validation_error(self) -> None:
        """The emulator's refusal arrives as a ValidationError naming the field."""
        async with emulated() as (_, client):
            with pytest.raises(ValidationError) as caught:
                await client.import_files.create(
                    ImportFileCreate(business_id=99, name="x.csv")
                )
        assert [f.property_name for f in caught.value.field_errors] == ["BusinessId"]

    async def test_lone_surrogate_is_refused_before_sending(self) -> None:
        """A name with a lone surrogate raises a NexudusError and creates nothing."""
        async with emulated() as (emulator, client):
            with pytest.raises(NexudusError, match=r"^Name: .*UTF-8"):
                await client.import_files.create(
                    ImportFileCreate(business_id=1, name="a\ud800")
                )
        assert emulator.stats.creates == 0
        assert emulator.records == {}

    async def test_reset_after_store_is_unknown_not_resent(self) -> None:
        """A create whose answer is lost after storing raises OutcomeUnknownError, sent once."""
        config = EmulatorConfig(
            limits=Limits.off(), faults=Faults(by_create={1: "reset_after_store"})
        )
        async with emulated(config) as (emulator, client):
            with pytest.raises(OutcomeUnknownError):
                await client.import_files.create(
                    ImportFileCreate(business_id=1, name="a.csv")
                )
        assert emulator.stats.creates == 1
        assert [r["Name"] for r in emulator.records.values()] == ["a.csv"]

    async def test_reset_before_store_read_is_retried(self) -> None:
        """A read whose connection drops is retried and succeeds."""
        config = EmulatorConfig(
            limits=Limits.off(), faults=Faults(by_request={1: "reset_before_store"})
        )
        async with emulated(config) as (emulator, client):
            emulator.add_record({"BusinessId": 1, "Name": "a.csv"})
            page = await client.import_files.list()
        assert len(page.records) == 1
