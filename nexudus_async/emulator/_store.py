"""The records the emulator holds, kept as wire dictionaries keyed by Id."""

from __future__ import annotations

import itertools
import posixpath
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote, urlsplit

from ._validation import RecordInput

__all__ = ["RecordsView", "Store", "format_timestamp"]


def format_timestamp(moment: datetime, suffix: str) -> str:
    """An aware UTC time as ISO 8601 with milliseconds and ``suffix`` (``"Z"`` or ``""``)."""
    naive = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return naive.isoformat(timespec="milliseconds") + suffix


def _now() -> datetime:
    # Whole milliseconds, as printed, so range filters agree with the visible stamps.
    moment = datetime.now(timezone.utc)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _file_name(url: str) -> str:
    # The real service downloads the file; the emulator only takes the name it would get.
    name = posixpath.basename(unquote(urlsplit(url).path))
    return name or "file"


class Store:
    """Records by Id, plus an index of exact names for cheap exact-name lookups.

    Ids only grow, so the dictionary's order is Id order and listing by Id needs no sort.
    """

    def __init__(self, *, first_id: int = 1, timestamp_suffix: str = "Z") -> None:
        self._rows: dict[int, dict[str, Any]] = {}
        self._times: dict[int, tuple[float, float]] = {}
        self._names: dict[str, set[int]] = {}
        # next() on itertools.count is atomic, so ids stay unique even when a test
        # thread adds records while the server's thread does too.
        self._ids = itertools.count(first_id)
        self._suffix = timestamp_suffix

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, record_id: int) -> dict[str, Any] | None:
        """The stored record, or ``None``."""
        return self._rows.get(record_id)

    def ids(self) -> list[int]:
        """Every Id, ascending."""
        return list(self._rows)

    def ids_named(self, name: str) -> set[int]:
        """The Ids of records whose Name is exactly ``name``."""
        return set(self._names.get(name, ()))

    def times(self, record_id: int) -> tuple[float, float]:
        """(created, updated) of a stored record, as POSIX timestamps."""
        return self._times[record_id]

    def add(self, record: RecordInput, *, updated_by: str) -> dict[str, Any]:
        """Store a new record and return it."""
        record_id = next(self._ids)
        moment = _now()
        stamp = format_timestamp(moment, self._suffix)
        row: dict[str, Any] = {
            "Id": record_id,
            "UniqueId": str(uuid.uuid4()),
            "BusinessId": record.business_id,
            "Name": record.name,
            "Imported": bool(record.imported),
            "FileDataFileName": None,
            "NewFileDataUrl": record.new_file_data_url,
            "ClearFileDataFile": bool(record.clear_file_data_file),
            "CreatedOn": stamp,
            "UpdatedOn": stamp,
            "UpdatedBy": updated_by,
            "IsNew": True,
            "SystemId": record.system_id,
        }
        self._apply_file(row, record)
        self._rows[record_id] = row
        self._times[record_id] = (moment.timestamp(), moment.timestamp())
        self._names.setdefault(record.name, set()).add(record_id)

        return row

    def replace(
        self, record_id: int, record: RecordInput, *, updated_by: str
    ) -> dict[str, Any] | None:
        """Replace every writable field of a record (a PUT); ``None`` if it is missing."""
        row = self._rows.get(record_id)
        if row is None:
            return None

        self._unindex(record_id, row["Name"])
        row.update(
            BusinessId=record.business_id,
            Name=record.name,
            Imported=bool(record.imported),
            NewFileDataUrl=record.new_file_data_url,
            ClearFileDataFile=bool(record.clear_file_data_file),
            IsNew=False,
            SystemId=record.system_id,
        )
        self._apply_file(row, record)
        self._names.setdefault(record.name, set()).add(record_id)
        self.touch(record_id, updated_by=updated_by)

        return row

    def touch(self, record_id: int, *, updated_by: str, **fields: Any) -> None:
        """Set ``fields`` on a stored record and stamp it as updated now."""
        row = self._rows[record_id]
        moment = _now()
        row.update(
            fields,
            UpdatedOn=format_timestamp(moment, self._suffix),
            UpdatedBy=updated_by,
        )
        self._times[record_id] = (self._times[record_id][0], moment.timestamp())

    def remove(self, record_id: int) -> bool:
        """Delete a record; whether it existed."""
        row = self._rows.pop(record_id, None)
        if row is None:
            return False
        del self._times[record_id]
        self._unindex(record_id, row["Name"])
        return True

    def view(self) -> RecordsView:
        """A read-only, live view of the records."""
        return RecordsView(self._rows)

    def _unindex(self, record_id: int, name: str) -> None:
        named = self._names.get(name)
        if named is not None:
            named.discard(record_id)
            if not named:
                del self._names[name]

    @staticmethod
    def _apply_file(row: dict[str, Any], record: RecordInput) -> None:
        if record.clear_file_data_file:
            row["FileDataFileName"] = None
        if record.new_file_data_url is not None:
            row["FileDataFileName"] = _file_name(record.new_file_data_url)


class RecordsView(Mapping[int, Mapping[str, Any]]):
    """Read-only, live mapping of Id to record (wire field names).

    Iteration walks a copy of the Ids taken when it starts, so records added meanwhile,
    even from the server's own thread, cannot break it.
    """

    __slots__ = ("_rows",)

    def __init__(self, rows: dict[int, dict[str, Any]]) -> None:
        self._rows = rows

    def __getitem__(self, record_id: int) -> Mapping[str, Any]:
        return MappingProxyType(self._rows[record_id])

    def __iter__(self) -> Iterator[int]:
        return iter(list(self._rows))

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._rows

    def __repr__(self) -> str:
        return f"<RecordsView of {len(self._rows)} records>"
