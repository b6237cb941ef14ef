"""Tests of the command catalogue and of checking and running commands."""

from __future__ import annotations

from typing import Any

from nexudus_async.emulator._commands import (
    COMMANDS,
    CommandRun,
    check_command,
    describe_commands,
)
from nexudus_async.emulator._store import Store
from nexudus_async.emulator._validation import RecordInput


def store_with(count: int) -> Store:
    store = Store()
    for i in range(count):
        store.add(RecordInput(1, f"n{i}"), updated_by="u")
    return store


def problems(body: dict[str, Any], store: Store | None = None) -> list[tuple[str, str]]:
    result = check_command(body, store or store_with(2), strict_names=True)
    assert isinstance(result, list)
    return [(p.property_name, p.message) for p in result]


class TestDescribeCommands:
    def test_documented_shape(self) -> None:
        """Each command carries every documented descriptor field."""
        listed = describe_commands()
        assert [c["Key"] for c in listed] == [c.key for c in COMMANDS]
        assert set(listed[0]) == {
            "Key",
            "Name",
            "AppliesOnlyToMultipleEntities",
            "AppliesOnlyToOneEntity",
            "AppliesOnlyToTwoEntities",
            "NeedsEntitiesToRun",
            "Order",
            "RequiresParameters",
            "DisplayInDropdown",
            "DisplayInDropdownV2",
            "DisplayInGrid",
            "Icon",
        }
        by_key = {c["Key"]: c for c in listed}
        assert by_key["SET_SYSTEM_ID"]["RequiresParameters"] == [
            {"Name": "SystemId", "Type": "string"}
        ]


class TestCheckCommand:
    def test_valid_run(self) -> None:
        """A known key on existing records is accepted; repeated Ids collapse."""
        result = check_command(
            {"Key": "MARK_AS_IMPORTED", "Ids": [1, 2, 1]},
            store_with(2),
            strict_names=True,
        )
        assert isinstance(result, CommandRun)
        assert result.ids == (1, 2)

    def test_missing_key_and_ids(self) -> None:
        """Key and Ids are both required."""
        assert problems({}) == [
            ("Key", "is a required field"),
            ("Ids", "is a required field"),
        ]

    def test_unknown_key(self) -> None:
        """A key not in the catalogue is refused."""
        assert problems({"Key": "LAUNCH", "Ids": [1]}) == [
            ("Key", "is not a command of CrmOpportunityImportFile")
        ]

    def test_bad_ids(self) -> None:
        """Ids must be a non-empty list of integers."""
        for ids in ([], "1", [1, "2"], [True]):
            assert problems({"Key": "MARK_AS_IMPORTED", "Ids": ids}) == [
                ("Ids", "must be a non-empty list of integer Ids")
            ]

    def test_missing_record(self) -> None:
        """Each Id that does not exist is reported."""
        assert problems({"Key": "MARK_AS_IMPORTED", "Ids": [1, 7, 8]}) == [
            ("Ids", "CrmOpportunityImportFile 7 was not found"),
            ("Ids", "CrmOpportunityImportFile 8 was not found"),
        ]

    def test_required_parameter(self) -> None:
        """A command's parameters must be sent."""
        assert problems({"Key": "SET_SYSTEM_ID", "Ids": [1]}) == [
            ("Parameters", "SystemId is required")
        ]

    def test_parameter_shape(self) -> None:
        """Parameters are a list of objects with a Name and a string Value."""
        assert problems({"Key": "MARK_AS_IMPORTED", "Ids": [1], "Parameters": {}}) == [
            ("Parameters", "must be a list of {Name, Value} objects")
        ]
        assert problems(
            {
                "Key": "SET_SYSTEM_ID",
                "Ids": [1],
                "Parameters": [{"Value": "x"}, {"Name": "SystemId", "Value": 5}],
            }
        ) == [
            ("Parameters", "each parameter needs a Name"),
            ("Parameters", "the Value of SystemId must be a string"),
            ("Parameters", "SystemId is required"),
        ]

    def test_unknown_body_field(self) -> None:
        """A misspelt body field is refused."""
        assert problems({"Key": "MARK_AS_IMPORTED", "Ids": [1], "ids": [1]}) == [
            ("ids", "is not a field of a command request")
        ]


class TestCommandRun:
    def test_mark_as_imported(self) -> None:
        """MARK_AS_IMPORTED sets Imported and stamps the update."""
        store = store_with(2)
        result = check_command(
            {"Key": "MARK_AS_IMPORTED", "Ids": [2]}, store, strict_names=True
        )
        assert isinstance(result, CommandRun)
        result.apply(store, updated_by="w@example.com")
        row = store.get(2)
        assert row is not None
        assert (row["Imported"], row["UpdatedBy"]) == (True, "w@example.com")
        other = store.get(1)
        assert other is not None
        assert other["Imported"] is False

    def test_set_system_id(self) -> None:
        """SET_SYSTEM_ID writes the parameter's value on every record."""
        store = store_with(2)
        body = {
            "Key": "SET_SYSTEM_ID",
            "Ids": [1, 2],
            "Parameters": [{"Name": "SystemId", "Value": "ext", "Type": "string"}],
        }
        result = check_command(body, store, strict_names=True)
        assert isinstance(result, CommandRun)
        result.apply(store, updated_by="u")
        assert [store.get(i)["SystemId"] for i in (1, 2)] == ["ext", "ext"]  # type: ignore[index]
