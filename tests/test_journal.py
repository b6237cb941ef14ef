"""Tests for the SQLite journal of per-record state."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import attrs
import pytest

from nexudus_async import _journal
from nexudus_async._errors import JournalError
from nexudus_async._journal import JOURNAL_STATES, Journal
from nexudus_async._models import FieldError

BIG_ID = 2**70


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    opened = Journal(tmp_path / "run.journal.sqlite")
    yield opened
    opened.close()


def _killed_after(path: Path, steps: str) -> None:
    """Run steps on a journal in a child process that then dies by SIGKILL."""
    script = textwrap.dedent(
        f"""
        import os, signal
        from nexudus_async._journal import Journal
        journal = Journal({str(path)!r})
        {steps}
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], timeout=30, check=False)
    assert done.returncode == -signal.SIGKILL


class TestStates:
    def test_unknown_key(self, journal: Journal) -> None:
        """A key the journal never saw has no entry."""
        assert journal.state("nope") is None

    def test_sending_then_created(self, journal: Journal) -> None:
        """An entry moves from sending to created and keeps its lookup fields."""
        before = datetime.now(timezone.utc)
        journal.mark_sending("k1", 12, "Spring leads")
        entry = journal.state("k1")
        assert entry is not None
        assert (entry.state, entry.attempts, entry.id) == ("sending", 1, None)
        assert (entry.business_id, entry.name) == (12, "Spring leads")
        assert entry.updated_at >= before.replace(microsecond=0)
        assert entry.updated_at.tzinfo is timezone.utc

        journal.mark_done("k1", "created", id=BIG_ID)
        entry = journal.state("k1")
        assert entry is not None
        assert (entry.state, entry.id, entry.attempts) == ("created", BIG_ID, 1)
        assert entry.name == "Spring leads"

    def test_resending_counts_attempts(self, journal: Journal) -> None:
        """Marking a record sending again counts another attempt and clears the message."""
        journal.mark_sending("k1", 12, "A")
        journal.mark_done("k1", "unknown", message="timed out")
        journal.mark_sending("k1", 12, "A")
        entry = journal.state("k1")
        assert entry is not None
        assert (entry.state, entry.attempts, entry.message) == ("sending", 2, None)

    def test_created_record_is_never_resent(self, journal: Journal) -> None:
        """Marking a created record sending again is refused, and it stays created."""
        journal.mark_sending("k1", 12, "A")
        journal.mark_done("k1", "created", id=5)
        with pytest.raises(JournalError, match="already created"):
            journal.mark_sending("k1", 12, "A")
        entry = journal.state("k1")
        assert entry is not None
        assert (entry.state, entry.id) == ("created", 5)

    def test_done_without_sending(self, journal: Journal) -> None:
        """A record can be marked done without a sending mark, as a new entry."""
        journal.mark_done("k1", "rejected", message="Name: is required")
        entry = journal.state("k1")
        assert entry is not None
        assert (entry.state, entry.attempts, entry.message) == (
            "rejected",
            0,
            "Name: is required",
        )

    @pytest.mark.parametrize("outcome", ["sending", "skipped", "not_attempted", "ok"])
    def test_bad_outcome(self, journal: Journal, outcome: str) -> None:
        """Only the four end states can be marked done."""
        with pytest.raises(ValueError, match="outcome"):
            journal.mark_done("k1", outcome)  # type: ignore[arg-type]


