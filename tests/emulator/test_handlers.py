"""Tests of every resource route, over plain HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nexudus_async.emulator._validation import ENTITY_FIELDS

from .conftest import COLLECTION, Api

# The example body of the vendor's create page, verbatim.
VENDOR_EXAMPLE = {"BusinessId": 123, "Name": "<string>"}
MakeApi = Callable[..., Awaitable[Api]]


async def created_id(api: Api, **fields: object) -> int:
    status, answer = await api.create({**VENDOR_EXAMPLE, **fields})
    assert status == 200, answer
    return int(answer["Value"]["Id"])


class TestCreate:
    async def test_vendor_example_body(self, api: Api) -> None:
        """The vendor's example body answers 200 with the documented envelope and a new Id."""
        status, answer = await api.create(VENDOR_EXAMPLE)
        assert status == 200
        assert answer["Status"] == 200
        assert answer["Message"] == "CrmOpportunityImportFile was successfully created."
        assert answer["Value"] == {"Id": 1}
        assert answer["WasSuccessful"] is True
        assert answer["Errors"] is None
        assert answer["UpdatedBy"] == "admin@example.com"
        assert answer["UpdatedOn"].endswith("Z")
        assert (
            answer["OpenInDialog"],
            answer["OpenInWindow"],
            answer["RedirectURL"],
            answer["JavaScript"],
        ) == (
            False,
            False,
            None,
            None,
        )
        assert api.emulator.records[1]["Name"] == VENDOR_EXAMPLE["Name"]
        assert api.emulator.stats.creates == 1

    async def test_ids_increase(self, make_api: MakeApi) -> None:
        """Each create gets the next Id, starting at first_id."""
        api = await make_api(first_id=87654321)
        assert [await created_id(api) for _ in range(3)] == [
            87654321,
            87654322,
            87654323,
        ]

    async def test_missing_name(self, api: Api) -> None:
        """A create without Name answers the documented 400 shape."""
        status, answer = await api.create({"BusinessId": 1})
        assert status == 400
        assert answer["Message"] == "Name: is a required field"
        assert answer["Value"] is None
        assert answer["WasSuccessful"] is False
        assert answer["Errors"] == [
            {
                "AttemptedValue": None,
                "Message": "is a required field",
                "PropertyName": "Name",
            }
        ]
        assert len(api.emulator.records) == 0

    async def test_missing_both(self, api: Api) -> None:
        """With neither required field, two Errors entries come back."""
        status, answer = await api.create({})
        assert status == 400
        assert [e["PropertyName"] for e in answer["Errors"]] == ["BusinessId", "Name"]
        assert api.emulator.stats.rejected == 1

    async def test_bad_business_and_url(self, api: Api) -> None:
        """A business that does not exist and a bad URL are both reported."""
        status, answer = await api.create(
            {"BusinessId": 42, "Name": "a", "NewFileDataUrl": "ftp://x/y"}
        )
        assert status == 400
        assert (
            answer["Message"]
            == "BusinessId: business not found; NewFileDataUrl: must be an absolute http or https URL"
        )

    async def test_wrongly_typed_business(self, api: Api) -> None:
        """A BusinessId sent as a string is a type error, with the attempted value."""
        status, answer = await api.create({"BusinessId": "1", "Name": "a"})
        assert status == 400
        assert answer["Errors"] == [
            {
                "AttemptedValue": "1",
                "Message": "must be an integer",
                "PropertyName": "BusinessId",
            }
        ]

    async def test_camel_case_field_names_fail(self, api: Api) -> None:
        """Fields named other than the documented PascalCase are refused."""
        status, answer = await api.create({"businessId": 1, "name": "a"})
        assert status == 400
        assert {e["PropertyName"] for e in answer["Errors"]} == {
            "BusinessId",
            "Name",
            "businessId",
            "name",
        }

    async def test_invalid_json(self, api: Api) -> None:
        """A body that is not JSON gets a clear 400."""
        status, answer, _ = await api.call(
            "POST",
            COLLECTION,
            data=b'{"BusinessId": 1,',
            headers={**api.headers, "Content-Type": "application/json"},
        )
        assert status == 400
        assert answer["Message"].startswith("The request body is not valid JSON")
        assert answer["WasSuccessful"] is False

    async def test_deeply_nested_json(self, api: Api) -> None:
        """A body nested too deeply for the decoder gets the same 400 as bad JSON."""
        status, answer, _ = await api.call(
            "POST",
            COLLECTION,
            data=b"[" * 100_000 + b"]" * 100_000,
            headers={**api.headers, "Content-Type": "application/json"},
        )
        assert status == 400
        assert answer["Message"] == (
            "The request body is not valid JSON: it is nested too deeply"
        )
        assert answer["WasSuccessful"] is False

    async def test_wrong_content_type(self, api: Api) -> None:
        """A form body gets a 400 that names the expected content type."""
        status, answer, _ = await api.call(
            "POST", COLLECTION, data={"BusinessId": "1", "Name": "a"}
        )
        assert status == 400
        assert "application/json" in answer["Message"]

    async def test_json_that_is_not_an_object(self, api: Api) -> None:
        """A JSON array body is refused."""
        status, answer = await api.create([VENDOR_EXAMPLE])
        assert status == 400
        assert answer["Message"] == "The request body must be a JSON object."

    async def test_validation_can_answer_200(self, make_api: MakeApi) -> None:
        """With validation_status 200 a failure is 200 with WasSuccessful false."""
        api = await make_api(validation_status=200)
        status, answer = await api.create({"BusinessId": 1})
        assert status == 200
        assert answer["WasSuccessful"] is False
        assert answer["Errors"][0]["PropertyName"] == "Name"

    async def test_lenient_names(self, make_api: MakeApi) -> None:
        """With strict names off, unknown fields are ignored."""
        api = await make_api(strict_names=False)
        status, _ = await api.create({**VENDOR_EXAMPLE, "Colour": "red"})
        assert status == 200


