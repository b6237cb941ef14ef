"""Which stored records the records of one bulk job own, so no Id is taken twice.

A create whose answer was lost is settled by looking up its BusinessId and Name.
Two input records may share that pair (identical rows are distinct records), so a
match may be a sibling's record rather than the lost one. `Claims` answers "does
another record already own this Id?" and keeps records of one pair from looking
up while a sibling's create is still in flight.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from typing import TYPE_CHECKING, Final

import anyio

if TYPE_CHECKING:
    from ._journal import Journal

__all__ = ["Claims"]

_Pair = tuple[int, str]

#: Claims kept in memory before they are written to the database together.
_BATCH: Final = 256


class _Turn:
    """The records of one pair waiting for the one that holds the turn."""

    __slots__ = ("waiting",)

    def __init__(self) -> None:
        self.waiting: deque[anyio.Event] = deque()


class Claims:
    """The Ids owned by the records of one job, and the turns of records by pair.

    Owned Ids live in a private temporary SQLite database on disk, not in memory,
    so memory stays flat however long the input; it opens at the first claim and
    `close` drops it. A journal adds what earlier runs created. Turns exist only
    while a record of their pair is being settled, so there are at most as many as
    workers.

    Args:
        journal: The job's journal, asked about Ids created by earlier runs.
    """

    def __init__(self, journal: Journal | None) -> None:
        self._journal = journal
        self._db: sqlite3.Connection | None = None
        self._closed = False
        self._turns: dict[_Pair, _Turn] = {}
        self._recent: set[int] = set()

    # --- turns -------------------------------------------------------------------

    async def take_turn(self, pair: _Pair) -> None:
        """Wait until no other record with this BusinessId and Name is settling.

        Records of one pair are settled one at a time. A lookup that ran while a
        sibling's create was in flight could find the sibling's record before
        the sibling has its answer and claims it: both would own one Id, and one
        record would be lost. Only records that share a pair wait; in most inputs
        there are none.
        """
        turn = self._turns.get(pair)
        if turn is None:
            # The common case costs one dict entry: no lock, no event, no await.
            self._turns[pair] = _Turn()
            return

        handed_over = anyio.Event()
        turn.waiting.append(handed_over)
        try:
            await handed_over.wait()
        except BaseException:
            # Cancelled while waiting. If the turn was handed over in the meantime,
            # it is this record's and must go on to the next one; otherwise leave
            # the queue, so that nobody hands it a turn it will never end.
            if handed_over.is_set():
                self.end_turn(pair)
            else:
                turn.waiting.remove(handed_over)
            raise

    def end_turn(self, pair: _Pair) -> None:
        """Let the next record with this pair go on, in the order they came."""
        turn = self._turns[pair]
        if turn.waiting:
            turn.waiting.popleft().set()
        else:
            del self._turns[pair]

    # --- owned Ids ---------------------------------------------------------------

    def claim(self, id: int) -> None:
        """Record that a record of this job owns the stored record with this Id.

        Every Id is kept, not only those of pairs seen twice: whether a pair
        repeats is known only when its second record comes, and by then the
        first one's Id is needed. A journal would hold this job's Ids too, but
        only once the outcome is accounted for, after the turn has ended.
        """
        if self._closed:
            # The job has ended: no lookup of it can ask any more.
            return
        # Claims come with every created record and lookups rarely: gather them in
        # a small set and write them in batches, so that the common path costs a
        # set insertion rather than a statement.
        self._recent.add(id)
        if len(self._recent) >= _BATCH:
            self._flush()

    def owned_by_other(self, id: int, key: str | None) -> bool:
        """Whether a record other than the one with ``key`` owns this Id."""
        if id in self._recent:
            return True
        if self._db is not None:
            row = self._db.execute("SELECT 1 FROM owned WHERE id = ?", (str(id),))
            if row.fetchone() is not None:
                return True
        if self._journal is None:
            return False
        owner = self._journal.owner_of(id)

        return owner is not None and owner != key

    def _flush(self) -> None:
        db = self._db or self._open()
        db.executemany(
            "INSERT OR IGNORE INTO owned VALUES (?)", [(str(i),) for i in self._recent]
        )
        self._recent.clear()

    def _open(self) -> sqlite3.Connection:
        if self._closed:
            raise sqlite3.ProgrammingError("the claims are closed")
        # As for record keys: an empty name makes a private database that SQLite
        # keeps in a bounded page cache and spills to a file it deletes on close.
        db = sqlite3.connect("", check_same_thread=False)
        db.executescript(
            "PRAGMA journal_mode = OFF;"
            "PRAGMA synchronous = OFF;"
            "PRAGMA cache_size = -1024;"
            "CREATE TABLE owned (id TEXT PRIMARY KEY) WITHOUT ROWID;"
        )
        self._db = db

        return db

    def close(self) -> None:
        """Drop the owned Ids; closing again does nothing."""
        self._closed = True
        self._recent.clear()
        db, self._db = self._db, None
        if db is not None:
            db.close()
