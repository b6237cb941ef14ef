"""A SQLite file recording what happened to each input record, so a re-run resumes.

Each record, by its `SourceRecord.key`, moves from no entry to ``sending`` just
before its create is sent, then to ``created``, ``rejected``, ``failed`` or
``unknown``; a rejected one keeps its field errors, so a re-run that skips it can
still say which fields were refused. A re-run skips what is done and reconciles what
`Journal.pending` lists: records that were in flight when a run died, or whose
create got no answer. A sending mark whose create surely never left (the client
still held it when the job stopped) can be taken back with
`Journal.unmark_sending`: the entry is then as it was before the mark, and a re-run
sends the record at once.

The durability rule: `Journal.mark_sending` commits before it returns, so once the
create is sent the journal says so, whatever happens to the process next. Send a
create only after ``mark_sending`` returned. With the default ``synchronous="full"``
the commit also waits for the disk, so the mark survives a power cut too;
``"normal"`` skips that wait and still survives the process being killed, which is
all a crash of the program itself can do.

Done marks (`Journal.mark_done`) and taken-back marks (`Journal.unmark_sending`)
are cheaper: they are committed with the next sending mark, by `Journal.commit`, on
close, and by the done mark that finds `DONE_BATCH` marks waiting or the oldest
waiting `DONE_SECONDS` old. One lost in a crash leaves its record ``sending``,
which the next run reconciles like any other record in flight: the loss costs a
lookup, never a duplicate.

One process at a time: the journal holds an exclusive lock on its file while open,
so a second run on the same journal fails within a second with `JournalError`
instead of sending the same records twice. Within a process the methods are thread-safe.

All calls are synchronous and short. ``state`` and most ``mark_done`` calls take
microseconds and may be made from the event loop; ``mark_sending`` (and the done
mark that closes a batch) waits for a disk sync with the default setting, about
0.25 ms on a local SSD and more on slow disks, so an async caller may prefer
``await anyio.to_thread.run_sync(journal.mark_sending, ...)``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, Final, Literal

import attrs

from . import _json
from ._closing import ClosesOnExit
from ._errors import JournalError
from ._models import FieldError

__all__ = ["DONE_BATCH", "DONE_SECONDS", "JOURNAL_STATES", "Journal", "JournalEntry"]

_LOG = logging.getLogger(__name__)

#: Every state a journal entry can be in.
JOURNAL_STATES: Final = ("sending", "created", "rejected", "failed", "unknown")
_DONE_STATES: Final = frozenset(JOURNAL_STATES) - {"sending"}

# The files the Journals of this process hold open, by real path: a second open
# of one of them is a mistake in the caller's own program, not another run, and
# the error should say which.
_OPEN_HERE: Final[set[str]] = set()
_OPEN_HERE_LOCK: Final = threading.Lock()

#: Done marks waiting for a commit: at most this many, for at most this long.
DONE_BATCH: Final = 256
DONE_SECONDS: Final = 1.0

_SCHEMA_VERSION: Final = "2"
#: Older schemas this version upgrades in place, each to the next, when opened.
_MIGRATIONS: Final = {
    # 2 keeps a rejected record's field errors.
    "1": "ALTER TABLE records ADD COLUMN errors TEXT",
}
_PAGE: Final = 500

# Ids are stored as text: SQLite integers stop at 64 bits and ids must stay exact.
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
    " WITHOUT ROWID",
    """CREATE TABLE IF NOT EXISTS records (
        key TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        id TEXT,
        attempts INTEGER NOT NULL,
        updated_at REAL NOT NULL,
        business_id TEXT,
        name TEXT,
        message TEXT,
        errors TEXT
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS records_in_flight ON records (key)"
    " WHERE state IN ('sending', 'unknown')",
    # For `Journal.owner_of`. Added without a schema change: an older journal gets
    # it when next opened, and an older version simply never uses it.
    "CREATE INDEX IF NOT EXISTS records_by_id ON records (id) WHERE id IS NOT NULL",
)

_COLUMNS: Final = (
    "key, state, id, attempts, updated_at, business_id, name, message, errors"
)

_MARK_SENDING: Final = """
INSERT INTO records (key, state, id, attempts, updated_at, business_id, name)
VALUES (?, 'sending', NULL, 1, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    state = 'sending',
    attempts = attempts + 1,
    updated_at = excluded.updated_at,
    business_id = excluded.business_id,
    name = excluded.name,
    message = NULL,
    errors = NULL
WHERE state != 'created'
"""