class TestGetOne:
    async def test_every_entity_field(self, api: Api) -> None:
        """GET /{id} returns the record with every entity field."""
        record_id = await created_id(
            api, NewFileDataUrl="https://files.example.com/leads.csv", Imported=True
        )
        status, record = await api.get(f"/{record_id}")
        assert status == 200
        assert list(record) == list(ENTITY_FIELDS)
        assert record["Id"] == record_id
        assert record["FileDataFileName"] == "leads.csv"
        assert record["Imported"] is True
        assert record == dict(api.emulator.records[record_id])

    async def test_missing(self, api: Api) -> None:
        """A missing Id answers 404."""
        status, answer = await api.get("/99")
        assert status == 404
        assert answer["WasSuccessful"] is False

    async def test_not_a_number(self, api: Api) -> None:
        """A path segment that is not an Id answers 404."""
        status, _ = await api.get("/abc")
        assert status == 404


class TestGetMany:
    async def test_ids_in_brackets(self, api: Api) -> None:
        """?id=[..] returns a JSON array of the existing records, in the order asked."""
        for _ in range(3):
            await created_id(api)
        status, records = await api.get("", params={"id": "[3,1,99,3]"})
        assert status == 200
        assert [r["Id"] for r in records] == [3, 1]

    async def test_trailing_slash(self, api: Api) -> None:
        """The collection path with a trailing slash works too."""
        await created_id(api)
        status, records = await api.get("/", params={"id": "[1]"})
        assert status == 200
        assert [r["Id"] for r in records] == [1]

    async def test_bad_list(self, api: Api) -> None:
        """A malformed id list is a 400 naming the parameter."""
        status, answer = await api.get("", params={"id": "[1,x]"})
        assert status == 400
        assert answer["Errors"][0]["PropertyName"] == "id"


