"""Claims: one record of a (BusinessId, Name) pair settles at a time; owned Ids."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from nexudus_async._claims import Claims


class TestTurns:
    async def test_records_of_one_pair_go_one_at_a_time_in_order(self) -> None:
        """A second and third record of a pair wait, then go in the order they came."""
        claims = Claims(None)
        order: list[str] = []

        async def settle(name: str) -> None:
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
        for id in range(1, 1001):
            claims.claim(id)
        assert all(claims.owned_by_other(id, "k") for id in (1, 255, 256, 999, 1000))
        assert not claims.owned_by_other(1001, "k")
        claims.close()

    def test_claims_after_close_are_ignored(self) -> None:
        """Once the job has ended, a late claim neither fails nor reopens storage."""
        claims = Claims(None)
        claims.close()
        claims.claim(1)
        assert claims._db is None

    @pytest.mark.parametrize("owner", ["k1", None])
    def test_journal_answers_for_earlier_runs(self, owner: str | None) -> None:
        """With a journal, an Id an earlier run created for another key is owned."""

        class FakeJournal:
            def owner_of(self, id: int) -> str | None:
                return owner

        claims = Claims(FakeJournal())  # type: ignore[arg-type]
        assert claims.owned_by_other(5, "k2") is (owner is not None)
        assert not claims.owned_by_other(5, "k1")
