"""Claims: one record of a (BusinessId, Name) pair settles at a time; owned Ids."""

from __future__ import annotations

import sys

import anyio
import anyio.lowlevel
import pytest

from nexudus_async import _claims
from nexudus_async._claims import Claims


class TestTurns:
    async def test_records_of_one_pair_go_one_at_a_time_in_order(self) -> None:
        """A second and third record of a pair wait, then go in the order they came."""
        claims = Claims(None)
        order: list[str] = []

        async def settle(name: str) -> None:
            # As the settler asks: the free turn at once, else wait for it.
            if not claims.try_turn((1, "Twin")):
                await claims.take_turn((1, "Twin"))
            order.append(f"{name} in")
            await anyio.sleep(0.01)
            order.append(f"{name} out")
            claims.end_turn((1, "Twin"))

        async with anyio.create_task_group() as tg:
            for name in ("a", "b", "c"):
                tg.start_soon(settle, name)
                await anyio.lowlevel.checkpoint()

        assert order == ["a in", "a out", "b in", "b out", "c in", "c out"]
        assert claims._turns == {}

    def test_try_turn_takes_only_a_free_turn(self) -> None:
        """The turn is taken when free, refused while held, free again once ended."""
        claims = Claims(None)
        assert claims.try_turn((1, "a")) is True
        assert claims.try_turn((1, "a")) is False
        assert claims.try_turn((2, "a")) is True
        claims.end_turn((1, "a"))
        assert claims.try_turn((1, "a")) is True

    async def test_other_pairs_do_not_wait(self) -> None:
        """A record of another pair takes its turn while the first is held."""
        claims = Claims(None)
        await claims.take_turn((1, "a"))
        with anyio.fail_after(1):
            await claims.take_turn((1, "b"))
            await claims.take_turn((2, "a"))

    async def test_cancelled_waiter_leaves_the_queue(self) -> None:
        """A record cancelled while waiting is never handed the turn."""
        claims = Claims(None)
        await claims.take_turn((1, "x"))
        with anyio.move_on_after(0.02):
            await claims.take_turn((1, "x"))
        claims.end_turn((1, "x"))
        assert claims._turns == {}
        with anyio.fail_after(1):
            await claims.take_turn((1, "x"))


class TestOwnedIds:
    def test_a_claimed_id_is_owned_by_another_record(self) -> None:
        """An Id claimed in this job is not free for another record's lookup."""
        claims = Claims(None)
        assert not claims.owned_by_other(7, "k1")
        claims.claim(7)
        assert claims.owned_by_other(7, "k2")
        assert not claims.owned_by_other(2**70, "k2")
        claims.close()

    def test_claims_past_a_batch_are_still_owned(self) -> None:
        """Claims written to disk in batches stay owned, before and after a flush."""
        claims = Claims(None)
        for id in range(1, 3001):
            claims.claim(id)
        owned = (1, 255, 256, 1023, 1024, 1025, 2047, 2048, 2999, 3000)
        assert all(claims.owned_by_other(id, "k") for id in owned)
        assert not claims.owned_by_other(3001, "k")
        assert not claims.owned_by_other(0, "k")
        claims.close()

    def test_an_id_is_found_only_where_a_stored_id_starts(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The file is searched Id by Id, not as loose bytes.

        Two neighbouring Ids whose bytes, read across their boundary, spell a
        third Id do not make that third one owned; Ids in the last, short block
        of a search, and across block boundaries, are found.
        """
        monkeypatch.setattr(_claims, "_BATCH", 2)
        monkeypatch.setattr(_claims, "_SCAN_BYTES", 24)
        claims = Claims(None)
        first, second = 0x1100000000000000, 0x22
        # A batch of two is written in either order.
        claims.claim(first)
        claims.claim(second)
        ids = [first, second, *range(7, 16)]
        for id in ids[2:]:
            claims.claim(id)

        def straddle(left: int, right: int) -> int:
            both = left.to_bytes(8, sys.byteorder) + right.to_bytes(8, sys.byteorder)
            return int.from_bytes(both[4:12], sys.byteorder, signed=True)

        for fake in (straddle(first, second), straddle(second, first)):
            assert fake not in ids
            assert not claims.owned_by_other(fake, "k")
        assert all(claims.owned_by_other(id, "k") for id in ids)
        claims.close()

    def test_ids_past_64_bits_and_negative_ones_are_owned_too(self) -> None:
        """No Id is lost for not fitting the file's 8 bytes, whichever batch holds it."""
        claims = Claims(None)
        odd = [2**63, 2**70, -(2**63), -1]
        for id in odd:
            claims.claim(id)
        for id in range(1, 2000):
            claims.claim(id)
        assert all(claims.owned_by_other(id, "k") for id in odd)
        assert not claims.owned_by_other(2**63 + 1, "k")
        assert not claims.owned_by_other(-2, "k")
        claims.close()

    def test_claims_after_close_are_ignored(self) -> None:
        """Once the job has ended, a late claim neither fails nor reopens storage."""
        claims = Claims(None)
        claims.close()
        claims.claim(1)
        assert claims._file is None

    @pytest.mark.parametrize("owner", ["k1", None])
    def test_journal_answers_for_earlier_runs(self, owner: str | None) -> None:
        """With a journal, an Id an earlier run created for another key is owned."""

        class FakeJournal:
            def owner_of(self, id: int) -> str | None:
                return owner

        claims = Claims(FakeJournal())  # type: ignore[arg-type]
        assert claims.owned_by_other(5, "k2") is (owner is not None)
        assert not claims.owned_by_other(5, "k1")