class TestList:
    async def test_finds_by_name(self, api: Api) -> None:
        """The Name filter finds a created record."""
        record_id = await created_id(api, Name="Unique import name")
        await created_id(api, Name="Something else")
        status, page = await api.get(
            "", params={"CrmOpportunityImportFile_Name": "unique import"}
        )
        assert status == 200
        assert [r["Id"] for r in page["Records"]] == [record_id]
        assert page["TotalItems"] == 1

    async def test_exact_name_switch(self, make_api: MakeApi) -> None:
        """With name_filter exact, only the exact Name matches."""
        api = await make_api(name_filter="exact")
        await created_id(api, Name="abc")
        await created_id(api, Name="abcd")
        _, page = await api.get("", params={"CrmOpportunityImportFile_Name": "abc"})
        assert [r["Name"] for r in page["Records"]] == ["abc"]

    async def test_paging(self, api: Api) -> None:
        """page and size cut the result; the wrapper describes the page."""
        for i in range(5):
            await created_id(api, Name=f"n{i}")
        _, page = await api.get("", params={"page": "2", "size": "2"})
        assert [r["Name"] for r in page["Records"]] == ["n2", "n3"]
        assert (
            page["CurrentPage"],
            page["TotalPages"],
            page["HasNextPage"],
            page["HasPreviousPage"],
        ) == (2, 3, True, True)

    async def test_order_and_direction(self, api: Api) -> None:
        """orderBy and dir=-1 sort descending; the wrapper echoes them."""
        for name in ("b", "c", "a"):
            await created_id(api, Name=name)
        _, page = await api.get("", params={"orderBy": "Name", "dir": "-1"})
        assert [r["Name"] for r in page["Records"]] == ["c", "b", "a"]
        assert (page["CurrentOrderField"], page["CurrentSortDirection"]) == ("Name", -1)

    async def test_sdk_direction_switch(self, make_api: MakeApi) -> None:
        """With dir_encoding sdk, dir=1 means descending."""
        api = await make_api(dir_encoding="sdk")
        for name in ("a", "b"):
            await created_id(api, Name=name)
        _, page = await api.get("", params={"orderBy": "Name", "dir": "1"})
        assert [r["Name"] for r in page["Records"]] == ["b", "a"]
        assert page["CurrentSortDirection"] == 1

    async def test_business_and_imported_filters(self, api: Api) -> None:
        """The Business and Imported filters narrow the list."""
        await created_id(api, BusinessId=1)
        wanted = await created_id(api, BusinessId=2, Imported=True)
        await created_id(api, BusinessId=2)
        _, page = await api.get(
            "",
            params={
                "CrmOpportunityImportFile_Business": "2",
                "CrmOpportunityImportFile_Imported": "true",
            },
        )
        assert [r["Id"] for r in page["Records"]] == [wanted]

    async def test_date_ranges(self, api: Api) -> None:
        """from_/to_ CreatedOn and UpdatedOn ranges include records inside them."""
        record_id = await created_id(api)
        stamp = api.emulator.records[record_id]["CreatedOn"]
        minute = stamp[:16]
        params = {
            "from_CrmOpportunityImportFile_CreatedOn": minute,
            "to_CrmOpportunityImportFile_CreatedOn": stamp,
            "From_CrmOpportunityImportFile_UpdatedOn": minute,
        }
        _, page = await api.get("", params=params)
        assert [r["Id"] for r in page["Records"]] == [record_id]
        _, page = await api.get(
            "", params={"to_CrmOpportunityImportFile_UpdatedOn": "2000-01-01T00:00"}
        )
        assert page["Records"] == []

    async def test_bad_parameters(self, api: Api) -> None:
        """Bad values and unknown parameters answer 400 with every problem."""
        status, answer = await api.get(
            "",
            params={
                "size": "0",
                "dir": "sideways",
                "CrmOpportunityImportFile_BusinessId": "1",
            },
        )
        assert status == 400
        assert [e["PropertyName"] for e in answer["Errors"]] == [
            "CrmOpportunityImportFile_BusinessId",
            "size",
            "dir",
        ]