# Taking back a sending mark: only the mark written over the entry the caller
# read, and only while it is still that mark (no later mark or done mark since).
_UNMARK_NEW: Final = (
    "DELETE FROM records WHERE key = ? AND state = 'sending' AND attempts = 1"
)
_UNMARK_FAILED: Final = """
UPDATE records SET
    state = 'failed',
    id = ?,
    attempts = ?,
    updated_at = ?,
    business_id = ?,
    name = ?,
    message = ?,
    errors = ?
WHERE key = ? AND state = 'sending' AND attempts = ?
"""

_MARK_DONE: Final = """
INSERT INTO records (key, state, id, attempts, updated_at, message, errors)
VALUES (?, ?, ?, 0, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    state = excluded.state,
    id = excluded.id,
    updated_at = excluded.updated_at,
    message = excluded.message,
    errors = excluded.errors
"""


@attrs.frozen
class JournalEntry:
    """What the journal knows about one record.

    Attributes:
        key: The record key (`SourceRecord.key`).
        state: One of `JOURNAL_STATES`.
        id: The created record's id, when known.
        attempts: How many times a create was marked as sending.
        updated_at: When the state last changed (aware, UTC).
        business_id: The record's BusinessId, as given when sending (for lookups).
        name: The record's Name, as given when sending (for lookups).
        message: What went wrong, for states other than created.
        errors: The field errors of a rejected record, as `mark_done` was given them.
    """

    key: str
    state: str
    id: int | None
    attempts: int
    updated_at: datetime
    business_id: int | None
    name: str | None
    message: str | None = None
    errors: tuple[FieldError, ...] = ()


def _entry(row: tuple[Any, ...]) -> JournalEntry:
    key, state, id_, attempts, updated_at, business_id, name, message, errors = row
    return JournalEntry(
        key=key,
        state=state,
        id=None if id_ is None else int(id_),
        attempts=attempts,
        updated_at=datetime.fromtimestamp(updated_at, timezone.utc),
        business_id=None if business_id is None else int(business_id),
        name=name,
        message=message,
        errors=() if errors is None else _decode_errors(key, errors),
    )


def _encode_errors(errors: Sequence[FieldError]) -> str:
    """Field errors as JSON text, in the wire's shape."""
    rows = [
        {
            "PropertyName": error.property_name,
            "Message": error.message,
            "AttemptedValue": error.attempted_value,
        }
        for error in errors
    ]
    try:
        return _json.dumps_escaping(rows).decode("utf-8")
    except (TypeError, ValueError):
        # A value JSON cannot carry (a NaN, an object handed to the SDK as is) can
        # only come from local validation. Failing the write would halt the job, so
        # such a value is kept as its description instead.
        for row in rows:
            row["AttemptedValue"] = _storable(row["AttemptedValue"])
        return _json.dumps_escaping(rows).decode("utf-8")


def _storable(value: Any) -> Any:
    try:
        _json.dumps_escaping(value)
    except (TypeError, ValueError):
        try:
            return repr(value)
        except Exception:
            return f"<{type(value).__name__}>"
    return value


def _decode_errors(key: str, text: str) -> tuple[FieldError, ...]:
    try:
        rows = _json.loads(text)
        return tuple(
            FieldError(row["PropertyName"], row["Message"], row["AttemptedValue"])
            for row in rows
        )
    except (_json.JSONDecodeError, TypeError, KeyError) as exc:
        raise JournalError(
            f"the journal's entry for record {key} has unreadable errors: {exc}"
        ) from exc