class TestDurability:
    def test_sending_mark_survives_kill(self, tmp_path: Path) -> None:
        """A sending mark that returned is in the file after the process is killed."""
        path = tmp_path / "run.journal.sqlite"
        _killed_after(path, "journal.mark_sending('k1', 12, 'A')")
        with Journal(path) as journal:
            entry = journal.state("k1")
            assert entry is not None
            assert entry.state == "sending"
            assert [e.key for e in journal.pending()] == ["k1"]

    def test_done_marks_survive_kill_with_next_sending(self, tmp_path: Path) -> None:
        """A done mark is made durable by the sending mark that follows it."""
        path = tmp_path / "run.journal.sqlite"
        _killed_after(
            path,
            "journal.mark_sending('k1', 12, 'A');"
            f" journal.mark_done('k1', 'created', id={BIG_ID});"
            " journal.mark_sending('k2', 12, 'B')",
        )
        with Journal(path) as journal:
            assert journal.counts()["created"] == 1
            assert [e.key for e in journal.pending()] == ["k2"]
            entry = journal.state("k1")
            assert entry is not None
            assert entry.id == BIG_ID

    def test_commit_makes_done_marks_durable(self, tmp_path: Path) -> None:
        """An explicit commit makes the done marks before it survive a kill."""
        path = tmp_path / "run.journal.sqlite"
        _killed_after(
            path,
            "journal.mark_sending('k1', 12, 'A');"
            " journal.mark_done('k1', 'failed', message='gave up');"
            " journal.commit()",
        )
        with Journal(path) as journal:
            entry = journal.state("k1")
            assert entry is not None
            assert (entry.state, entry.message) == ("failed", "gave up")

    def test_batched_done_mark_lost_in_kill_stays_in_flight(
        self, tmp_path: Path
    ) -> None:
        """A done mark not yet committed is lost to a kill, leaving the record pending."""
        path = tmp_path / "run.journal.sqlite"
        _killed_after(
            path,
            "journal.mark_sending('k1', 12, 'A');"
            " journal.mark_done('k1', 'created', id=3)",
        )
        with Journal(path) as journal:
            assert [e.state for e in journal.pending()] == ["sending"]

    def test_full_batch_is_committed(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Done marks are committed once a batch is full, without a sending mark."""
        monkeypatch.setattr(_journal, "DONE_BATCH", 3)
        path = tmp_path / "run.journal.sqlite"
        with Journal(path) as journal:
            for key in ("a", "b", "c"):
                journal.mark_done(key, "rejected")
            assert journal._connection().in_transaction is False
            journal.mark_done("d", "rejected")
            assert journal._connection().in_transaction is True

    def test_close_commits(self, tmp_path: Path) -> None:
        """Closing commits every pending done mark."""
        path = tmp_path / "run.journal.sqlite"
        with Journal(path) as journal:
            journal.mark_done("k1", "created", id=1)
        with Journal(path) as journal:
            assert journal.counts()["created"] == 1


class TestUnmarkSending:
    def test_a_mark_over_no_entry_leaves_none(self, journal: Journal) -> None:
        """A mark taken back leaves no entry: the record is neither pending nor counted."""
        journal.mark_sending("k1", 12, "A")

        assert journal.unmark_sending("k1", None) is True

        assert journal.state("k1") is None
        assert list(journal.pending()) == []
        assert journal.counts() == dict.fromkeys(JOURNAL_STATES, 0)

    def test_a_mark_over_a_failed_entry_restores_it(self, journal: Journal) -> None:
        """A mark over a failed entry is taken back to that entry, exactly as it was."""
        journal.mark_sending("k1", 12, "A")
        journal.mark_done(
            "k1", "failed", message="refused", errors=(FieldError("X", "y", 1),)
        )
        before = journal.state("k1")
        assert before is not None
        journal.mark_sending("k1", 12, "A")

        assert journal.unmark_sending("k1", before) is True

        after = journal.state("k1")
        assert after is not None
        assert after == attrs.evolve(before, updated_at=after.updated_at)
        assert abs((after.updated_at - before.updated_at).total_seconds()) < 1e-3
        assert list(journal.pending()) == []

    def test_a_mark_written_again_or_done_since_is_left(self, journal: Journal) -> None:
        """Only the one mark written over the entry is taken back, nothing after it."""
        journal.mark_sending("again", 1, "again")
        journal.mark_done("again", "unknown", message="no answer")
        journal.mark_sending("again", 1, "again")
        journal.mark_sending("done", 1, "done")
        journal.mark_done("done", "created", id=7)

        assert journal.unmark_sending("again", None) is False
        assert journal.unmark_sending("done", None) is False
        assert journal.unmark_sending("never", None) is False

        again, done = journal.state("again"), journal.state("done")
        assert again is not None
        assert (again.state, again.attempts) == ("sending", 2)
        assert done is not None
        assert (done.state, done.id) == ("created", 7)
        assert journal.state("never") is None

    @pytest.mark.parametrize("state", ["sending", "unknown", "created", "rejected"])
    def test_only_an_entry_that_stored_nothing_is_restored(
        self, journal: Journal, state: str
    ) -> None:
        """Restoring an entry that may stand for a stored create is refused."""
        journal.mark_sending("k1", 1, "A")
        if state != "sending":
            journal.mark_done("k1", state)  # type: ignore[arg-type]
        before = journal.state("k1")

        with pytest.raises(ValueError, match="taken back"):
            journal.unmark_sending("k1", before)
        assert journal.state("k1") == before

    def test_another_records_entry_is_refused(self, journal: Journal) -> None:
        """The entry to restore must be the record's own."""
        journal.mark_done("other", "failed")
        before = journal.state("other")
        journal.mark_sending("k1", 1, "A")

        with pytest.raises(ValueError, match="other"):
            journal.unmark_sending("k1", before)
        entry = journal.state("k1")
        assert entry is not None
        assert entry.state == "sending"

    def test_a_mark_taken_back_is_committed_on_close(self, tmp_path: Path) -> None:
        """Closing commits a mark taken back, as it does a done mark."""
        path = tmp_path / "run.journal.sqlite"
        with Journal(path) as journal:
            journal.mark_sending("k1", 1, "A")
            journal.unmark_sending("k1", None)
        with Journal(path) as journal:
            assert journal.state("k1") is None


class TestRejectedErrors:
    def test_errors_come_back_exactly(self, journal: Journal) -> None:
        """A rejected record's field errors survive a reopen, big and non-ASCII too."""
        errors = (
            FieldError("BusinessId", "business not found", 9),
            FieldError("Id", "too big", BIG_ID),
            FieldError("Name", "déjà vu ✓", "Zoë \ud800 日本"),
            FieldError(None, None, {"nested": [1, None, True]}),
        )
        journal.mark_sending("k1", 9, "Zoë")
        journal.mark_done("k1", "rejected", message="invalid", errors=errors)
        journal.close()

        with Journal(journal.path) as reopened:
            entry = reopened.state("k1")

        assert entry is not None
        assert entry.errors == errors
        assert type(entry.errors[1].attempted_value) is int

    def test_other_outcomes_store_none(self, journal: Journal) -> None:
        """Created, failed and in-flight entries have no errors."""
        journal.mark_done("a", "created", id=5)
        journal.mark_done("b", "failed", message="refused")
        journal.mark_sending("c", 1, "c")
        for key in ("a", "b", "c"):
            entry = journal.state(key)
            assert entry is not None
            assert entry.errors == ()

    def test_sending_again_clears_them(self, journal: Journal) -> None:
        """A record sent again does not keep the errors of its earlier refusal."""
        journal.mark_done("k1", "rejected", errors=(FieldError("Name", "bad", ""),))
        journal.mark_sending("k1", 1, "fixed")
        entry = journal.state("k1")
        assert entry is not None
        assert entry.errors == ()

    def test_a_value_json_cannot_carry_is_described(self, journal: Journal) -> None:
        """A NaN or a foreign object is stored as its repr, not a failed write."""
        journal.mark_done(
            "k1",
            "rejected",
            errors=(FieldError("Name", "not text", object), FieldError("X", "y", 1)),
        )
        entry = journal.state("k1")
        assert entry is not None
        assert entry.errors == (
            FieldError("Name", "not text", repr(object)),
            FieldError("X", "y", 1),
        )


class TestOwnerOf:
    def test_the_key_that_holds_an_id(self, journal: Journal) -> None:
        """owner_of names the record journaled with an Id, exactly, and None else."""
        journal.mark_sending("a", 1, "Twin")
        journal.mark_done("a", "created", id=BIG_ID)
        journal.mark_sending("b", 1, "Twin")

        assert journal.owner_of(BIG_ID) == "a"
        assert journal.owner_of(BIG_ID - 1) is None
        assert journal.owner_of(1) is None

    def test_the_index_is_used(self, journal: Journal) -> None:
        """The lookup by Id uses an index, so it stays fast on a large journal."""
        journal.close()
        db = sqlite3.connect(journal.path)
        try:
            plan = db.execute(
                "EXPLAIN QUERY PLAN SELECT key FROM records WHERE id = ? LIMIT 1",
                ("1",),
            ).fetchall()
        finally:
            db.close()

        assert "records_by_id" in " ".join(str(row) for row in plan)


class TestPending:
    def test_only_in_flight_states(self, journal: Journal) -> None:
        """Pending lists sending and unknown entries, in key order, nothing else."""
        for key in ("e", "d", "c", "b", "a"):
            journal.mark_sending(key, 1, key)
        journal.mark_done("a", "created", id=1)
        journal.mark_done("b", "unknown", message="no answer")
        journal.mark_done("c", "failed")
        assert [(e.key, e.state) for e in journal.pending()] == [
            ("b", "unknown"),
            ("d", "sending"),
            ("e", "sending"),
        ]

    def test_pages_and_marking_while_iterating(
        self, journal: Journal, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Pending reads in pages and allows marking entries done along the way."""
        monkeypatch.setattr(_journal, "_PAGE", 3)
        keys = [f"k{i:02}" for i in range(10)]
        for key in keys:
            journal.mark_sending(key, 1, key)
        seen = []
        for entry in journal.pending():
            seen.append(entry.key)
            journal.mark_done(entry.key, "created", id=1)
        assert seen == keys
        assert list(journal.pending()) == []


class TestCounts:
    def test_every_state_is_counted(self, journal: Journal) -> None:
        """Counts cover every state, zero or not."""
        assert journal.counts() == dict.fromkeys(JOURNAL_STATES, 0)
        journal.mark_sending("a", 1, "a")
        journal.mark_sending("b", 1, "b")
        journal.mark_done("b", "rejected")
        assert journal.counts() == {
            "sending": 1,
            "created": 0,
            "rejected": 1,
            "failed": 0,
            "unknown": 0,
        }


class TestFile:
    def test_meta_is_kept(self, tmp_path: Path) -> None:
        """Stored meta values come back after a reopen, with the schema version."""
        path = tmp_path / "run.journal.sqlite"
        with Journal(path) as journal:
            journal.set_meta("input", "data.csv:1234")
            journal.set_meta("input", "data.csv:5678")
        with Journal(path) as journal:
            meta = journal.meta
        assert meta["input"] == "data.csv:5678"
        assert meta["schema"] == "2"
        assert "created_at" in meta

    def test_second_open_is_refused(self, journal: Journal) -> None:
        """A journal open in one place cannot be opened again until closed."""
        with pytest.raises(JournalError, match="already open in this process"):
            Journal(journal.path)
        journal.close()
        Journal(journal.path).close()

    def test_open_in_another_process_is_another_run(self, tmp_path: Path) -> None:
        """A journal another process holds is refused as in use by another run."""
        path = tmp_path / "run.journal.sqlite"
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from nexudus_async._journal import Journal;"
                f" j = Journal({str(path)!r}); print('open', flush=True);"
                " sys.stdin.read()",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline() == "open\n"
            with pytest.raises(JournalError, match="in use by another run"):
                Journal(path)
        finally:
            holder.communicate("", timeout=30)
        Journal(path).close()

    def test_not_a_journal(self, tmp_path: Path) -> None:
        """A file that is not SQLite is refused with a clear error."""
        path = tmp_path / "results.jsonl"
        path.write_text('{"line": 2, "outcome": "created"}\n' * 100)
        with pytest.raises(JournalError, match="not a journal"):
            Journal(path)

    def test_newer_schema(self, tmp_path: Path) -> None:
        """A journal written by a newer schema is refused, not misread."""
        path = tmp_path / "run.journal.sqlite"
        Journal(path).close()
        with sqlite3.connect(path) as db:
            db.execute("UPDATE meta SET value = '99' WHERE name = 'schema'")
        db.close()
        with pytest.raises(JournalError, match="schema 99"):
            Journal(path)

    def test_schema_1_is_upgraded(self, tmp_path: Path) -> None:
        """A journal from before errors were kept is upgraded, its entries intact."""
        path = tmp_path / "run.journal.sqlite"
        with sqlite3.connect(path) as db:
            db.execute(
                "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
                " WITHOUT ROWID"
            )
            db.execute(
                """CREATE TABLE records (
                    key TEXT PRIMARY KEY,
                    state TEXT NOT NULL,
                    id TEXT,
                    attempts INTEGER NOT NULL,
                    updated_at REAL NOT NULL,
                    business_id TEXT,
                    name TEXT,
                    message TEXT
                ) WITHOUT ROWID"""
            )
            db.execute(
                "INSERT INTO meta VALUES ('schema', '1'), ('created_at', 'then')"
            )
            db.execute(
                "INSERT INTO records VALUES"
                " ('old', 'rejected', NULL, 1, 0.0, '9', 'A', 'invalid')"
            )
        db.close()

        with Journal(path) as journal:
            old = journal.state("old")
            journal.mark_done(
                "new", "rejected", errors=(FieldError("Name", "bad", "B"),)
            )
            assert journal.meta["schema"] == "2"
        with Journal(path) as journal:
            new = journal.state("new")

        assert old is not None
        assert (old.state, old.message, old.errors) == ("rejected", "invalid", ())
        assert new is not None
        assert new.errors == (FieldError("Name", "bad", "B"),)

    def test_closed_journal(self, tmp_path: Path) -> None:
        """Using a closed journal is an error; closing twice is not."""
        journal = Journal(tmp_path / "run.journal.sqlite")
        journal.close()
        journal.close()
        assert "closed" in repr(journal)
        with pytest.raises(JournalError, match="closed"):
            journal.state("k1")

    def test_bad_synchronous(self, tmp_path: Path) -> None:
        """An unknown synchronous setting is a ValueError."""
        with pytest.raises(ValueError, match="synchronous"):
            Journal(tmp_path / "j", synchronous="off")  # type: ignore[arg-type]

    def test_normal_synchronous(self, tmp_path: Path) -> None:
        """The faster setting keeps the same records."""
        path = tmp_path / "run.journal.sqlite"
        with Journal(path, synchronous="normal") as journal:
            journal.mark_sending("k1", 1, "A")
        with Journal(path) as journal:
            assert journal.counts()["sending"] == 1

    def test_threads_share_a_journal(self, journal: Journal) -> None:
        """Marks from several threads at once all land."""

        def work(start: int) -> None:
            for i in range(start, start + 50):
                journal.mark_sending(f"k{i}", 1, "A")
                journal.mark_done(f"k{i}", "created", id=i)

        threads = [threading.Thread(target=work, args=(n * 50,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert journal.counts()["created"] == 200