class TestUpdate:
    async def test_full_replace(self, api: Api) -> None:
        """PUT with Id in the body replaces the record; omitted fields are reset."""
        record_id = await created_id(api, Imported=True, SystemId="ext")
        status, answer, _ = await api.call(
            "PUT",
            COLLECTION,
            json={"Id": record_id, "BusinessId": 3, "Name": "renamed"},
        )
        assert status == 200
        assert answer["Message"] == "CrmOpportunityImportFile was successfully updated."
        assert answer["Value"] == {"Id": record_id}
        record = api.emulator.records[record_id]
        assert (
            record["BusinessId"],
            record["Name"],
            record["Imported"],
            record["SystemId"],
        ) == (3, "renamed", False, None)
        assert api.emulator.stats.updates == 1

    async def test_round_trip_of_a_read_record(self, api: Api) -> None:
        """A record read with GET can be sent back whole with PUT."""
        record_id = await created_id(api)
        _, record = await api.get(f"/{record_id}")
        status, _, _ = await api.call(
            "PUT", COLLECTION, json={**record, "Name": "changed"}
        )
        assert status == 200
        assert api.emulator.records[record_id]["Name"] == "changed"

    async def test_missing_id(self, api: Api) -> None:
        """PUT without Id is a validation failure."""
        status, answer, _ = await api.call("PUT", COLLECTION, json=VENDOR_EXAMPLE)
        assert status == 400
        assert answer["Message"] == "Id: is a required field"

    async def test_unknown_id(self, api: Api) -> None:
        """PUT of an Id that does not exist answers 404."""
        status, answer, _ = await api.call(
            "PUT", COLLECTION, json={"Id": 5, **VENDOR_EXAMPLE}
        )
        assert status == 404
        assert answer["WasSuccessful"] is False

    async def test_missing_record_status_switch(self, make_api: MakeApi) -> None:
        """missing_record_status changes the answer for a missing Id."""
        api = await make_api(missing_record_status=500)
        status, _, _ = await api.call(
            "PUT", COLLECTION, json={"Id": 5, **VENDOR_EXAMPLE}
        )
        assert status == 500


class TestDelete:
    async def test_delete(self, api: Api) -> None:
        """DELETE /{id} answers the envelope and the record is gone."""
        record_id = await created_id(api)
        status, answer, _ = await api.call("DELETE", f"{COLLECTION}/{record_id}")
        assert status == 200
        assert answer["Message"] == "CrmOpportunityImportFile was successfully deleted."
        assert answer["Value"] == {"Id": record_id}
        assert record_id not in api.emulator.records
        assert (await api.get(f"/{record_id}"))[0] == 404

    async def test_delete_missing(self, api: Api) -> None:
        """Deleting an Id that does not exist answers 404."""
        status, _, _ = await api.call("DELETE", f"{COLLECTION}/5")
        assert status == 404
        status, _, _ = await api.call("DELETE", f"{COLLECTION}/five")
        assert status == 404


class TestCommands:
    async def test_list(self, api: Api) -> None:
        """GET /commands lists the commands."""
        status, commands = await api.get("/commands")
        assert status == 200
        assert {c["Key"] for c in commands} == {
            "MARK_AS_IMPORTED",
            "MARK_AS_NOT_IMPORTED",
            "SET_SYSTEM_ID",
        }

    async def test_list_for_one_record(self, api: Api) -> None:
        """?id= narrows to a record, which must exist."""
        record_id = await created_id(api)
        assert (await api.get("/commands", params={"id": str(record_id)}))[0] == 200
        assert (await api.get("/commands", params={"id": "99"}))[0] == 404
        assert (await api.get("/commands", params={"id": "x"}))[0] == 400

    async def test_run(self, api: Api) -> None:
        """POST /runcommand runs a command on the records named."""
        ids = [await created_id(api) for _ in range(2)]
        body = {
            "Key": "SET_SYSTEM_ID",
            "Ids": ids,
            "Parameters": [{"Name": "SystemId", "Value": "batch-7", "Type": "string"}],
        }
        status, answer, _ = await api.call(
            "POST", f"{COLLECTION}/runcommand", json=body
        )
        assert status == 200
        assert answer["Message"] == "The command was run correctly."
        assert answer["WasSuccessful"] is True
        assert [api.emulator.records[i]["SystemId"] for i in ids] == [
            "batch-7",
            "batch-7",
        ]
        assert api.emulator.stats.commands_run == 1

    async def test_run_refused(self, api: Api) -> None:
        """A bad run-command body answers 400 with its problems."""
        status, answer, _ = await api.call(
            "POST",
            f"{COLLECTION}/runcommand",
            json={"Key": "MARK_AS_IMPORTED", "Ids": [9]},
        )
        assert status == 400
        assert answer["Errors"][0]["PropertyName"] == "Ids"