class Journal(ClosesOnExit):
    """The per-record state of an import, in a SQLite file; see the module docs.

    Args:
        path: The journal file; created when missing.
        synchronous: ``"full"`` (default) waits for the disk on each sending mark;
            ``"normal"`` does not, and survives a killed process but not a power cut.

    Raises:
        JournalError: The file is not a journal, has a newer schema, or is open in
            another process.

    Attributes:
        path: The journal file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Literal["full", "normal"] = "full",
    ) -> None:
        if synchronous not in ("full", "normal"):
            raise ValueError(
                f"synchronous must be 'full' or 'normal', not {synchronous!r}"
            )
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._uncommitted = 0
        self._first_uncommitted = 0.0
        self._db: sqlite3.Connection | None = None
        self._real_path = os.path.realpath(self.path)
        try:
            # Autocommit at the driver level: transactions are begun and ended here,
            # so when a mark is durable is decided by this class alone.
            self._db = sqlite3.connect(
                self.path, timeout=1.0, isolation_level=None, check_same_thread=False
            )
            self._open(synchronous)
        except sqlite3.OperationalError as exc:
            self._abandon()
            if "locked" in str(exc):
                with _OPEN_HERE_LOCK:
                    here = self._real_path in _OPEN_HERE
                if here:
                    raise JournalError(
                        f"journal {self.path} is already open in this process:"
                        " close that Journal first, or pass the same one"
                    ) from None
                raise JournalError(
                    f"journal {self.path} is in use by another run"
                ) from None
            raise JournalError(f"cannot open journal {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            self._abandon()
            raise JournalError(
                f"{self.path} is not a journal (not a SQLite database): {exc}"
            ) from exc
        except BaseException:
            self._abandon()
            raise
        with _OPEN_HERE_LOCK:
            _OPEN_HERE.add(self._real_path)

    def _open(self, synchronous: str) -> None:
        db = self._connection()
        # Exclusive locking keeps other processes out for as long as this one has
        # the file open; set before WAL, it also needs no shared-memory file.
        db.execute("PRAGMA locking_mode = EXCLUSIVE")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        db.execute("BEGIN IMMEDIATE")
        for statement in _SCHEMA:
            db.execute(statement)
        row = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        if row is None:
            db.execute(
                "INSERT INTO meta VALUES ('schema', ?), ('created_at', ?)",
                (_SCHEMA_VERSION, datetime.now(timezone.utc).isoformat()),
            )
        elif row[0] != _SCHEMA_VERSION:
            self._migrate(db, row[0])
        db.execute("COMMIT")

    def _migrate(self, db: sqlite3.Connection, schema: str) -> None:
        """Upgrade an older schema inside the open transaction, or refuse the file."""
        while schema != _SCHEMA_VERSION:
            statement = _MIGRATIONS.get(schema)
            if statement is None:
                db.execute("ROLLBACK")
                raise JournalError(
                    f"journal {self.path} has schema {schema}, this version reads"
                    f" schema {_SCHEMA_VERSION}"
                )
            db.execute(statement)
            schema = str(int(schema) + 1)
        db.execute("UPDATE meta SET value = ? WHERE name = 'schema'", (schema,))
        _LOG.info("journal %s upgraded to schema %s", self.path, schema)

    def _abandon(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise JournalError(f"journal {self.path} is closed")
        return self._db

    # -- reading ------------------------------------------------------------------

    def state(self, key: str) -> JournalEntry | None:
        """The entry of one record, or None when the journal has never seen it."""
        with self._lock:
            row = (
                self._connection()
                .execute(f"SELECT {_COLUMNS} FROM records WHERE key = ?", (key,))
                .fetchone()
            )
        return None if row is None else _entry(row)

    def owner_of(self, id: int) -> str | None:
        """The key of the record the journal holds as having this Id, or None."""
        with self._lock:
            row = (
                self._connection()
                .execute("SELECT key FROM records WHERE id = ? LIMIT 1", (_text(id),))
                .fetchone()
            )
        return None if row is None else str(row[0])

    def pending(self) -> Iterator[JournalEntry]:
        """Entries in ``sending`` or ``unknown``: creates that may have happened.

        Read a page at a time, in key order, so the caller may mark entries done
        while iterating.
        """
        after = ""
        while True:
            with self._lock:
                rows = (
                    self._connection()
                    .execute(
                        f"SELECT {_COLUMNS} FROM records"
                        " WHERE state IN ('sending', 'unknown') AND key > ?"
                        " ORDER BY key LIMIT ?",
                        (after, _PAGE),
                    )
                    .fetchall()
                )
            yield from (_entry(row) for row in rows)
            if len(rows) < _PAGE:
                return
            after = rows[-1][0]

    def counts(self) -> dict[str, int]:
        """How many entries are in each state (every state present, zero or not)."""
        totals = dict.fromkeys(JOURNAL_STATES, 0)
        with self._lock:
            rows = (
                self._connection()
                .execute("SELECT state, COUNT(*) FROM records GROUP BY state")
                .fetchall()
            )
        totals.update(rows)

        return totals

    @property
    def meta(self) -> dict[str, str]:
        """Everything stored with `set_meta`, plus ``schema`` and ``created_at``."""
        with self._lock:
            rows = self._connection().execute("SELECT name, value FROM meta").fetchall()
        return dict(rows)

    # -- writing ------------------------------------------------------------------

    def mark_sending(self, key: str, business_id: int | None, name: str | None) -> None:
        """Record that a create is about to be sent; durable when this returns.

        Args:
            key: The record key.
            business_id: The record's BusinessId, kept to find the record later.
            name: The record's Name, kept to find the record later.

        Raises:
            JournalError: The record is already created: sending it again would
                make a duplicate.
        """
        with self._lock:
            db = self._connection()
            self._begin(db)
            cursor = db.execute(
                _MARK_SENDING,
                (key, time.time(), _text(business_id), name),
            )
            refused = cursor.rowcount == 0
            self._commit(db)
        if refused:
            raise JournalError(f"record {key} is already created; not sending it again")

    def mark_done(
        self,
        key: str,
        outcome: Literal["created", "rejected", "failed", "unknown"],
        id: int | None = None,
        message: str | None = None,
        errors: Sequence[FieldError] = (),
    ) -> None:
        """Record how a record's create ended. Committed in batches; see the module docs.

        Args:
            key: The record key.
            outcome: ``created``, ``rejected``, ``failed`` or ``unknown``.
            id: The created record's id.
            message: What went wrong, for outcomes other than created.
            errors: The field errors of a rejected record, for `JournalEntry.errors`.
                A value JSON cannot carry is stored as its ``repr``.

        Raises:
            ValueError: The outcome is not one of the four.
        """
        if outcome not in _DONE_STATES:
            raise ValueError(
                f"outcome must be one of {sorted(_DONE_STATES)}, not {outcome!r}"
            )
        # Encoded outside the lock, and only when there is something to encode: most
        # marks are "created" and carry none.
        stored_errors = _encode_errors(errors) if errors else None
        with self._lock:
            db = self._connection()
            self._begin(db)
            db.execute(
                _MARK_DONE,
                (key, outcome, _text(id), time.time(), message, stored_errors),
            )
            self._batched(db)

    def unmark_sending(self, key: str, before: JournalEntry | None) -> bool:
        """Take back the sending mark of a create that never left; see the module docs.

        The entry becomes ``before`` again: removed when there was none, or
        ``failed`` as it was. The next run then sends the record at once, without
        waiting to look it up. Call it only when nothing of the create can have
        reached the server, and only for the one mark written over ``before``:
        an entry marked again since, or marked done, is left as it is. Committed
        like a done mark; one lost in a crash leaves the entry ``sending``, which
        costs the next run a lookup, never a duplicate.

        Args:
            key: The record key.
            before: The entry `state` returned just before that mark: None, or a
                ``failed`` entry (one that stored nothing).

        Returns:
            Whether the mark was taken back; False when the entry no longer holds
            that mark.

        Raises:
            ValueError: ``before`` is another record's entry, or in a state that
                may have stored something.
        """
        values: tuple[Any, ...]
        if before is None:
            statement, values = _UNMARK_NEW, (key,)
        else:
            if before.key != key:
                raise ValueError(f"the entry given is {before.key}'s, not {key}'s")
            if before.state != "failed":
                raise ValueError(
                    "only a mark written over no entry or a failed one can be taken"
                    f" back, not over {before.state!r}"
                )
            values = (
                _text(before.id),
                before.attempts,
                before.updated_at.timestamp(),
                _text(before.business_id),
                before.name,
                before.message,
                _encode_errors(before.errors) if before.errors else None,
                key,
                before.attempts + 1,
            )
            statement = _UNMARK_FAILED
        with self._lock:
            db = self._connection()
            self._begin(db)
            taken_back = db.execute(statement, values).rowcount == 1
            self._batched(db)

        return taken_back

    def set_meta(self, name: str, value: str) -> None:
        """Store a named value with the journal (such as a fingerprint of the input)."""
        with self._lock:
            db = self._connection()
            self._begin(db)
            db.execute(
                "INSERT INTO meta VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )
            self._commit(db)

    def commit(self) -> None:
        """Make every mark so far durable now."""
        with self._lock:
            self._commit(self._connection())

    def close(self) -> None:
        """Commit what is pending and close the file. Closing twice is harmless."""
        with self._lock:
            if self._db is None:
                return
            self._commit(self._db)
            self._db.close()
            self._db = None
        with _OPEN_HERE_LOCK:
            _OPEN_HERE.discard(self._real_path)
        _LOG.debug("journal %s closed", self.path)

    def __repr__(self) -> str:
        state = "closed" if self._db is None else "open"
        return f"<Journal {self.path!r} {state}>"

    def _begin(self, db: sqlite3.Connection) -> None:
        if not db.in_transaction:
            db.execute("BEGIN IMMEDIATE")
            self._first_uncommitted = time.monotonic()

    def _batched(self, db: sqlite3.Connection) -> None:
        """Count a write that may wait for a commit; commit once the batch is due."""
        self._uncommitted += 1
        if (
            self._uncommitted >= DONE_BATCH
            or time.monotonic() - self._first_uncommitted >= DONE_SECONDS
        ):
            self._commit(db)

    def _commit(self, db: sqlite3.Connection) -> None:
        if db.in_transaction:
            db.execute("COMMIT")
        self._uncommitted = 0


def _text(number: int | None) -> str | None:
    return None if number is None else str(number)
