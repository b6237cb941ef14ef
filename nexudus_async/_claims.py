"""Which stored records the records of one bulk job own, so no Id is taken twice.

A create whose answer was lost is settled by looking up its BusinessId and Name.
Two input records may share that pair (identical rows are distinct records), so a
match may be a sibling's record rather than the lost one. `Claims` answers "does
another record already own this Id?" and keeps records of one pair from looking
up while a sibling's create is still in flight.
"""

from __future__ import annotations

import array
import os
import sys
import tempfile
from collections import deque
from typing import TYPE_CHECKING, BinaryIO, Final, cast

import anyio

if TYPE_CHECKING:
    from ._journal import Journal

__all__ = ["Claims"]

_Pair = tuple[int, str]

#: Claims kept in memory before they are appended to the file together.
_BATCH: Final = 1024
#: Each owned Id takes this many bytes of the file: a signed 64-bit integer.
_ID_BYTES: Final = 8
_FITS_64_BITS: Final = (-(2**63), 2**63 - 1)
#: Bytes read at a time when a lookup searches the file (a whole number of Ids).
_SCAN_BYTES: Final = _ID_BYTES * 65536


class Claims:
    """The Ids owned by the records of one job, and the turns of records by pair.

    Owned Ids are appended to a nameless temporary file, 8 bytes each, so memory
    stays flat however long the input; it opens at the first full batch and
    `close` drops it. Only a lookup after a lost answer asks whether an Id is
    owned, and that reads the file through: 8 MB for a million records, next to
    the network round trip of the lookup itself. A journal adds what earlier runs
    created. Turns exist only while a record of their pair is being settled, so
    there are at most as many as workers.

    Args:
        journal: The job's journal, asked about Ids created by earlier runs.
    """

    def __init__(self, journal: Journal | None) -> None:
        self._journal = journal
        self._file: BinaryIO | None = None
        self._wide: set[int] = set()
        self._closed = False
        # The pairs being settled, each with the records waiting for its turn; the
        # queue is made only when a second record of the pair comes.
        self._turns: dict[_Pair, deque[anyio.Event] | None] = {}
        self._recent: set[int] = set()

    # --- turns -------------------------------------------------------------------

    def try_turn(self, pair: _Pair) -> bool:
        """Take the turn of this pair if no other record holds it, without waiting.

        The common case, checked without creating a coroutine; when it returns
        False, `take_turn` waits for the turn.
        """
        if pair in self._turns:
            return False
        self._turns[pair] = None
        return True

    async def take_turn(self, pair: _Pair) -> None:
        """Wait until no other record with this BusinessId and Name is settling.

        Records of one pair are settled one at a time. A lookup that ran while a
        sibling's create was in flight could find the sibling's record before
        the sibling has its answer and claims it: both would own one Id, and one
        record would be lost. Only records that share a pair wait; in most inputs
        there are none.
        """
        if pair not in self._turns:
            # The common case costs one dict entry: no lock, no event, no await.
            self._turns[pair] = None
            return

        waiting = self._turns[pair]
        if waiting is None:
            waiting = self._turns[pair] = deque()
        handed_over = anyio.Event()
        waiting.append(handed_over)
        try:
            await handed_over.wait()
        except BaseException:
            # Cancelled while waiting. If the turn was handed over in the meantime,
            # it is this record's and must go on to the next one; otherwise leave
            # the queue, so that nobody hands it a turn it will never end.
            if handed_over.is_set():
                self.end_turn(pair)
            else:
                waiting.remove(handed_over)
            raise

    def end_turn(self, pair: _Pair) -> None:
        """Let the next record with this pair go on, in the order they came."""
        waiting = self._turns[pair]
        if waiting:
            waiting.popleft().set()
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
        # a small set and append them to the file in batches, so that the common
        # path costs a set insertion and a share of one write.
        self._recent.add(id)
        if len(self._recent) >= _BATCH:
            self._flush()

    def owned_by_other(self, id: int, key: str | None) -> bool:
        """Whether a record other than the one with ``key`` owns this Id."""
        if id in self._recent or id in self._wide:
            return True
        low, high = _FITS_64_BITS
        if self._file is not None and low <= id <= high and self._file_holds(id):
            return True
        if self._journal is None:
            return False
        owner = self._journal.owner_of(id)

        return owner is not None and owner != key

    def _flush(self) -> None:
        try:
            batch = array.array("q", self._recent)
        except OverflowError:
            # An Id past 64 bits: no API hands those out, but one that did would
            # still be owned, from memory.
            low, high = _FITS_64_BITS
            batch = array.array("q", (i for i in self._recent if low <= i <= high))
            self._wide.update(i for i in self._recent if not low <= i <= high)
        file = self._file or self._open()
        file.seek(0, os.SEEK_END)
        batch.tofile(file)
        self._recent.clear()

    def _file_holds(self, id: int) -> bool:
        """Search the file for ``id``; it is read through, a block at a time."""
        assert self._file is not None
        needle = id.to_bytes(_ID_BYTES, sys.byteorder, signed=True)
        self._file.seek(0)
        while block := self._file.read(_SCAN_BYTES):
            # Blocks start on an Id's boundary, so a hit counts only where one
            # starts; elsewhere it straddles two Ids.
            at = block.find(needle)
            while at != -1:
                if at % _ID_BYTES == 0:
                    return True
                at = block.find(needle, at + 1)

        return False

    def _open(self) -> BinaryIO:
        # On disk, not in memory, so that memory stays flat however long the
        # input; the file has no name and goes when it is closed.
        # `close` closes it; the job's claims live longer than any with-block.
        file = tempfile.TemporaryFile(prefix="nexudus-claims-")  # noqa: SIM115
        self._file = cast(BinaryIO, file)

        return self._file

    def close(self) -> None:
        """Drop the owned Ids; closing again does nothing."""
        self._closed = True
        self._recent.clear()
        self._wide.clear()
        file, self._file = self._file, None
        if file is not None:
            file.close()
