"""Tests of the record store and its read-only view."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone

import pytest

from nexudus_async.emulator._store import Store, format_timestamp
from nexudus_async.emulator._validation import ENTITY_FIELDS, RecordInput

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class TestFormatTimestamp:
    def test_utc_with_z(self) -> None:
        """Times are UTC ISO 8601 with milliseconds and Z."""
        moment = datetime(2025, 1, 15, 10, 30, 0, 123456, tzinfo=timezone.utc)
        assert format_timestamp(moment, "Z") == "2025-01-15T10:30:00.123Z"

    def test_without_zone(self) -> None:
        """An empty suffix gives a time without a zone."""
        moment = datetime(2025, 1, 15, 10, 30, tzinfo=timezone.utc)
        assert format_timestamp(moment, "") == "2025-01-15T10:30:00.000"


class TestStore:
    def test_add_fills_every_field(self) -> None:
        """A new record has every entity field, in the documented order."""
        store = Store()
        row = store.add(RecordInput(1, "a"), updated_by="admin@example.com")
        assert list(row) == list(ENTITY_FIELDS)
        assert row["Id"] == 1
        assert str(uuid.UUID(row["UniqueId"])) == row["UniqueId"]
        assert row["Imported"] is False
        assert row["ClearFileDataFile"] is False
        assert row["FileDataFileName"] is None
        assert row["IsNew"] is True
        assert row["SystemId"] is None
        assert row["UpdatedBy"] == "admin@example.com"
        assert STAMP.match(row["CreatedOn"])
        assert row["CreatedOn"] == row["UpdatedOn"]

    def test_ids_grow_from_first_id(self) -> None:
        """Ids start at first_id and increase by one."""
        store = Store(first_id=87654321)
        ids = [
            store.add(RecordInput(1, f"n{i}"), updated_by="u").get("Id")
            for i in range(3)
        ]
        assert ids == [87654321, 87654322, 87654323]

    def test_file_name_comes_from_the_url(self) -> None:
        """A new file URL sets FileDataFileName to the URL's last path segment."""
        store = Store()
        row = store.add(
            RecordInput(1, "a", "https://h.example.com/dir/my%20file.csv?x=1"),
            updated_by="u",
        )
        assert row["FileDataFileName"] == "my file.csv"
        assert row["NewFileDataUrl"] == "https://h.example.com/dir/my%20file.csv?x=1"

    def test_replace_is_a_full_replace(self) -> None:
        """Fields left out of an update are reset; the file name stays."""
        store = Store()
        first = RecordInput(1, "a", "https://h/x.csv", imported=True, system_id="s")
        record_id = store.add(first, updated_by="u")["Id"]
        row = store.replace(record_id, RecordInput(2, "b"), updated_by="v")
        assert row is not None
        assert (row["BusinessId"], row["Name"], row["Imported"], row["SystemId"]) == (
            2,
            "b",
            False,
            None,
        )
        assert row["FileDataFileName"] == "x.csv"
        assert row["IsNew"] is False
        assert row["UpdatedBy"] == "v"

    def test_clear_removes_the_file(self) -> None:
        """ClearFileDataFile true removes the current file name."""
        store = Store()
        record_id = store.add(RecordInput(1, "a", "https://h/x.csv"), updated_by="u")[
            "Id"
        ]
        row = store.replace(
            record_id, RecordInput(1, "a", clear_file_data_file=True), updated_by="u"
        )
        assert row is not None
        assert row["FileDataFileName"] is None

    def test_replace_missing_gives_none(self) -> None:
        """Replacing an Id that does not exist stores nothing."""
        assert Store().replace(5, RecordInput(1, "a"), updated_by="u") is None

    def test_name_index_follows_changes(self) -> None:
        """The exact-name index tracks adds, renames and deletes."""
        store = Store()
        one = store.add(RecordInput(1, "a"), updated_by="u")["Id"]
        two = store.add(RecordInput(1, "a"), updated_by="u")["Id"]
        assert store.ids_named("a") == {one, two}
        store.replace(one, RecordInput(1, "b"), updated_by="u")
        assert store.ids_named("a") == {two}
        assert store.ids_named("b") == {one}
        store.remove(two)
        assert store.ids_named("a") == set()

    def test_remove(self) -> None:
        """Removing says whether the record existed."""
        store = Store()
        record_id = store.add(RecordInput(1, "a"), updated_by="u")["Id"]
        assert store.remove(record_id)
        assert not store.remove(record_id)
        assert store.get(record_id) is None
        assert len(store) == 0

    def test_touch_stamps_the_update(self) -> None:
        """touch sets fields, UpdatedBy and a later UpdatedOn time."""
        store = Store()
        record_id = store.add(RecordInput(1, "a"), updated_by="u")["Id"]
        created, _ = store.times(record_id)
        store.touch(record_id, updated_by="w", Imported=True)
        row = store.get(record_id)
        assert row is not None
        assert (row["Imported"], row["UpdatedBy"]) == (True, "w")
        assert store.times(record_id)[1] >= created


class TestRecordsView:
    def test_is_live_and_read_only(self) -> None:
        """The view shows new records and refuses changes."""
        store = Store()
        view = store.view()
        record_id = store.add(RecordInput(1, "a"), updated_by="u")["Id"]
        assert record_id in view
        assert len(view) == 1
        assert view[record_id]["Name"] == "a"
        with pytest.raises(TypeError):
            view[record_id]["Name"] = "b"  # type: ignore[index]
        with pytest.raises(TypeError):
            view[2] = {}  # type: ignore[index]
        assert "1 records" in repr(view)

    def test_iteration_survives_additions(self) -> None:
        """Adding records while iterating does not break the iteration."""
        store = Store()
        for i in range(3):
            store.add(RecordInput(1, f"n{i}"), updated_by="u")
        seen = []
        for record_id in store.view():
            seen.append(record_id)
            store.add(RecordInput(1, "more"), updated_by="u")
        assert seen == [1, 2, 3]
        assert len(store.view()) == 6
