"""The commands the emulator offers for the entity, and running them.

The vendor does not document which commands this entity has, so these three are the
emulator's own: enough to exercise listing commands, running one on several records and
passing a parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from ._config import ENTITY
from ._store import Store
from ._validation import REQUIRED, Problem, is_integer

__all__ = ["COMMANDS", "Command", "CommandRun", "check_command", "describe_commands"]

_BODY_FIELDS: Final = frozenset({"Key", "Ids", "Parameters"})


@attrs.frozen
class Command:
    """A command: its key, display name, parameters (name, type) and what it sets."""

    key: str
    name: str
    parameters: tuple[tuple[str, str], ...]
    changes: Callable[[Mapping[str, str]], dict[str, Any]]

    def describe(self, order: int) -> dict[str, Any]:
        """The command as the commands route lists it."""
        return {
            "Key": self.key,
            "Name": self.name,
            "AppliesOnlyToMultipleEntities": False,
            "AppliesOnlyToOneEntity": False,
            "AppliesOnlyToTwoEntities": False,
            "NeedsEntitiesToRun": True,
            "Order": order,
            "RequiresParameters": [
                {"Name": name, "Type": kind} for name, kind in self.parameters
            ],
            "DisplayInDropdown": True,
            "DisplayInDropdownV2": True,
            "DisplayInGrid": True,
            "Icon": None,
        }


COMMANDS: Final = (
    Command("MARK_AS_IMPORTED", "Mark as imported", (), lambda _: {"Imported": True}),
    Command(
        "MARK_AS_NOT_IMPORTED",
        "Mark as not imported",
        (),
        lambda _: {"Imported": False},
    ),
    Command(
        "SET_SYSTEM_ID",
        "Set system id",
        (("SystemId", "string"),),
        lambda values: {"SystemId": values["SystemId"]},
    ),
)
_BY_KEY: Final = {command.key: command for command in COMMANDS}


def describe_commands() -> list[dict[str, Any]]:
    """Every command, as the commands route lists them."""
    return [command.describe(order) for order, command in enumerate(COMMANDS, start=1)]


@attrs.frozen
class CommandRun:
    """A checked run-command body: what to run on which records, with which values."""

    command: Command
    ids: tuple[int, ...]
    values: Mapping[str, str]

    def apply(self, store: Store, *, updated_by: str) -> None:
        """Run the command on every record."""
        changes = self.command.changes(self.values)
        for record_id in self.ids:
            store.touch(record_id, updated_by=updated_by, **changes)


def _parameters(raw: Any, problems: list[Problem]) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        problems.append(
            Problem("Parameters", "must be a list of {Name, Value} objects", raw)
        )
        return {}
    values: dict[str, str] = {}
    for item in raw:
        if not (isinstance(item, dict) and isinstance(item.get("Name"), str)):
            problems.append(Problem("Parameters", "each parameter needs a Name", item))
        elif not isinstance(item.get("Value"), str):
            problems.append(
                Problem(
                    "Parameters", f"the Value of {item['Name']} must be a string", item
                )
            )
        else:
            values[item["Name"]] = item["Value"]
    return values


def check_command(
    body: Mapping[str, Any], store: Store, *, strict_names: bool
) -> CommandRun | list[Problem]:
    """Check a run-command body against the catalogue and the stored records."""
    problems: list[Problem] = []

    key = body.get("Key")
    command = _BY_KEY.get(key) if isinstance(key, str) else None
    if key is None:
        problems.append(Problem("Key", REQUIRED, None))
    elif command is None:
        problems.append(Problem("Key", f"is not a command of {ENTITY}", key))

    ids: Any = body.get("Ids")
    if ids is None:
        problems.append(Problem("Ids", REQUIRED, None))
    elif not (isinstance(ids, list) and ids and all(is_integer(i) for i in ids)):
        problems.append(Problem("Ids", "must be a non-empty list of integer Ids", ids))
    else:
        problems.extend(
            Problem("Ids", f"{ENTITY} {i} was not found", i)
            for i in ids
            if store.get(i) is None
        )

    values = _parameters(body.get("Parameters"), problems)
    if command is not None:
        problems.extend(
            Problem("Parameters", f"{name} is required", None)
            for name, _ in command.parameters
            if name not in values
        )
    if strict_names:
        problems.extend(
            Problem(field, "is not a field of a command request", value)
            for field, value in body.items()
            if field not in _BODY_FIELDS
        )

    if problems or command is None:
        return problems

    return CommandRun(command, tuple(dict.fromkeys(ids)), values)
