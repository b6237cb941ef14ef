"""Tests for the bulk creator: accounting, streaming, reconciling, stopping, cancelling."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import itertools
import json
import logging
import math
import random
import signal
import sqlite3
import sys
import time
import weakref
from collections import Counter
from collections.abc import (
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import anyio
import anyio.lowlevel
import pytest
from conftest import FAKE_BASE, FakeAPI, FakeTime, Reply

from nexudus_async import _bulk
from nexudus_async._bulk import BulkJob, BulkOptions, bulk_create, create_all
from nexudus_async._errors import (
    AuthenticationError,
    AuthError,
    ClientStateError,
    ConflictError,
    ConnectError,
    HostNotFoundError,
    JournalError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    ProtocolError,
    QuotaExhaustedError,
    ServerError,
    ThrottledError,
    UnsuccessfulError,
    ValidationError,
)
from nexudus_async._io import RecordKeys, SourceRecord, open_records
from nexudus_async._journal import Journal
from nexudus_async._models import (
    FieldError,
    ImportFile,
    ImportFileCreate,
    Page,
    WriteResult,
)
from nexudus_async._outcomes import BulkReport, Outcome, OutcomeKind
from nexudus_async._progress import Progress
from nexudus_async._retry import RetryPolicy
from nexudus_async._sending import Phase, SendState, send_state

PATH = "/api/crm/crmopportunityimportfiles"
RESUME_AT = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

# What one create call does. A string names a behaviour; an exception is raised
# without storing anything.
STORE = "store"
STORE_THEN_LOSE = "store, then lose the answer"
Step = str | BaseException


def lost(reason: str = "the connection was reset") -> OutcomeUnknownError:
    return OutcomeUnknownError(method="POST", path=PATH, reason=reason)


def throttled(retry_after: float | None = 0.0) -> ThrottledError:
    return ThrottledError(method="POST", path=PATH, status=409, retry_after=retry_after)


def invalid(*errors: FieldError) -> ValidationError:
    envelope = WriteResult(False, status=400, message="invalid", errors=errors)
    return ValidationError(method="POST", path=PATH, status=400, envelope=envelope)


def refused() -> AuthenticationError:
    return AuthenticationError(method="POST", path=PATH, status=401)


def quota() -> QuotaExhaustedError:
    return QuotaExhaustedError(resume_at=RESUME_AT, write=True)


class FakeFiles:
    """An in-memory import-files resource whose creates follow a script.

    ``script`` gives, per record Name, the steps of its successive creates;
    ``by_call`` gives steps by create number (from 1). Anything unscripted stores.
    The Name filter of ``list`` matches a substring in any case, as the real one
    may, unless ``exact_filter``.
    """

    def __init__(
        self,
        script: Mapping[str, Sequence[Step]] | None = None,
        *,
        by_call: Mapping[int, Step] | None = None,
        latency: float = 0.0,
        list_error: Callable[[], BaseException] | None = None,
        exact_filter: bool = False,
    ) -> None:
        self.script = {name: list(steps) for name, steps in (script or {}).items()}
        self.by_call = dict(by_call or {})
        self.latency = latency
        self.list_error = list_error
        self.exact_filter = exact_filter
        self.stored: dict[int, ImportFile] = {}
        self.calls: list[tuple[str, str | None, float]] = []
        self.creates = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.on_create: Callable[[ImportFileCreate], None] | None = None
        self._next_id = 1000

    def store(self, business_id: int, name: str) -> int:
        self._next_id += 1
        self.stored[self._next_id] = ImportFile(self._next_id, business_id, name)
        return self._next_id

    def names(self, kind: str) -> list[str | None]:
        return [name for call, name, _ in self.calls if call == kind]

    async def create(self, record: ImportFileCreate) -> WriteResult:
        self.creates += 1
        self.calls.append(("create", record.name, anyio.current_time()))
        if self.on_create is not None:
            self.on_create(record)
        steps = self.script.get(record.name)
        step: Step = self.by_call.pop(self.creates, None) or (
            steps.pop(0) if steps else STORE
        )

        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await anyio.sleep(self.latency)
            if isinstance(step, BaseException):
                raise step
            new_id = self.store(record.business_id, record.name)
            if step == STORE_THEN_LOSE:
                raise lost()
            return WriteResult(True, status=200, value={"Id": new_id})
        finally:
            self.in_flight -= 1

    async def list(
        self,
        *,
        page: int = 1,
        size: int = 25,
        name: str | None = None,
        business_id: int | None = None,
    ) -> Page[ImportFile]:
        self.calls.append(("list", name, anyio.current_time()))
        await anyio.lowlevel.checkpoint()
        if self.list_error is not None:
            raise self.list_error()

        def matches(stored: ImportFile) -> bool:
            if business_id is not None and stored.business_id != business_id:
                return False
            if name is None:
                return True
            if self.exact_filter:
                return stored.name == name
            return name.casefold() in stored.name.casefold()

        found = [f for _, f in sorted(self.stored.items()) if matches(f)]
        return Page(
            records=tuple(found[(page - 1) * size : page * size]),
            current_page=page,
            has_next_page=page * size < len(found),
            has_previous_page=page > 1,
        )


class FakeClient:
    """Just what the bulk creator touches of a client."""

    def __init__(self, files: FakeFiles) -> None:
        self.import_files = files


def payloads(count: int, prefix: str = "rec") -> list[ImportFileCreate]:
    return [ImportFileCreate(1, f"{prefix}-{i:04d}") for i in range(count)]


async def run(files: FakeFiles, records: Any, **options: Any) -> list[Outcome]:
    options.setdefault("reconcile_delay", 0)
    options.setdefault("settle_time", 0)
    outcomes = []
    async with bulk_create(FakeClient(files), records, **options) as job:
        async for outcome in job:
            outcomes.append(outcome)
    return outcomes


def kinds(outcomes: Sequence[Outcome]) -> dict[str, int]:
    return dict(Counter(outcome.kind.value for outcome in outcomes))


def by_index(outcomes: Sequence[Outcome]) -> dict[int, Outcome]:
    return {outcome.index: outcome for outcome in outcomes}


def assert_each_index_once(outcomes: Sequence[Outcome], count: int) -> None:
    assert sorted(outcome.index for outcome in outcomes) == list(range(count))


def assert_no_duplicates(files: FakeFiles) -> None:
    keys = Counter((f.business_id, f.name) for f in files.stored.values())
    assert [key for key, n in keys.items() if n > 1] == []


class TestAccounting:
    @pytest.mark.parametrize("seed", range(6))
    async def test_every_record_gets_exactly_one_outcome_under_random_faults(
        self, seed: int
    ) -> None:
        """Whatever each create does, each input index ends with exactly one outcome."""
        chooser = random.Random(seed)
        menu: list[Callable[[], Step]] = [
            lambda: STORE,
            lambda: STORE_THEN_LOSE,
            lambda: lost(),
            lambda: throttled(0.0),
            lambda: ServerError(method="POST", path=PATH, status=503),
            lambda: invalid(FieldError("Name", "is bad", "x")),
            lambda: ConnectError("refused", method="POST", path=PATH, sent=False),
        ]
        records = payloads(200)
        script = {r.name: [chooser.choice(menu)() for _ in range(3)] for r in records}
        files = FakeFiles(script, latency=0.001)

        outcomes = await run(files, records, concurrency=7, max_sends=2)

        assert_each_index_once(outcomes, len(records))
        assert_no_duplicates(files)
        created = {o.id for o in outcomes if o.kind is OutcomeKind.CREATED}
        # Nothing ends unknown here: every lookup works, so every lost answer settles.
        assert created == set(files.stored)
        for outcome in outcomes:
            if outcome.kind is OutcomeKind.CREATED:
                assert outcome.id is not None
                assert files.stored[outcome.id].name == outcome.record.name

    @pytest.mark.parametrize("shape", ["list", "generator", "async generator"])
    async def test_sync_and_async_inputs(self, shape: str) -> None:
        """Lists, generators and async generators are all read to the end."""
        records = payloads(30)

        def generate() -> Iterator[ImportFileCreate]:
            yield from records

        async def agenerate() -> AsyncIterator[ImportFileCreate]:
            for record in records:
                await anyio.lowlevel.checkpoint()
                yield record

        source: Any = {
            "list": records,
            "generator": generate(),
            "async generator": agenerate(),
        }[shape]
        outcomes = await run(FakeFiles(), source, concurrency=4)

        assert kinds(outcomes) == {"created": 30}
        assert_each_index_once(outcomes, 30)
        assert all(o.record is records[o.index] for o in outcomes)

    async def test_outcome_carries_source_line_and_record(self, tmp_path: Path) -> None:
        """Records from a file keep their index, line and problems as field errors."""
        path = tmp_path / "in.jsonl"
        path.write_text(
            '{"BusinessId": 1, "Name": "a"}\n'
            "\n"
            '{"BusinessId": "x", "Name": ""}\n'
            '{"BusinessId": 2, "Name": "b"}\n',
            encoding="utf-8",
        )
        files = FakeFiles()
        with open_records(path) as reader:
            outcomes = await run(files, reader)

        found = by_index(outcomes)
        assert [found[i].line for i in range(3)] == [1, 3, 4]
        assert all(isinstance(o.record, SourceRecord) for o in outcomes)
        assert found[1].kind is OutcomeKind.REJECTED
        assert {e.property_name for e in found[1].errors} == {"BusinessId", "Name"}
        assert files.names("create") == ["a", "b"] or files.names("create") == [
            "b",
            "a",
        ]

    async def test_mappings_are_validated_locally_and_never_sent(self) -> None:
        """A mapping that fails validation is rejected with every field, unsent."""
        records: list[Any] = [
            {"BusinessId": "12", "Name": "ok"},
            {"BusinessId": "twelve", "Name": "   ", "Colour": "red"},
        ]
        files = FakeFiles()

        outcomes = by_index(await run(files, records))

        assert outcomes[0].kind is OutcomeKind.CREATED
        assert files.stored[outcomes[0].id or 0].business_id == 12
        bad = outcomes[1]
        assert bad.kind is OutcomeKind.REJECTED
        assert [e.property_name for e in bad.errors] == ["BusinessId", "Name", "Colour"]
        assert bad.errors[0].attempted_value == "twelve"
        assert files.names("create") == ["ok"]

    async def test_an_item_that_is_no_record_is_rejected(self) -> None:
        """An input item of a foreign type is rejected with a message, not sent."""
        outcomes = await run(FakeFiles(), [42])

        assert outcomes[0].kind is OutcomeKind.REJECTED
        assert "not a record" in (outcomes[0].message or "")


class TestStreaming:
    async def test_first_create_goes_out_before_the_input_is_read(self) -> None:
        """The input is pulled lazily: the first create precedes the end of input."""
        pulled = 0

        def generate() -> Iterator[ImportFileCreate]:
            nonlocal pulled
            for record in payloads(5000):
                pulled += 1
                yield record

        seen_at_first_create: list[int] = []
        files = FakeFiles()
        files.on_create = lambda _: seen_at_first_create.append(pulled)

        outcomes = await run(files, generate(), concurrency=8)

        assert len(outcomes) == 5000
        assert seen_at_first_create[0] <= 8

    async def test_look_ahead_and_live_tasks_stay_bounded(self) -> None:
        """Records read but unsettled, and live tasks, never exceed the concurrency."""
        concurrency = 6
        pulled = 0
        settled = 0
        look_ahead: list[int] = []
        tasks: list[int] = []

        def generate() -> Iterator[ImportFileCreate]:
            nonlocal pulled
            for record in payloads(600):
                pulled += 1
                yield record

        def on_create(_: ImportFileCreate) -> None:
            look_ahead.append(pulled - settled)
            tasks.append(len(asyncio.all_tasks()))

        def on_outcome(_: Outcome) -> None:
            nonlocal settled
            settled += 1

        baseline = len(asyncio.all_tasks())
        files = FakeFiles(latency=0.001)
        files.on_create = on_create
        await run(files, generate(), concurrency=concurrency, on_outcome=on_outcome)

        assert max(look_ahead) <= concurrency
        assert max(tasks) - baseline <= concurrency
        assert files.max_in_flight == concurrency

    async def test_outcomes_are_not_kept_by_the_job(self) -> None:
        """Once handed over, an outcome is only referenced by the consumer."""
        refs: list[weakref.ref[Outcome]] = []
        async with bulk_create(FakeClient(FakeFiles()), payloads(50)) as job:
            async for outcome in job:
                refs.append(weakref.ref(outcome))
            del outcome
            gc.collect()
            assert all(ref() is None for ref in refs)


class TestServerAnswers:
    async def test_validation_errors_are_kept_whole(self) -> None:
        """A 400 with field errors is rejected with every one of them."""
        errors = (
            FieldError("BusinessId", "business not found", 99),
            FieldError("Name", "is too long", "x" * 300),
        )
        files = FakeFiles({"rec-0000": [invalid(*errors)]})

        (outcome,) = await run(files, payloads(1))

        assert outcome.kind is OutcomeKind.REJECTED
        assert outcome.errors == errors
        assert "400" in (outcome.message or "")
        assert files.stored == {}

    @pytest.mark.parametrize(
        "error",
        [
            UnsuccessfulError(
                method="POST",
                path=PATH,
                status=200,
                envelope=WriteResult(False, errors=(FieldError("Name", "taken"),)),
            ),
            ConflictError(method="POST", path=PATH, status=409),
        ],
        ids=["unsuccessful", "conflict"],
    )
    async def test_other_refusals_are_rejected(self, error: Exception) -> None:
        """WasSuccessful false and a real 409 are refusals of the record."""
        (outcome,) = await run(FakeFiles({"rec-0000": [error]}), payloads(1))

        assert outcome.kind is OutcomeKind.REJECTED

    @pytest.mark.parametrize(
        "error",
        [
            ConnectError("refused", method="POST", path=PATH, sent=False),
            NotFoundError(method="POST", path=PATH, status=404),
            ProtocolError("html", method="POST", path=PATH, status=418),
        ],
        ids=["not-connected", "404", "4xx-html"],
    )
    async def test_failures_that_stored_nothing_fail_without_lookup(
        self, error: Exception
    ) -> None:
        """Errors that prove nothing was stored fail the record, with no lookup."""
        files = FakeFiles({"rec-0000": [error]})

        (outcome,) = await run(files, payloads(1))

        assert outcome.kind is OutcomeKind.FAILED
        assert files.names("list") == []
        assert files.creates == 1

    async def test_a_foreign_exception_is_unknown_and_logged_once(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An error that is not the SDK's: unknown, not sent again, one traceback."""
        files = FakeFiles(by_call={n: RuntimeError("bug") for n in range(1, 6)})

        with caplog.at_level(logging.DEBUG, logger="nexudus_async"):
            outcomes = await run(files, payloads(5), concurrency=1)

        assert kinds(outcomes) == {"unknown": 5}
        assert files.creates == 5
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1
        assert errors[0].exc_info is not None


class TestReconcile:
    async def test_answer_lost_after_store_is_found_with_its_id(self) -> None:
        """A create stored but unanswered is looked up: created, reconciled, once."""
        files = FakeFiles({"rec-0001": [STORE_THEN_LOSE]})

        outcomes = by_index(await run(files, payloads(3)))

        found = outcomes[1]
        assert found.kind is OutcomeKind.CREATED
        assert found.reconciled
        assert files.stored[found.id or 0].name == "rec-0001"
        assert files.names("create").count("rec-0001") == 1
        assert_no_duplicates(files)

    @pytest.mark.parametrize(
        "error",
        [
            lost(),
            ServerError(method="POST", path=PATH, status=503),
            ProtocolError("empty body", method="POST", path=PATH, status=200),
            ConnectError("reset", method="POST", path=PATH, sent=True),
        ],
        ids=["lost", "503", "empty-200", "sent-connect"],
    )
    async def test_not_stored_after_a_doubtful_answer_is_sent_again(
        self, error: Exception
    ) -> None:
        """When the lookup shows the record absent, it is sent again, and only then."""
        files = FakeFiles({"rec-0000": [error]})

        (outcome,) = await run(files, payloads(1))

        assert outcome.kind is OutcomeKind.CREATED
        assert not outcome.reconciled
        assert [call for call, _, _ in files.calls] == ["create", "list", "create"]

    async def test_never_two_sends_without_a_lookup_between(self) -> None:
        """Every re-send of a record is preceded by a lookup for it."""
        files = FakeFiles({"rec-0000": [lost(), lost(), STORE_THEN_LOSE]})

        (outcome,) = await run(files, payloads(1), max_sends=5)

        assert [call for call, _, _ in files.calls] == [
            "create",
            "list",
            "create",
            "list",
            "create",
            "list",
        ]
        assert outcome.kind is OutcomeKind.CREATED
        assert outcome.reconciled

    async def test_a_failed_lookup_leaves_it_unknown_and_unsent(self) -> None:
        """If the lookup fails, the record is unknown and never sent again."""
        files = FakeFiles(
            {"rec-0000": [lost()]},
            list_error=lambda: ServerError(method="GET", path=PATH, status=500),
        )

        (outcome,) = await run(files, payloads(1))

        assert outcome.kind is OutcomeKind.UNKNOWN
        assert files.creates == 1
        assert "could not look the record up" in (outcome.message or "")

    async def test_name_filter_matches_are_checked_exactly(self) -> None:
        """A loose server match (a longer name) does not count as the record."""
        files = FakeFiles({"rec-1": [lost()]})
        files.store(1, "rec-10")
        files.store(2, "rec-1")

        (outcome,) = await run(files, [ImportFileCreate(1, "rec-1")])

        assert outcome.kind is OutcomeKind.CREATED
        assert not outcome.reconciled
        assert files.creates == 2

    async def test_a_near_match_is_not_taken_as_absence(self) -> None:
        """A stored name differing only in case or spacing leaves it unknown."""
        files = FakeFiles({"Report A": [lost()]})
        files.store(1, "report a")

        (outcome,) = await run(files, [ImportFileCreate(1, "Report A")])

        assert outcome.kind is OutcomeKind.UNKNOWN
        assert files.creates == 1

    async def test_sends_are_bounded(self) -> None:
        """After max_sends unanswered sends, each shown unstored, the record fails."""
        files = FakeFiles({"rec-0000": [lost(), lost(), lost(), lost()]})

        (outcome,) = await run(files, payloads(1), max_sends=3)

        assert outcome.kind is OutcomeKind.FAILED
        assert files.creates == 3
        assert "never stored" in (outcome.message or "")

    async def test_the_lookup_waits_for_a_slow_server(self) -> None:
        """The lookup after a lost answer waits reconcile_delay first."""
        files = FakeFiles({"rec-0000": [lost()]})

        await run(files, payloads(1), reconcile_delay=0.2)

        (create_at, list_at) = [at for _, _, at in files.calls[:2]]
        assert list_at - create_at >= 0.19

    async def test_a_success_without_an_id_is_looked_up(self) -> None:
        """A success whose body holds no Id gets its Id from a lookup."""

        class NoIdFiles(FakeFiles):
            async def create(self, record: ImportFileCreate) -> WriteResult:
                await super().create(record)
                return WriteResult(True, status=200, value=None)

        files = NoIdFiles()
        (outcome,) = await run(files, payloads(1))

        assert outcome.kind is OutcomeKind.CREATED
        assert outcome.id in files.stored


class TestThrottle:
    async def test_a_throttle_pauses_the_whole_job(self) -> None:
        """After a surfaced throttle, no create starts until Retry-After has passed."""
        files = FakeFiles({"rec-0005": [throttled(0.5)]}, latency=0.005)

        outcomes = await run(files, payloads(40), concurrency=4)

        assert kinds(outcomes) == {"created": 40}
        creates = [(name, at) for call, name, at in files.calls if call == "create"]
        throttled_at = next(at for name, at in creates if name == "rec-0005")
        # The throttle answer comes back one latency after its create started; the
        # creates other workers had already begun may start a little later on a busy
        # machine, so allow 0.1 s for that. From then on, no create may start for
        # the 0.5 s it asked for.
        paused = [
            at for _, at in creates if throttled_at + 0.1 < at < throttled_at + 0.49
        ]
        assert paused == []
        assert max(at for _, at in creates) - throttled_at >= 0.5
        assert files.names("create").count("rec-0005") == 2

    async def test_a_stop_ends_the_pause(self) -> None:
        """Stopped during a 5 s pause, the job ends at once: nothing will be sent."""
        files = FakeFiles({"rec-0000": [throttled(5.0)]})
        outcomes: list[Outcome] = []

        started = time.monotonic()
        async with bulk_create(FakeClient(files), payloads(3), concurrency=1) as job:

            async def stop_soon() -> None:
                await anyio.sleep(0.2)
                job.stop("stopped by the test")

            async with anyio.create_task_group() as tg:
                tg.start_soon(stop_soon)
                outcomes = [outcome async for outcome in job]
        elapsed = time.monotonic() - started

        assert kinds(outcomes) == {"not_attempted": 3}
        assert files.creates == 1
        assert {o.message for o in outcomes} == {"not sent: stopped by the test"}
        assert elapsed < 2.0

    async def test_a_throttle_without_retry_after_uses_the_default_pause(self) -> None:
        """With no Retry-After, the job pauses for throttle_pause seconds."""
        files = FakeFiles({"rec-0000": [throttled(None)]})

        await run(files, payloads(1), throttle_pause=0.2)

        first, second = [at for _, _, at in files.calls]
        assert second - first >= 0.19

    async def test_endless_throttling_fails_the_record(self) -> None:
        """A record throttled more than max_throttles times fails."""
        files = FakeFiles({"rec-0000": [throttled() for _ in range(5)]})

        (outcome,) = await run(files, payloads(1), max_throttles=3)

        assert outcome.kind is OutcomeKind.FAILED
        assert files.creates == 4
        assert "throttled" in (outcome.message or "")

    async def test_a_retry_after_within_max_pause_still_pauses(self) -> None:
        """A Retry-After just under max_pause pauses the job, then sends again."""
        files = FakeFiles({"rec-0000": [throttled(0.2)]})

        (outcome,) = await run(files, payloads(1), max_pause=0.25)

        assert outcome.kind is OutcomeKind.CREATED
        first, second = [at for _, _, at in files.calls]
        assert second - first >= 0.19

    async def test_a_retry_after_of_hours_stops_the_job_until_then(self) -> None:
        """The server's daily quota: this record and the rest not attempted, with when."""
        files = FakeFiles(by_call={3: throttled(7200)})
        outcomes: list[Outcome] = []
        async with bulk_create(
            FakeClient(files), payloads(10), concurrency=1, reconcile_delay=0
        ) as job:
            async for outcome in job:
                outcomes.append(outcome)
        expected = datetime.now(timezone.utc) + timedelta(hours=2)

        assert kinds(outcomes) == {"created": 2, "not_attempted": 8}
        assert_each_index_once(outcomes, 10)
        assert files.creates == 3
        assert job.resume_at is not None
        assert abs(job.resume_at - expected) < timedelta(seconds=5)
        assert "asked to wait 7200 seconds" in (job.stop_reason or "")
        assert "daily quota is probably spent" in (job.stop_reason or "")
        rest = [o for o in outcomes if o.kind is OutcomeKind.NOT_ATTEMPTED]
        assert all(o.resume_at == job.resume_at for o in rest)
        # The throttled record was refused; the others were not sent at all.
        messages = {o.index: o.message for o in rest}
        assert messages.pop(2) == job.stop_reason
        assert set(messages.values()) == {f"not sent: {job.stop_reason}"}

    async def test_max_pause_sets_how_long_a_wait_stops_the_job(self) -> None:
        """create_all passes max_pause on: a 2 s Retry-After over a 1 s limit stops."""
        files = FakeFiles({"rec-0000": [throttled(2.0)]})

        report = await create_all(
            FakeClient(files), payloads(3), concurrency=1, max_pause=1.0
        )

        assert report["not_attempted"] == 3
        assert report.resume_at is not None
        assert "2 seconds" in (report.stop_reason or "")
        assert files.creates == 1

    async def test_a_lookup_asked_to_wait_for_hours_stops_the_job(self) -> None:
        """A throttled existence check with a long Retry-After stops the job too."""
        files = FakeFiles(
            list_error=lambda: ThrottledError(
                method="GET", path=PATH, status=409, retry_after=7200
            )
        )

        outcomes = await run(files, payloads(5), skip_existing=True, concurrency=1)

        assert kinds(outcomes) == {"not_attempted": 5}
        assert all(o.resume_at is not None for o in outcomes)
        assert files.creates == 0


def _throttle_reply(retry_after: str) -> Reply:
    """The documented throttle: 409, empty body, ``Retry-After``."""
    return Reply(409, body=b"", headers={"Retry-After": retry_after})


_LISTED_NONE = Reply(
    json={
        "Records": [],
        "CurrentPage": 1,
        "HasNextPage": False,
        "HasPreviousPage": False,
    }
)
_CREATED = Reply(
    json={"Status": 200, "Message": "ok", "Value": {"Id": 7}, "WasSuccessful": True}
)


class TestServerThrottleThroughTheClient:
    """The real client's retry loop under a job, over a scripted server."""

    @staticmethod
    def _client(
        fake_time: FakeTime | None,
        retry: RetryPolicy | None = None,
        rate_limits: Any = None,
    ) -> Any:
        from nexudus_async._auth import BearerAuth
        from nexudus_async._client import NexudusClient

        clocks: dict[str, Any] = {}
        if fake_time is not None:
            clocks = {"sleep": fake_time.sleep, "clock": fake_time.clock}
        return NexudusClient(
            auth=BearerAuth("static-token"),
            base_url=FAKE_BASE,
            rate_limits=rate_limits,
            retry=retry or RetryPolicy(jitter=0.0),
            **clocks,
        )

    async def test_a_wait_over_max_pause_stops_at_the_first_answer(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """Retry-After 960 s over the 900 s max_pause: one POST, then the job stops.

        With the client's defaults, its own retry loop would otherwise send the
        create again every 120 s before the job ever heard of the throttle.
        """
        fake_api.on("POST", PATH, _throttle_reply("960"))

        async with self._client(fake_time) as client:
            report = await create_all(client, payloads(3), concurrency=1)
        expected = datetime.now(timezone.utc) + timedelta(seconds=960)

        assert len(fake_api.seen("POST")) == 1
        assert report["not_attempted"] == 3
        assert "asked to wait 960 seconds" in (report.stop_reason or "")
        assert report.resume_at is not None
        assert abs(report.resume_at - expected) < timedelta(seconds=5)
        assert fake_time.sleeps == []

    async def test_a_wait_longer_than_the_client_sits_out_pauses_the_job_for_all_of_it(
        self, fake_api: FakeAPI
    ) -> None:
        """A Retry-After over retry_after_max is waited in full, not the client's cap."""
        fake_api.on("POST", PATH, _throttle_reply("0.4"), _CREATED)
        retry = RetryPolicy(retry_after_max=0.05, jitter=0.0)

        started = time.monotonic()
        async with self._client(None, retry) as client:
            report = await create_all(client, payloads(1), concurrency=1)
        elapsed = time.monotonic() - started

        assert report["created"] == 1
        assert len(fake_api.seen("POST")) == 2
        # The client alone would have sent again after its own 0.05 s cap.
        assert elapsed >= 0.39

    @staticmethod
    @contextlib.asynccontextmanager
    async def _queued_behind_a_refusal(
        status: int,
        headers: Mapping[str, str],
        *,
        every: bool,
        window: float = 0.3,
        **options: Any,
    ) -> AsyncIterator[tuple[BulkReport, list[float], list[float]]]:
        """A job whose first create is refused while others queue in the client.

        The limiter lets one create go every ``window`` seconds (300 ms) and the
        server takes 120 ms
        to refuse the first, so by then the other workers' creates wait inside
        the client, past the job's own pause check. ``every`` refuses every
        create, not just the first. Yields the report, when each create reached
        the server and when the first refusal was answered.
        """
        from aiohttp import web
        from aiohttp.test_utils import TestServer

        from nexudus_async._auth import BearerAuth
        from nexudus_async._client import NexudusClient
        from nexudus_async._limiter import RateLimits, Window

        sent_at: list[float] = []
        answered_at: list[float] = []

        async def handler(request: web.Request) -> web.Response:
            sent_at.append(time.monotonic())
            if len(sent_at) == 1 or every:
                if len(sent_at) == 1:
                    await asyncio.sleep(0.12)
                    answered_at.append(time.monotonic())
                return web.Response(status=status, headers=headers)
            body = {"Status": 200, "Value": {"Id": len(sent_at)}, "WasSuccessful": True}
            return web.json_response(body)

        app = web.Application()
        app.router.add_post(PATH, handler)
        async with (
            TestServer(app, host="127.0.0.1") as server,
            NexudusClient(
                auth=BearerAuth("static-token"),
                base_url=str(server.make_url("")).rstrip("/"),
                rate_limits=RateLimits((Window(1, window),)),
                retry=RetryPolicy(retry_after_max=0.05, jitter=0.0),
            ) as client,
        ):
            report = await create_all(client, payloads(6), concurrency=4, **options)
            yield report, sent_at, answered_at

    async def test_creates_queued_in_the_client_are_held_for_the_whole_wait(
        self,
    ) -> None:
        """Creates already waiting in the client's limiter are not sent during a pause."""
        async with self._queued_behind_a_refusal(
            409, {"Retry-After": "0.5"}, every=False
        ) as found:
            report, sent_at, (throttled,) = found

        assert report["created"] == 6
        during = [
            round(at - throttled, 3) for at in sent_at if 0 < at - throttled < 0.45
        ]
        assert during == []
        assert len(sent_at) == 7

    async def test_creates_queued_in_the_client_are_withdrawn_on_a_stop(
        self,
    ) -> None:
        """Over max_pause, creates queued in the client are not sent, nor held."""
        started = time.monotonic()
        async with self._queued_behind_a_refusal(
            409, {"Retry-After": "30"}, every=True, max_pause=1.0
        ) as found:
            report, sent_at, (throttled,) = found
        elapsed = time.monotonic() - started

        assert report["not_attempted"] == 6
        assert report.resume_at is not None
        # The one sent before the answer came back goes; the next slot, 180 ms
        # after it, is withdrawn.
        assert len(sent_at) == 1
        assert [at - throttled for at in sent_at if at > throttled] == []
        # Well short of the 30 s asked for, or of a second's pause held in the client.
        assert elapsed < 10

    async def test_creates_queued_in_the_client_are_withdrawn_after_a_401(
        self,
    ) -> None:
        """Credentials refused: the creates queued in the client are never sent."""
        async with self._queued_behind_a_refusal(401, {}, every=True) as found:
            report, sent_at, _ = found

        assert report["failed"] == 1
        assert report["not_attempted"] == 5
        assert len(sent_at) == 1
        assert all(
            (o.message or "").startswith("not sent: POST ")
            for o in report.outcomes
            if o.kind is OutcomeKind.NOT_ATTEMPTED
        )

    async def test_a_stop_does_not_wait_for_the_creates_queued_in_the_client(
        self,
    ) -> None:
        """Creates queued for their slot in the limiter end at once when the job stops.

        Slots come every 2 s here: waiting for them only to withdraw the creates
        would keep the job open for 6 s with nothing to send.
        """
        started = time.monotonic()
        async with self._queued_behind_a_refusal(
            401, {}, every=True, window=2.0
        ) as found:
            report, sent_at, _ = found
        elapsed = time.monotonic() - started

        assert report["failed"] == 1
        assert report["not_attempted"] == 5
        assert len(sent_at) == 1
        assert elapsed < 1.5

    async def test_a_short_throttle_is_still_retried_by_the_client(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A Retry-After the client sits out in full stays inside its retry loop."""
        fake_api.on("POST", PATH, _throttle_reply("2"), _CREATED)

        async with self._client(fake_time) as client:
            report = await create_all(client, payloads(1), concurrency=1)

        assert report["created"] == 1
        assert len(fake_api.seen("POST")) == 2
        assert fake_time.sleeps == [2.0]

    async def test_a_throttled_lookup_keeps_the_client_retries(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """Over retry_after_max, a lookup is retried by the client: its answer counts."""
        fake_api.on("GET", PATH, _throttle_reply("30"), _LISTED_NONE)
        fake_api.on("POST", PATH, _CREATED)
        retry = RetryPolicy(retry_after_max=5.0, jitter=0.0)

        async with self._client(fake_time, retry) as client:
            report = await create_all(
                client, payloads(1), concurrency=1, skip_existing=True
            )

        assert report["created"] == 1
        assert len(fake_api.seen("GET")) == 2
        assert fake_time.sleeps == [5.0]

    async def test_outside_a_job_the_client_still_retries_a_long_throttle(
        self, fake_time: FakeTime, fake_api: FakeAPI
    ) -> None:
        """A create awaited on its own keeps the client's capped waits."""
        fake_api.on("POST", PATH, _throttle_reply("960"), _CREATED)

        async with self._client(fake_time) as client:
            result = await client.import_files.create(payloads(1)[0])

        assert result.id == 7
        assert fake_time.sleeps == [120.0]


class TestStopping:
    async def test_quota_stops_cleanly_with_the_resume_time(self) -> None:
        """A spent write quota stops the job: the rest are not attempted, with when."""
        files = FakeFiles(by_call={6: quota()})

        outcomes = await run(files, payloads(20), concurrency=1)

        assert kinds(outcomes) == {"created": 5, "not_attempted": 15}
        assert_each_index_once(outcomes, 20)
        rest = [o for o in outcomes if o.kind is OutcomeKind.NOT_ATTEMPTED]
        assert all(o.resume_at == RESUME_AT for o in rest)
        assert all("quota" in (o.message or "") for o in rest)
        assert files.creates == 6

    @pytest.mark.parametrize(
        "error",
        [quota(), refused(), throttled(7200)],
        ids=["quota", "credentials", "server-quota"],
    )
    async def test_the_stop_is_told_once(
        self, error: Exception, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The warning, the reason and each row say "stopped" at most once."""
        caplog.set_level(logging.WARNING, logger="nexudus_async")
        files = FakeFiles(by_call={2: error})

        async with bulk_create(FakeClient(files), payloads(4), concurrency=1) as job:
            outcomes = [outcome async for outcome in job]

        warnings = [
            r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
        ]
        assert warnings == [f"bulk job stopping: {job.stop_reason}"]
        assert "stop" not in (job.stop_reason or "")
        if isinstance(error, AuthenticationError):
            # Said of the records not attempted too, so it says whose refusal.
            assert (job.stop_reason or "").endswith(
                "; every record would fail the same way"
            )
        rest = [o for o in outcomes if o.kind is OutcomeKind.NOT_ATTEMPTED]
        assert rest
        # A record never sent says so; one refused carries the reason alone.
        assert {o.message for o in rest} <= {
            job.stop_reason,
            f"not sent: {job.stop_reason}",
        }
        assert any(o.message == f"not sent: {job.stop_reason}" for o in rest)

    async def test_a_record_sent_before_the_stop_says_not_sent_again(self) -> None:
        """Refused in flight after the stop: "not sent again", unlike those never sent."""
        files = FakeFiles(by_call={1: refused(), 2: refused()}, latency=0.01)

        outcomes = await run(files, payloads(5), concurrency=2)

        assert kinds(outcomes) == {"failed": 1, "not_attempted": 4}
        messages = sorted(
            (o.message or "").split(":")[0]
            for o in outcomes
            if o.kind is OutcomeKind.NOT_ATTEMPTED
        )
        assert messages == ["not sent", "not sent", "not sent", "not sent again"]

    async def test_quota_with_concurrency_lets_in_flight_creates_finish(self) -> None:
        """Creates already past the limiter finish; nothing new is sent after."""
        files = FakeFiles(by_call={10: quota()}, latency=0.01)

        outcomes = await run(files, payloads(50), concurrency=5)

        assert_each_index_once(outcomes, 50)
        counts = kinds(outcomes)
        assert counts["created"] == len(files.stored)
        assert counts["created"] + counts["not_attempted"] == 50
        assert files.creates <= 10 + 4

    @pytest.mark.parametrize(
        "make",
        [
            refused,
            lambda: PermissionDeniedError(method="POST", path=PATH, status=403),
            lambda: AuthError(error="invalid_grant", description="bad password"),
            lambda: HostNotFoundError(
                "cannot resolve host", method="POST", path=PATH, sent=False
            ),
        ],
        ids=["401", "403", "token", "dns"],
    )
    async def test_a_fatal_error_fails_one_and_stops_the_rest(
        self, make: Callable[[], Exception]
    ) -> None:
        """Auth failures and unknown hosts: one failure, everything else not attempted."""
        files = FakeFiles(by_call={n: make() for n in range(3, 400)}, latency=0.002)

        outcomes = await run(files, payloads(300), concurrency=8)

        assert_each_index_once(outcomes, 300)
        counts = kinds(outcomes)
        assert counts["failed"] == 1
        assert counts["created"] == 2
        assert counts["not_attempted"] == 297
        assert files.creates <= 2 + 8

    async def test_stop_after_n_failures(self) -> None:
        """stop_after=N stops sending once N records failed."""
        files = FakeFiles(
            by_call={
                n: NotFoundError(method="POST", path=PATH, status=404)
                for n in (2, 4, 6, 8)
            }
        )

        outcomes = await run(files, payloads(20), concurrency=1, stop_after=3)

        assert kinds(outcomes) == {"created": 3, "failed": 3, "not_attempted": 14}
        assert files.creates == 6
        rest = [o for o in outcomes if o.kind is OutcomeKind.NOT_ATTEMPTED]
        assert all("3 failed" in (o.message or "") for o in rest)

    async def test_failures_do_not_stop_the_job_by_default(self) -> None:
        """The default policy continues past any number of failures."""
        files = FakeFiles(
            by_call={
                n: NotFoundError(method="POST", path=PATH, status=404)
                for n in range(1, 30)
            }
        )

        outcomes = await run(files, payloads(40))

        assert kinds(outcomes) == {"failed": 29, "created": 11}

    async def test_a_failing_hook_stops_the_job_with_one_traceback(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A hook that fails on every outcome stops sending and logs one traceback."""
        calls = []

        def hook(outcome: Outcome) -> None:
            calls.append(outcome.index)
            raise OSError(28, "No space left on device")

        with caplog.at_level(logging.DEBUG, logger="nexudus_async"):
            outcomes = await run(
                FakeFiles(latency=0.001), payloads(30), concurrency=3, on_outcome=hook
            )

        assert_each_index_once(outcomes, 30)
        assert sorted(calls) == list(range(30))
        assert kinds(outcomes)["not_attempted"] >= 20
        stopped = [o for o in outcomes if o.kind is OutcomeKind.NOT_ATTEMPTED]
        assert all("on_outcome hook failed" in (o.message or "") for o in stopped)
        hook_records = [r for r in caplog.records if r.msg.startswith("on_outcome")]
        assert len(hook_records) == 30
        first, *later = hook_records
        assert first.levelno == logging.ERROR
        assert first.exc_info is not None
        assert all(r.levelno == logging.DEBUG and not r.exc_info for r in later)


class TestLogs:
    async def test_debug_lines_name_a_file_record_by_its_line(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A reconciled record from a file is named by its line, not its index."""
        caplog.set_level(logging.DEBUG, logger="nexudus_async")
        path = write_jsonl(tmp_path / "in.jsonl", ["a", "b", "c"])
        files = FakeFiles({"b": [STORE_THEN_LOSE], "c": [lost()]})

        with open_records(path) as records:
            outcomes = await run(files, records, concurrency=1)

        assert kinds(outcomes) == {"created": 3}
        messages = [r.getMessage() for r in caplog.records]
        assert any(
            m.startswith("the record on line 2 reconciled to Id") for m in messages
        )
        assert any(
            m.startswith("the record on line 3 was not stored") for m in messages
        )

    async def test_debug_lines_name_other_records_by_their_index(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Without a line, the record is named by its index in the input."""
        caplog.set_level(logging.DEBUG, logger="nexudus_async")
        files = FakeFiles({"rec-0001": [STORE_THEN_LOSE]})

        await run(files, payloads(2), concurrency=1)

        messages = [r.getMessage() for r in caplog.records]
        assert any(m.startswith("record 1 reconciled to Id") for m in messages)


class TestSkipExisting:
    async def test_existing_records_are_skipped_with_their_id(self) -> None:
        """skip_existing looks each record up and skips those already stored."""
        files = FakeFiles()
        existing = files.store(1, "rec-0002")
        files.store(2, "rec-0003")  # another business: not the same record

        outcomes = by_index(await run(files, payloads(4), skip_existing=True))

        assert outcomes[2].kind is OutcomeKind.SKIPPED
        assert outcomes[2].id == existing
        assert outcomes[3].kind is OutcomeKind.CREATED
        assert files.names("create").count("rec-0002") == 0
        assert len(files.names("list")) == 4

    async def test_a_failed_check_fails_the_record_unsent(self) -> None:
        """If the existence check fails, the record is not sent."""
        files = FakeFiles(
            list_error=lambda: ServerError(method="GET", path=PATH, status=500)
        )

        (outcome,) = await run(files, payloads(1), skip_existing=True)

        assert outcome.kind is OutcomeKind.FAILED
        assert files.creates == 0


def write_jsonl(path: Path, names: Sequence[str]) -> Path:
    path.write_text(
        "".join(json.dumps({"BusinessId": 1, "Name": n}) + "\n" for n in names),
        encoding="utf-8",
    )
    return path


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def read_keys(path: Path) -> dict[str, str]:
    with open_records(path) as reader:
        return {r.raw["Name"]: r.key for r in reader}


class TestJournal:
    async def test_a_second_run_skips_what_the_first_settled(
        self, tmp_path: Path
    ) -> None:
        """Created and rejected records are skipped on a re-run, failed ones resent."""
        source = write_jsonl(tmp_path / "in.jsonl", ["a", "b", "c", "d"])
        files = FakeFiles(
            {
                "b": [invalid(FieldError("Name", "bad"))],
                "c": [NotFoundError(method="POST", path=PATH, status=404)],
            }
        )
        with Journal(tmp_path / "j.sqlite", synchronous="normal") as journal:
            with open_records(source) as reader:
                first = by_index(await run(files, reader, journal=journal))
            with open_records(source) as reader:
                second = by_index(await run(files, reader, journal=journal))

        assert [first[i].kind.value for i in range(4)] == [
            "created",
            "rejected",
            "failed",
            "created",
        ]
        assert [second[i].kind.value for i in range(4)] == [
            "skipped",
            "skipped",
            "created",
            "skipped",
        ]
        assert second[0].id == first[0].id
        assert "rejected in an earlier run" in (second[1].message or "")
        assert second[1].errors == first[1].errors == (FieldError("Name", "bad"),)
        assert files.names("create") == ["a", "b", "c", "d", "c"] or sorted(
            files.names("create")
        ) == ["a", "b", "c", "c", "d"]

    async def test_records_left_in_flight_are_looked_up_first(
        self, tmp_path: Path
    ) -> None:
        """A record an earlier run left 'sending' is reconciled before any send."""
        source = write_jsonl(tmp_path / "in.jsonl", ["stored", "lost", "new"])
        keys = read_keys(source)
        files = FakeFiles()
        stored_id = files.store(1, "stored")
        with Journal(tmp_path / "j.sqlite", synchronous="normal") as journal:
            journal.mark_sending(keys["stored"], 1, "stored")
            journal.mark_sending(keys["lost"], 1, "lost")
            with open_records(source) as reader:
                outcomes = by_index(await run(files, reader, journal=journal))
            states = {name: journal.state(key) for name, key in keys.items()}

        assert outcomes[0].kind is OutcomeKind.CREATED
        assert outcomes[0].reconciled
        assert outcomes[0].id == stored_id
        assert outcomes[1].kind is OutcomeKind.CREATED
        assert sorted(files.names("create")) == ["lost", "new"]
        assert all(s is not None and s.state == "created" for s in states.values())
        assert_no_duplicates(files)

    async def test_sending_is_journaled_before_the_create_leaves(
        self, tmp_path: Path
    ) -> None:
        """When a create is sent, the journal already says 'sending' for it."""
        source = write_jsonl(tmp_path / "in.jsonl", ["a", "b", "c"])
        keys = read_keys(source)
        seen: dict[str, str | None] = {}
        files = FakeFiles()
        with Journal(tmp_path / "j.sqlite", synchronous="normal") as journal:

            def on_create(record: ImportFileCreate) -> None:
                entry = journal.state(keys[record.name])
                seen[record.name] = None if entry is None else entry.state

            files.on_create = on_create
            with open_records(source) as reader:
                await run(files, reader, journal=journal)

        assert seen == {"a": "sending", "b": "sending", "c": "sending"}

    async def test_plain_records_get_stable_keys(self, tmp_path: Path) -> None:
        """Models and mappings are journaled too, so a re-run skips them."""
        records: list[Any] = [ImportFileCreate(1, "a"), {"BusinessId": 1, "Name": "b"}]
        files = FakeFiles()
        with Journal(tmp_path / "j.sqlite", synchronous="normal") as journal:
            await run(files, records, journal=journal)
            again = await run(files, records, journal=journal)

        assert kinds(again) == {"skipped": 2}
        assert files.creates == 2

    async def test_a_record_without_a_json_form_is_rejected(
        self, tmp_path: Path
    ) -> None:
        """A mapping holding a value JSON cannot carry is rejected; the job goes on."""
        records: list[Any] = [
            {"BusinessId": 1, "Name": "a", "Extra": object()},
            {"BusinessId": 1, "Name": "b"},
        ]
        files = FakeFiles()
        with Journal(tmp_path / "j.sqlite", synchronous="normal") as journal:
            outcomes = by_index(await run(files, records, journal=journal))

        assert outcomes[0].kind is OutcomeKind.REJECTED
        assert outcomes[1].kind is OutcomeKind.CREATED
        assert files.names("create") == ["b"]


class SpyKeys(RecordKeys):
    """Record keys that remember each instance, and whether it opened and closed."""

    made: ClassVar[list[SpyKeys]] = []

    def __init__(self) -> None:
        super().__init__()
        self.opened = False
        self.closed = False
        SpyKeys.made.append(self)

    def _open(self) -> sqlite3.Connection:
        self.opened = True
        return super()._open()

    def close(self) -> None:
        self.closed = True
        super().close()


class TestRecordKeys:
    @pytest.fixture(autouse=True)
    def spy(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        """Every job of the test makes its keys as SpyKeys."""
        SpyKeys.made = []
        monkeypatch.setattr(_bulk, "RecordKeys", SpyKeys)
        yield
        for keys in SpyKeys.made:
            keys.close()

    @pytest.fixture
    def journal(self, tmp_path: Path) -> Iterator[Journal]:
        """A journal, so that the job needs keys for plain records."""
        with Journal(tmp_path / "j.sqlite", synchronous="normal") as journal:
            yield journal

    async def test_keys_are_closed_when_the_job_ends(self, journal: Journal) -> None:
        """A job run to its end closes the record keys it opened."""
        outcomes = await run(FakeFiles(), payloads(5), journal=journal)

        assert kinds(outcomes) == {"created": 5}
        assert [(keys.opened, keys.closed) for keys in SpyKeys.made] == [(True, True)]

    async def test_keys_are_closed_when_the_body_raises(self, journal: Journal) -> None:
        """An exception out of the loop still closes the keys."""

        async def consume() -> None:
            async with bulk_create(
                FakeClient(FakeFiles()), payloads(50), journal=journal
            ) as job:
                async for _ in job:
                    raise KeyError("boom")

        with pytest.raises(KeyError):
            await consume()

        assert [keys.closed for keys in SpyKeys.made] == [True]

    async def test_keys_are_closed_when_the_job_is_cancelled(
        self, journal: Journal
    ) -> None:
        """A cancel scope around the job closes the keys, after the drain used them."""
        hooked: list[Outcome] = []
        with anyio.move_on_after(0.05):
            async with bulk_create(
                FakeClient(FakeFiles(latency=0.02)),
                payloads(100),
                concurrency=4,
                journal=journal,
                on_outcome=hooked.append,
            ) as job:
                async for _ in job:
                    pass

        assert_each_index_once(hooked, 100)
        assert kinds(hooked)["not_attempted"] > 0
        assert [keys.closed for keys in SpyKeys.made] == [True]

    async def test_keys_are_closed_when_the_drain_fails(
        self, journal: Journal, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A failure while the rest is marked not attempted still closes the keys."""

        def broken(*args: Any) -> Any:
            raise RuntimeError("drain broke")

        async def consume() -> None:
            async with bulk_create(
                FakeClient(FakeFiles()), payloads(50), journal=journal
            ) as job:
                async for _ in job:
                    # Patched inside the loop, so only the drain meets it.
                    monkeypatch.setattr(_bulk, "prepare", broken)
                    raise KeyError("boom")

        with pytest.raises(RuntimeError, match="drain broke"):
            await consume()

        assert [keys.closed for keys in SpyKeys.made] == [True]

    async def test_a_job_fed_by_a_reader_opens_none(
        self, journal: Journal, tmp_path: Path
    ) -> None:
        """Records from a file reader bring their own keys: the job opens no database."""
        source = write_jsonl(tmp_path / "in.jsonl", ["a", "b"])
        with open_records(source) as reader:
            outcomes = await run(FakeFiles(), reader, journal=journal)

        assert kinds(outcomes) == {"created": 2}
        assert [(keys.opened, keys.closed) for keys in SpyKeys.made] == [(False, True)]

    async def test_a_job_without_a_journal_makes_none(self) -> None:
        """Keys serve only the journal: a job without one makes none."""
        await run(FakeFiles(), payloads(3))

        assert SpyKeys.made == []


class TestCancellation:
    async def test_cancel_accounts_for_every_record(self) -> None:
        """cancel(): finished stay, in-flight become unknown, the rest not attempted."""
        files = FakeFiles(latency=0.05)
        outcomes: list[Outcome] = []
        async with bulk_create(FakeClient(files), payloads(60), concurrency=4) as job:
            async for outcome in job:
                outcomes.append(outcome)
                if len(outcomes) == 6:
                    job.cancel()

        assert_each_index_once(outcomes, 60)
        counts = kinds(outcomes)
        assert counts["unknown"] <= 4
        assert counts["created"] + counts["unknown"] + counts["not_attempted"] == 60
        unknown = [o for o in outcomes if o.kind is OutcomeKind.UNKNOWN]
        assert all("in flight" in (o.message or "") for o in unknown)
        assert job.stop_reason == "the job was cancelled"

    async def test_creates_the_client_still_holds_end_not_attempted(self) -> None:
        """cancel(): the create at the server is unknown, those the limiter holds not."""
        from nexudus_async._limiter import RateLimits, Window
        from nexudus_async.emulator import Emulator, EmulatorConfig, Faults, Limits

        held = ["held-1", "held-2", "held-3"]
        records = [ImportFileCreate(1, name) for name in ["slow", "fast", *held]]
        # The server sits on "slow". The client lets two requests a minute go, so
        # once "slow" and "fast" are out every other create waits in its limiter.
        faults = Faults(by_name={"slow": ("delay:30",)})
        config = EmulatorConfig(limits=Limits.off(), faults=faults)
        outcomes: list[Outcome] = []
        async with (
            Emulator(config) as emulator,
            _client(emulator, rate_limits=RateLimits([Window(2, 60.0)])) as client,
        ):
            async with bulk_create(client, records, concurrency=4) as job:
                async for outcome in job:
                    outcomes.append(outcome)
                    if outcome.kind is OutcomeKind.CREATED:
                        job.cancel()
            stored = [row["Name"] for row in emulator.records.values()]
            requests = emulator.stats.requests

        found = {o.record.name: o for o in outcomes}
        assert found["fast"].kind is OutcomeKind.CREATED
        assert found["slow"].kind is OutcomeKind.UNKNOWN
        assert "in flight" in (found["slow"].message or "")
        for name in held:
            assert found[name].kind is OutcomeKind.NOT_ATTEMPTED
            assert found[name].message == "not sent: the job was cancelled"
        assert len(outcomes) == 5
        assert stored == ["fast"]
        assert requests == 2

    async def test_a_creator_that_is_not_the_client_leaves_them_unknown(
        self,
    ) -> None:
        """A create cut short in a creator that does not report is unknown."""
        files = FakeFiles(latency=60.0)
        outcomes: list[Outcome] = []
        async with bulk_create(FakeClient(files), payloads(3), concurrency=3) as job:
            while files.in_flight < 3:
                await anyio.lowlevel.checkpoint()
            job.cancel()
            async for outcome in job:
                outcomes.append(outcome)

        assert kinds(outcomes) == {"unknown": 3}
        assert all("in flight" in (o.message or "") for o in outcomes)

    async def test_stop_lets_in_flight_creates_finish(self) -> None:
        """stop(): creates in flight finish as created; no unknowns."""
        files = FakeFiles(latency=0.02)
        outcomes: list[Outcome] = []
        async with bulk_create(FakeClient(files), payloads(60), concurrency=4) as job:
            async for outcome in job:
                outcomes.append(outcome)
                if len(outcomes) == 6:
                    job.stop("enough")

        counts = kinds(outcomes)
        assert "unknown" not in counts
        assert counts["created"] == len(files.stored) >= 6
        assert_each_index_once(outcomes, 60)

    async def test_outer_cancellation_accounts_through_the_hook(self) -> None:
        """A cancel scope around the job: every record still reaches on_outcome."""
        files = FakeFiles(latency=0.05)
        hooked: list[Outcome] = []
        with anyio.move_on_after(0.12):
            async with bulk_create(
                FakeClient(files),
                payloads(100),
                concurrency=4,
                on_outcome=hooked.append,
            ) as job:
                async for _ in job:
                    pass

        assert_each_index_once(hooked, 100)
        counts = kinds(hooked)
        assert counts["unknown"] == 4
        assert counts["created"] == len(files.stored)

    async def test_task_cancel_accounts_and_reraises(self) -> None:
        """asyncio task.cancel(): the task ends cancelled, every record accounted."""
        hooked: list[Outcome] = []

        async def consume() -> None:
            async with bulk_create(
                FakeClient(FakeFiles(latency=0.05)),
                payloads(100),
                concurrency=4,
                on_outcome=hooked.append,
            ) as job:
                async for _ in job:
                    pass

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.12)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        assert_each_index_once(hooked, 100)

    async def test_leaving_the_loop_early_stops_the_job(self) -> None:
        """break: the job stops and the remaining records are not attempted."""
        hooked: list[Outcome] = []
        files = FakeFiles(latency=0.01)

        async def records() -> AsyncIterator[ImportFileCreate]:
            for record in payloads(500):
                yield record

        async with bulk_create(
            FakeClient(files), records(), concurrency=4, on_outcome=hooked.append
        ) as job:
            async for _ in job:
                break

        assert_each_index_once(hooked, 500)
        assert files.creates < 20
        assert job.elapsed < 5

    async def test_leaving_an_endless_sync_input_ends_within_the_drain(self) -> None:
        """break over an endless generator: the job ends within its drain deadline.

        Once the consumer has left, workers must stop reading a sync input: with
        nothing awaited between records marked not attempted, they would hold the
        event loop for as long as the input lasts. Here the input ends by itself
        five seconds after the break, so a job that kept reading would take that
        long; the drain, which reads the rest, stops after half a second. The
        consumer is slow, so that workers are waiting to hand over an outcome
        when it leaves, the case where they used to carry on.
        """
        files = FakeFiles()
        stop_at = float("inf")
        hooked: list[Outcome] = []

        def endless() -> Iterator[ImportFileCreate]:
            for i in itertools.count():
                if time.monotonic() > stop_at:
                    return
                yield ImportFileCreate(1, f"rec-{i}")

        for _ in range(5):
            stop_at, left = float("inf"), 0.0
            async with bulk_create(
                FakeClient(files),
                endless(),
                concurrency=8,
                drain_timeout=0.5,
                on_outcome=hooked.append,
            ) as job:
                async for outcome in job:
                    # A slow consumer: the workers wait to hand over outcomes.
                    await anyio.sleep(0.001)
                    if outcome.index >= 199:
                        left = time.monotonic()
                        stop_at = left + 5.0
                        break
            assert time.monotonic() - left < 3.0
            assert job.done == len(hooked)
            hooked.clear()

    async def test_an_error_in_the_body_propagates_unwrapped(self) -> None:
        """The consumer's exception comes out as itself, not in an exception group."""

        async def consume() -> None:
            async with bulk_create(FakeClient(FakeFiles()), payloads(50)) as job:
                async for _ in job:
                    raise KeyError("boom")

        with pytest.raises(KeyError, match="boom"):
            await consume()

    async def test_ctrl_c_leaves_no_stray_output(self, tmp_path: Path) -> None:
        """Ctrl-C prints what a bare asyncio program prints: no warnings, no extras."""
        out, err = await _interrupt(tmp_path / "job.py", _CTRL_C_SCRIPT)
        _, baseline = await _interrupt(tmp_path / "bare.py", _BARE_SCRIPT)

        assert out.split() == ["accounted", "300"]
        assert err.rstrip().endswith("KeyboardInterrupt")
        assert err.count("Traceback (most recent call last)") == baseline.count(
            "Traceback (most recent call last)"
        )
        for stray in ("destroyed", "never awaited", "ignored", "Unclosed", "Group"):
            assert stray not in err
        assert "WouldBlock" not in err


async def _interrupt(script: Path, text: str) -> tuple[str, str]:
    """Run a script, press Ctrl-C once it prints 'started', return its output."""
    write_text(script, text)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        str(script),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        assert (await process.stdout.readline()).strip() == b"started"
        process.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return out.decode(), err.decode()


_BARE_SCRIPT = """
import asyncio

async def main():
    print("started", flush=True)
    await asyncio.sleep(30)

asyncio.run(main())
"""

_CTRL_C_SCRIPT = """
import asyncio
import anyio
from nexudus_async._bulk import bulk_create
from nexudus_async._models import ImportFileCreate, WriteResult

class Files:
    def __init__(self):
        self.next = 0
    async def create(self, record):
        await anyio.sleep(0.02)
        self.next += 1
        return WriteResult(True, value={"Id": self.next})
    async def list(self, **kw):
        raise AssertionError("no lookups expected")

class Client:
    import_files = Files()

seen = []

async def main():
    records = [ImportFileCreate(1, f"r{i}") for i in range(300)]
    async with bulk_create(Client(), records, concurrency=4, on_outcome=seen.append) as job:
        async for outcome in job:
            if outcome.index == 0:
                print("started", flush=True)

try:
    asyncio.run(main())
finally:
    print("accounted", len({o.index for o in seen}), flush=True)
"""


class TestInput:
    async def test_an_input_error_comes_after_the_outcomes_read_before(self) -> None:
        """A failing input: records read before finish, then its error is raised."""

        def generate() -> Iterator[ImportFileCreate]:
            yield from payloads(5)
            raise OSError("disk gone")

        outcomes: list[Outcome] = []

        async def consume() -> None:
            async with bulk_create(FakeClient(FakeFiles()), generate()) as job:
                async for outcome in job:
                    outcomes.append(outcome)

        with pytest.raises(OSError, match="disk gone"):
            await consume()

        assert kinds(outcomes) == {"created": 5}

    @pytest.mark.parametrize(
        "records",
        [ImportFileCreate(1, "a"), {"BusinessId": 1, "Name": "a"}, "ab", 7],
        ids=["model", "mapping", "str", "int"],
    )
    def test_a_single_record_is_refused(self, records: Any) -> None:
        """Passing one record, or something not iterable, raises TypeError."""
        with pytest.raises(TypeError):
            bulk_create(FakeClient(FakeFiles()), records)

    @pytest.mark.parametrize(
        "options",
        [{"concurrency": 0}, {"stop_after": 0}, {"max_sends": 0}],
        ids=["concurrency", "stop_after", "max_sends"],
    )
    def test_limits_below_one_are_refused(self, options: BulkOptions) -> None:
        """Limits below 1 raise ValueError at once."""
        with pytest.raises(ValueError, match="at least 1"):
            bulk_create(FakeClient(FakeFiles()), [], **options)

    def test_a_negative_max_pause_is_refused(self) -> None:
        """max_pause below 0 raises ValueError at once."""
        with pytest.raises(ValueError, match="max_pause"):
            bulk_create(FakeClient(FakeFiles()), [], max_pause=-1)

    def test_max_throttles_below_zero_is_refused(self) -> None:
        """max_throttles may be 0 (fail at the first pause), never negative."""
        bulk_create(FakeClient(FakeFiles()), [], max_throttles=0)
        with pytest.raises(ValueError, match="max_throttles must be at least 0"):
            bulk_create(FakeClient(FakeFiles()), [], max_throttles=-1)

    @pytest.mark.parametrize(
        "name",
        [
            "progress_interval",
            "drain_timeout",
            "reconcile_delay",
            "throttle_pause",
            "max_pause",
            "settle_time",
        ],
    )
    @pytest.mark.parametrize("value", [-1, -0.5, math.nan])
    def test_negative_or_nan_seconds_are_refused_by_name(
        self, name: str, value: float
    ) -> None:
        """A negative or NaN number of seconds raises ValueError naming the option."""
        with pytest.raises(ValueError, match=f"^{name} must be a number of seconds"):
            bulk_create(FakeClient(FakeFiles()), [], **{name: value})

    @pytest.mark.parametrize("name", ["progress_interval", "drain_timeout"])
    async def test_zero_seconds_are_allowed(self, name: str) -> None:
        """Zero seconds is a valid choice: report every outcome, or read no more."""
        outcomes = await run(FakeFiles(), payloads(2), **{name: 0})

        assert kinds(outcomes) == {"created": 2}

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("concurrency", 2.5),
            ("concurrency", True),
            ("concurrency", "8"),
            ("stop_after", 1.0),
            ("max_sends", "3"),
            ("max_throttles", 2.0),
            ("progress_interval", "1"),
            ("drain_timeout", None),
        ],
    )
    def test_options_of_the_wrong_type_are_refused_by_name(
        self, name: str, value: object
    ) -> None:
        """A float count or a string of seconds is a TypeError that names the option."""
        with pytest.raises(TypeError, match=f"^{name} must be a "):
            bulk_create(FakeClient(FakeFiles()), [], **{name: value})

    async def test_create_all_refuses_a_bad_option_before_reading_input(self) -> None:
        """create_all checks its options before it touches the records."""
        read: list[int] = []

        def records() -> Iterator[ImportFileCreate]:
            read.append(1)
            yield from payloads(1)

        with pytest.raises(TypeError, match="concurrency"):
            await create_all(FakeClient(FakeFiles()), records(), concurrency=2.5)
        assert read == []

    def test_bulk_options_name_every_option_of_bulk_create(self) -> None:
        """BulkOptions, which create_all takes, names bulk_create's keywords exactly."""
        keywords = {
            name
            for name, parameter in inspect.signature(bulk_create).parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        }

        # The types are mypy's to check, where create_all passes the options on.
        assert BulkOptions.__optional_keys__ == frozenset(keywords)
        assert BulkOptions.__required_keys__ == frozenset()

    async def test_iterating_outside_the_context_is_refused(self) -> None:
        """A job iterated before it is entered raises ClientStateError."""
        job = bulk_create(FakeClient(FakeFiles()), [])
        with pytest.raises(ClientStateError):
            await job.__anext__()

    async def test_a_job_runs_only_once(self) -> None:
        """Entering a finished job again raises ClientStateError."""
        job = bulk_create(FakeClient(FakeFiles()), payloads(2))
        async with job:
            assert len([o async for o in job]) == 2
        with pytest.raises(ClientStateError):
            async with job:
                pass

    async def test_an_empty_input_ends_at_once(self) -> None:
        """No records: no outcome, no request."""
        files = FakeFiles()

        assert await run(files, []) == []
        assert files.calls == []


class TestProgress:
    async def test_snapshots_come_at_most_every_interval_and_at_the_end(self) -> None:
        """The callback gets counts, rate and ETA, spaced out, with a final one."""
        snapshots: list[Progress] = []
        files = FakeFiles(
            {"rec-0003": [invalid(FieldError("Name", "bad"))]}, latency=0.01
        )

        await run(
            files,
            payloads(60),
            concurrency=2,
            progress=snapshots.append,
            progress_interval=0.05,
        )

        assert 3 <= len(snapshots) <= 15
        last = snapshots[-1]
        assert last.final
        assert last.done == last.total == 60
        assert last.counts[OutcomeKind.CREATED] == 59
        assert last.counts[OutcomeKind.REJECTED] == 1
        middle = snapshots[len(snapshots) // 2]
        assert not middle.final
        assert middle.rate > 0
        assert middle.eta is not None
        assert middle.eta > 0
        assert all(not s.final for s in snapshots[:-1])

    async def test_a_failing_callback_does_not_break_the_job(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A progress callback that raises is dropped; the job carries on."""

        def broken(_: Progress) -> None:
            raise RuntimeError("display gone")

        with caplog.at_level(logging.ERROR, logger="nexudus_async"):
            outcomes = await run(
                FakeFiles(latency=0.005),
                payloads(20),
                progress=broken,
                progress_interval=0.0,
            )

        assert kinds(outcomes) == {"created": 20}
        assert "progress callback failed" in caplog.text

    async def test_job_snapshot_and_counts(self) -> None:
        """The job exposes live counts and a snapshot."""
        async with bulk_create(FakeClient(FakeFiles()), payloads(3)) as job:
            async for _ in job:
                pass
            snapshot = job.snapshot()

        assert job.counts[OutcomeKind.CREATED] == 3
        assert job.done == 3
        assert snapshot.final
        assert not job.running


class TestReport:
    async def test_create_all_counts_and_keeps_what_is_not_created(self) -> None:
        """create_all returns counts for every kind and only non-created outcomes."""
        files = FakeFiles(
            {"rec-0004": [invalid(FieldError("Name", "bad"))]}, latency=0.001
        )

        report = await create_all(FakeClient(files), payloads(10), reconcile_delay=0)

        assert report.counts[OutcomeKind.CREATED] == 9
        assert report["rejected"] == 1
        assert report.total == 10
        assert sum(report.counts.values()) == 10
        assert [o.index for o in report.outcomes] == [4]
        assert report.elapsed > 0
        assert report.stop_reason is None

    async def test_create_all_in_input_order_with_created(self) -> None:
        """ordered=True sorts by index; keep_created keeps every outcome."""
        files = FakeFiles(latency=0.0)
        rng = random.Random(3)
        files.latency = 0.0

        class Jittery(FakeFiles):
            async def create(self, record: ImportFileCreate) -> WriteResult:
                self.latency = rng.random() / 100
                return await super().create(record)

        report = await create_all(
            FakeClient(Jittery()),
            payloads(30),
            ordered=True,
            keep_created=True,
            concurrency=8,
        )

        assert [o.index for o in report.outcomes] == list(range(30))

    async def test_create_all_reports_a_quota_stop(self) -> None:
        """The report says why the job stopped and when it may resume."""
        report = await create_all(
            FakeClient(FakeFiles(by_call={3: quota()})), payloads(5), concurrency=1
        )

        assert report.resume_at == RESUME_AT
        assert "quota" in (report.stop_reason or "")
        assert report["not_attempted"] == 3


class TestAgainstTheEmulator:
    async def test_ten_records_with_an_invalid_a_throttled_and_a_reset_one(
        self,
    ) -> None:
        """9 created and 1 rejected; record 8 reconciled to the Id really stored."""
        from nexudus_async._auth import BasicAuth
        from nexudus_async._client import NexudusClient
        from nexudus_async.emulator import Emulator, EmulatorConfig, Faults, Limits

        names = [f"record-{n:02d}" for n in range(1, 11)]
        faults = Faults(
            by_name={
                names[3]: ("throttle", "throttle"),
                names[7]: ("reset_after_store",),
            }
        )
        records = [
            ImportFileCreate(99 if n == 2 else 1, name)
            for n, name in enumerate(names, start=1)
        ]
        config = EmulatorConfig(limits=Limits.off(), faults=faults)
        async with (
            Emulator(config) as emulator,
            NexudusClient(
                auth=BasicAuth("admin@example.com", "password"),
                base_url=emulator.base_url,
                rate_limits=None,
            ) as client,
        ):
            report = await create_all(
                client, records, concurrency=4, ordered=True, keep_created=True
            )
            stored = {row["Name"]: row["Id"] for row in emulator.records.values()}
            throttles = emulator.stats.throttled

        assert report["created"] == 9
        assert report["rejected"] == 1
        second = report.outcomes[1]
        assert second.kind is OutcomeKind.REJECTED
        assert [e.property_name for e in second.errors] == ["BusinessId"]
        assert second.errors[0].attempted_value == 99
        eighth = report.outcomes[7]
        assert eighth.kind is OutcomeKind.CREATED
        assert eighth.reconciled
        assert eighth.id == stored["record-08"]
        assert report.outcomes[3].kind is OutcomeKind.CREATED
        assert throttles == 2
        assert len(stored) == 9
        assert all(o.id == stored[o.record.name] for o in report.outcomes if o.id)

    async def test_the_real_limiter_stops_the_job_when_the_quota_is_spent(
        self,
    ) -> None:
        """With 5 writes allowed a day, 5 are created and the rest wait for tomorrow."""
        from nexudus_async._auth import BasicAuth
        from nexudus_async._client import NexudusClient
        from nexudus_async._limiter import RateLimits, Window
        from nexudus_async.emulator import Emulator, EmulatorConfig, Limits

        limits = RateLimits((Window(5, 86400.0, writes_only=True),), max_wait=1.0)
        config = EmulatorConfig(limits=Limits.off())
        async with (
            Emulator(config) as emulator,
            NexudusClient(
                auth=BasicAuth("admin@example.com", "password"),
                base_url=emulator.base_url,
                rate_limits=limits,
            ) as client,
        ):
            report = await create_all(client, payloads(12), concurrency=3)
            stored = len(emulator.records)

        assert report["created"] == stored == 5
        assert report["not_attempted"] == 7
        tomorrow = datetime.now(timezone.utc) + timedelta(hours=23)
        assert report.resume_at is not None
        assert report.resume_at > tomorrow
        assert all(o.resume_at == report.resume_at for o in report.outcomes)

    async def test_refused_credentials_fail_once_and_stop(self) -> None:
        """A wrong password: one failed record, every other one not attempted."""
        from nexudus_async._auth import BasicAuth
        from nexudus_async._client import NexudusClient
        from nexudus_async.emulator import Emulator, EmulatorConfig, Limits

        async with Emulator(EmulatorConfig(limits=Limits.off())) as emulator:
            async with NexudusClient(
                auth=BasicAuth("admin@example.com", "wrong"),
                base_url=emulator.base_url,
                rate_limits=None,
            ) as client:
                report = await create_all(client, payloads(200), concurrency=8)
            requests = emulator.stats.requests

        assert report["failed"] == 1
        assert report["not_attempted"] == 199
        assert "401" in (report.stop_reason or "")
        assert requests <= 8 * 2


class TestSiblings:
    """Records sharing a BusinessId and Name never share a stored record."""

    @pytest.mark.parametrize("journaled", [False, True], ids=["plain", "journal"])
    async def test_identical_rows_with_a_lost_create_are_two_records(
        self, tmp_path: Path, journaled: bool
    ) -> None:
        """Twin rows, the second's create reset unstored: two records, two Ids."""
        from nexudus_async.emulator import Emulator, EmulatorConfig, Faults, Limits

        source = write_jsonl(tmp_path / "in.jsonl", ["Twin", "Twin"])
        faults = Faults(by_name={"Twin": ("ok", "reset_before_store")})
        config = EmulatorConfig(limits=Limits.off(), faults=faults)
        journal = Journal(tmp_path / "j.sqlite") if journaled else None
        async with Emulator(config) as emulator, _client(emulator) as client:
            with open_records(source) as reader:
                first = await run(client.import_files, reader, journal=journal)
            stored = sorted(emulator.records)
            if journal is not None:
                with open_records(source) as reader:
                    again = await run(client.import_files, reader, journal=journal)
                journal.close()
                assert [o.kind for o in again] == [OutcomeKind.SKIPPED] * 2
                assert {o.id for o in again} == {o.id for o in first}
                assert sorted(emulator.records) == stored

        assert [o.kind for o in first] == [OutcomeKind.CREATED] * 2
        assert sorted(o.id for o in first) == stored
        assert len(stored) == 2

    async def test_an_earlier_runs_sibling_is_not_taken_for_a_lost_create(
        self, tmp_path: Path
    ) -> None:
        """A twin left in flight does not take the Id the journal gives the other."""
        source = write_jsonl(tmp_path / "in.jsonl", ["Twin", "Twin"])
        with open_records(source) as reader:
            first_key, second_key = (r.key for r in reader)
        files = FakeFiles()
        existing = files.store(1, "Twin")
        with Journal(tmp_path / "j.sqlite", synchronous="normal") as journal:
            journal.mark_sending(first_key, 1, "Twin")
            journal.mark_done(first_key, "created", id=existing)
            # The run died after marking the second twin, before it was sent.
            journal.mark_sending(second_key, 1, "Twin")
            with open_records(source) as reader:
                outcomes = by_index(await run(files, reader, journal=journal))

        assert outcomes[0].kind is OutcomeKind.SKIPPED
        assert outcomes[0].id == existing
        assert outcomes[1].kind is OutcomeKind.CREATED
        assert not outcomes[1].reconciled
        assert outcomes[1].id != existing
        assert len(files.stored) == 2

    async def test_skip_existing_does_not_skip_a_twin_for_its_sibling(self) -> None:
        """With skip_existing, the second of two twins is created, not skipped."""
        files = FakeFiles()
        records = [ImportFileCreate(1, "Twin"), ImportFileCreate(1, "Twin")]

        outcomes = await run(files, records, skip_existing=True, concurrency=2)

        assert [o.kind for o in outcomes] == [OutcomeKind.CREATED] * 2
        assert len(files.stored) == 2


class TestSettleTime:
    """A create that may still land is not looked up before it can have landed."""

    async def test_a_killed_runs_create_that_lands_late_is_not_sent_again(
        self, tmp_path: Path
    ) -> None:
        """The server stores a dead run's create late: the re-run waits, then finds it."""
        from nexudus_async.emulator import Emulator, EmulatorConfig, Faults, Limits

        source = write_jsonl(tmp_path / "in.jsonl", ["Slow row", "Fast row"])
        keys = read_keys(source)
        faults = Faults(by_name={"Slow row": ("delay:1.5",)})
        config = EmulatorConfig(limits=Limits.off(), faults=faults)
        finished: dict[str, float] = {}
        async with Emulator(config) as emulator, _client(emulator) as client:
            with Journal(tmp_path / "j.sqlite", synchronous="normal") as journal:
                # What a run killed with -9 leaves: the mark, and a create the
                # server is still working on.
                journal.mark_sending(keys["Slow row"], 1, "Slow row")
                with anyio.move_on_after(0.3):
                    await client.import_files.create(ImportFileCreate(1, "Slow row"))
                started = anyio.current_time()

                def on_outcome(outcome: Outcome) -> None:
                    name = outcome.record.raw["Name"]
                    finished[name] = anyio.current_time() - started

                with open_records(source) as reader:
                    outcomes = by_index(
                        await run(
                            client.import_files,
                            reader,
                            journal=journal,
                            settle_time=2.0,
                            on_outcome=on_outcome,
                        )
                    )
            stored = [row["Name"] for row in emulator.records.values()]

        assert outcomes[0].kind is OutcomeKind.CREATED
        assert outcomes[0].reconciled
        assert sorted(stored) == ["Fast row", "Slow row"]
        # Only the record left in flight waited.
        assert finished["Fast row"] < 1.0
        assert finished["Slow row"] >= 1.5

    async def test_after_a_timeout_the_lookup_waits_for_the_settle_time(
        self,
    ) -> None:
        """A create the server stores after the client timed out is found, not resent."""
        from nexudus_async.emulator import Emulator, EmulatorConfig, Faults, Limits

        faults = Faults(by_name={"Slow row": ("delay:1.2",)})
        config = EmulatorConfig(limits=Limits.off(), faults=faults)
        async with (
            Emulator(config) as emulator,
            _client(emulator, timeout=0.4) as client,
        ):
            (outcome,) = await run(
                client.import_files,
                [ImportFileCreate(1, "Slow row")],
                reconcile_delay=0.1,
                settle_time=1.8,
            )
            stored = [row["Name"] for row in emulator.records.values()]

        assert outcome.kind is OutcomeKind.CREATED
        assert outcome.reconciled
        assert stored == ["Slow row"]

    def test_the_default_is_the_clients_timeout_and_a_margin(self) -> None:
        """Without settle_time, the client's timeout plus the margin is used."""

        class TimedClient(FakeClient):
            timeout = 2.0

        job = bulk_create(TimedClient(FakeFiles()), [])
        assert job._settler._options.settle_time == 2.0 + _bulk.SETTLE_MARGIN

    def test_a_negative_settle_time_is_refused(self) -> None:
        """settle_time below zero is a ValueError."""
        with pytest.raises(ValueError, match="settle_time"):
            bulk_create(FakeClient(FakeFiles()), [], settle_time=-1.0)


class WatchedFiles:
    """The client's import files, noting each call and the state each create reports.

    ``states`` holds, by Name, the `SendState` the client reports the latest create
    of that Name into (its worker's), so a test sees when the client holds one.
    """

    def __init__(self, files: Any) -> None:
        self.files = files
        self.calls: list[tuple[str, str | None]] = []
        self.states: dict[str, SendState] = {}
        self.creates: Counter[str] = Counter()
        self.ended: Counter[str] = Counter()

    async def create(self, record: ImportFileCreate) -> WriteResult:
        self.calls.append(("create", record.name))
        state = send_state.get()
        assert state is not None
        self.states[record.name] = state
        self.creates[record.name] += 1
        try:
            result: WriteResult = await self.files.create(record)
        finally:
            self.ended[record.name] += 1
        return result

    async def list(self, **query: Any) -> Page[ImportFile]:
        self.calls.append(("list", query.get("name")))
        page: Page[ImportFile] = await self.files.list(**query)
        return page

    def phase(self, name: str) -> Phase | None:
        """How far the latest create of ``name`` got, while it has not ended."""
        if self.creates[name] == self.ended[name]:
            return None
        return self.states[name].phase

    def looked_up(self) -> set[str | None]:
        return {name for call, name in self.calls if call == "list"}


async def until(ready: Callable[[], bool]) -> None:
    # Polled: what is waited for is the client's own state, which signals nothing.
    with anyio.fail_after(10):
        while not ready():  # noqa: ASYNC110
            await anyio.sleep(0.005)


async def gated(
    records: Iterable[SourceRecord], gates: Mapping[str, Callable[[], bool]]
) -> AsyncIterator[SourceRecord]:
    """The records, each named in ``gates`` handed over once its gate is open."""
    for record in records:
        gate = gates.get(record.raw["Name"])
        if gate is not None:
            await until(gate)
        yield record


async def run_until(
    files: Any, records: Any, ready: Callable[[], bool], **options: Any
) -> list[Outcome]:
    """Run a job, cancel it once ``ready()`` holds, and return every outcome."""

    async def cancel_when_ready(job: BulkJob) -> None:
        await until(ready)
        job.cancel()

    outcomes: list[Outcome] = []
    async with (
        bulk_create(FakeClient(files), records, **options) as job,
        anyio.create_task_group() as group,
    ):
        group.start_soon(cancel_when_ready, job)
        async for outcome in job:
            outcomes.append(outcome)
    return outcomes


def names_of(outcomes: Sequence[Outcome]) -> dict[str, str]:
    return {o.record.raw["Name"]: o.kind.value for o in outcomes}


class TestResumingHeldCreates:
    """A create the client never sent does not hold up the run that resumes the job."""

    async def test_records_held_at_a_quota_stop_are_created_at_once_next_run(
        self, tmp_path: Path
    ) -> None:
        """After a quota stop, the re-run sends the held records at once, unlooked-up."""
        from nexudus_async._limiter import RateLimits, Window
        from nexudus_async.emulator import Emulator, EmulatorConfig, Limits

        names = [f"row-{n:02d}" for n in range(12)]
        source = write_jsonl(tmp_path / "in.jsonl", names)
        # Five writes a day, and no waiting past a second for the sixth: every
        # create after the fifth is refused by the limiter, which held it unsent.
        limits = RateLimits((Window(5, 86400.0, writes_only=True),), max_wait=1.0)
        async with Emulator(EmulatorConfig(limits=Limits.off())) as emulator:
            with Journal(tmp_path / "j.sqlite", synchronous="normal") as journal:
                async with _client(emulator, rate_limits=limits) as client:
                    with open_records(source) as reader:
                        first = await run(
                            client.import_files, reader, journal=journal, concurrency=3
                        )
                left = journal.counts()
                async with _client(emulator) as client:
                    watched = WatchedFiles(client.import_files)
                    # The settle time of an hour would stall a record still marked
                    # sending; the re-run must not meet it.
                    with anyio.fail_after(10), open_records(source) as reader:
                        again = await run(
                            watched, reader, journal=journal, settle_time=3600
                        )
            stored = Counter(row["Name"] for row in emulator.records.values())

        assert kinds(first) == {"created": 5, "not_attempted": 7}
        assert left["sending"] == 0
        assert kinds(again) == {"skipped": 5, "created": 7}
        assert not any(o.reconciled for o in again)
        assert watched.looked_up() == set()
        assert stored == Counter(names)

    async def test_records_held_at_a_cancel_are_created_at_once_next_run(
        self, tmp_path: Path
    ) -> None:
        """Cancelled while the limiter held them: the re-run sends them at once."""
        from nexudus_async._limiter import RateLimits, Window
        from nexudus_async.emulator import Emulator, EmulatorConfig, Limits

        names = ["a", "b", "c", "d", "e"]
        source = write_jsonl(tmp_path / "in.jsonl", names)
        keys = read_keys(source)
        async with Emulator(EmulatorConfig(limits=Limits.off())) as emulator:
            with Journal(tmp_path / "j.sqlite", synchronous="normal") as journal:
                limits = RateLimits([Window(2, 60.0, writes_only=True)])
                async with _client(emulator, rate_limits=limits) as client:
                    watched = WatchedFiles(client.import_files)

                    def three_held() -> bool:
                        held = [n for n in names if watched.phase(n) is Phase.WAITING]
                        return len(held) == 3 and len(watched.ended) == 2

                    with open_records(source) as reader:
                        first = await run_until(
                            watched, reader, three_held, journal=journal, concurrency=3
                        )
                entries = {name: journal.state(key) for name, key in keys.items()}
                async with _client(emulator) as client:
                    again_watched = WatchedFiles(client.import_files)
                    with anyio.fail_after(10), open_records(source) as reader:
                        again = await run(
                            again_watched, reader, journal=journal, settle_time=3600
                        )
            stored = Counter(row["Name"] for row in emulator.records.values())

        assert kinds(first) == {"created": 2, "not_attempted": 3}
        created = {n for n, kind in names_of(first).items() if kind == "created"}
        held = set(names) - created
        assert all(watched.creates[name] == 1 for name in held)
        # Sent never, so the journal holds no trace of them.
        assert {n: e for n, e in entries.items() if n in held} == dict.fromkeys(held)
        assert names_of(again) == {
            n: "skipped" if n in created else "created" for n in names
        }
        assert not any(o.reconciled for o in again)
        assert again_watched.looked_up() == set()
        assert stored == Counter(names)

    async def test_a_create_sent_before_the_cancel_is_looked_up_next_run(
        self, tmp_path: Path
    ) -> None:
        """A create that reached the server stays in doubt; a held one is sent at once."""
        from nexudus_async._limiter import RateLimits, Window
        from nexudus_async.emulator import Emulator, EmulatorConfig, Faults, Limits

        source = write_jsonl(tmp_path / "in.jsonl", ["slow", "held"])
        keys = read_keys(source)
        # The server stores "slow" only after 1.5 s; the one write a minute the
        # client allows is spent on it, so "held" waits in the limiter.
        faults = Faults(by_name={"slow": ("delay:1.5",)})
        config = EmulatorConfig(limits=Limits.off(), faults=faults)
        finished: dict[str, float] = {}
        async with Emulator(config) as emulator:
            with Journal(tmp_path / "j.sqlite", synchronous="normal") as journal:
                limits = RateLimits([Window(1, 60.0, writes_only=True)])
                async with _client(emulator, rate_limits=limits) as client:
                    watched = WatchedFiles(client.import_files)
                    with open_records(source) as reader:
                        first = await run_until(
                            watched,
                            gated(
                                reader,
                                {"held": lambda: watched.phase("slow") is Phase.SENT},
                            ),
                            lambda: watched.phase("held") is Phase.WAITING,
                            journal=journal,
                            concurrency=2,
                        )
                entries = {name: journal.state(key) for name, key in keys.items()}
                async with _client(emulator) as client:
                    again_watched = WatchedFiles(client.import_files)
                    started = anyio.current_time()

                    def on_outcome(outcome: Outcome) -> None:
                        name = outcome.record.raw["Name"]
                        finished[name] = anyio.current_time() - started

                    with open_records(source) as reader:
                        again = by_index(
                            await run(
                                again_watched,
                                reader,
                                journal=journal,
                                settle_time=2.0,
                                on_outcome=on_outcome,
                            )
                        )
            stored = Counter(row["Name"] for row in emulator.records.values())

        assert names_of(first) == {"slow": "unknown", "held": "not_attempted"}
        assert entries["slow"] is not None
        assert entries["slow"].state == "unknown"
        assert entries["held"] is None
        # The create that reached the server is looked up once its mark is old
        # enough, and found: the server stored it after the client gave up.
        assert again[0].kind is OutcomeKind.CREATED
        assert again[0].reconciled
        assert again_watched.looked_up() == {"slow"}
        # The held one is sent at once, without waiting for the settle time.
        assert again[1].kind is OutcomeKind.CREATED
        assert not again[1].reconciled
        assert finished["held"] < min(1.0, finished["slow"])
        assert stored == Counter(["slow", "held"])

    async def test_a_create_held_after_an_earlier_send_keeps_its_mark(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Held unsent, but sent before or left in doubt by a run: the mark stays."""
        from nexudus_async._limiter import RateLimits, Window
        from nexudus_async.emulator import Emulator, EmulatorConfig, Faults, Limits

        names = ["resent", "doubted", "fresh"]
        source = write_jsonl(tmp_path / "in.jsonl", names)
        keys = read_keys(source)
        # "resent" loses its first answer (never stored), so it is looked up and
        # sent again; that second create waits in the limiter, whose one write a
        # minute the first took. "doubted" was left sending by an earlier run.
        faults = Faults(by_name={"resent": ("reset_before_store",)})
        config = EmulatorConfig(limits=Limits.off(), faults=faults)
        finished: dict[str, float] = {}
        async with Emulator(config) as emulator:
            with Journal(tmp_path / "j.sqlite", synchronous="normal") as journal:
                journal.mark_sending(keys["doubted"], 1, "doubted")
                limits = RateLimits([Window(1, 60.0, writes_only=True)])
                async with _client(emulator, rate_limits=limits) as client:
                    watched = WatchedFiles(client.import_files)

                    def all_held() -> bool:
                        return watched.creates["resent"] == 2 and all(
                            watched.phase(name) is Phase.WAITING for name in names
                        )

                    with open_records(source) as reader:
                        first = await run_until(
                            watched,
                            gated(
                                reader,
                                {
                                    "doubted": lambda: watched.ended["resent"] == 1,
                                    "fresh": lambda: watched.ended["resent"] == 1,
                                },
                            ),
                            all_held,
                            journal=journal,
                            concurrency=3,
                            settle_time=0,
                        )
                entries = {name: journal.state(key) for name, key in keys.items()}
                async with _client(emulator) as client:
                    again_watched = WatchedFiles(client.import_files)
                    started = anyio.current_time()

                    def on_outcome(outcome: Outcome) -> None:
                        name = outcome.record.raw["Name"]
                        finished[name] = anyio.current_time() - started

                    with open_records(source) as reader:
                        again = await run(
                            again_watched,
                            reader,
                            journal=journal,
                            settle_time=2.0,
                            on_outcome=on_outcome,
                        )
            stored = Counter(row["Name"] for row in emulator.records.values())

        assert names_of(first) == dict.fromkeys(names, "not_attempted")
        marks = {
            name: None if entry is None else (entry.state, entry.attempts)
            for name, entry in entries.items()
        }
        assert marks == {
            "resent": ("sending", 2),
            "doubted": ("sending", 2),
            "fresh": None,
        }
        # The next run looks both up before sending them; the fresh one goes at once.
        assert names_of(again) == dict.fromkeys(names, "created")
        assert again_watched.looked_up() == {"resent", "doubted"}
        assert finished["fresh"] < min(1.0, finished["resent"], finished["doubted"])
        assert stored == Counter(names)
        assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []

    async def test_a_journal_that_cannot_take_a_mark_back_leaves_it(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A failed write leaves the mark (a lookup next run), logs, and ends the job."""

        class HeldThenRefused(FakeFiles):
            # As the client's limiter does: hold the create unsent, then refuse it.
            async def create(self, record: ImportFileCreate) -> WriteResult:
                self.creates += 1
                state = send_state.get()
                assert state is not None
                state.phase = Phase.WAITING
                raise quota()

        def broken(key: str, before: Any) -> bool:
            raise JournalError("disk I/O error")

        source = write_jsonl(tmp_path / "in.jsonl", ["a", "b", "c"])
        keys = read_keys(source)
        files = HeldThenRefused()
        with Journal(tmp_path / "j.sqlite", synchronous="normal") as journal:
            journal.unmark_sending = broken  # type: ignore[method-assign]
            with open_records(source) as reader:
                outcomes = await run(files, reader, journal=journal, concurrency=1)
            entry = journal.state(keys["a"])

        assert kinds(outcomes) == {"not_attempted": 3}
        assert files.creates == 1
        assert entry is not None
        assert entry.state == "sending"
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors == ["journal write failed: disk I/O error"]


def _client(emulator: Any, *, timeout: float = 5.0, rate_limits: Any = None) -> Any:
    """A real client for an in-process emulator, without pacing unless given."""
    from nexudus_async._auth import BasicAuth
    from nexudus_async._client import NexudusClient

    return NexudusClient(
        auth=BasicAuth("admin@example.com", "password"),
        base_url=emulator.base_url,
        rate_limits=rate_limits,
        timeout=timeout,
    )


def test_bulk_job_is_the_type_bulk_create_returns() -> None:
    """bulk_create hands back a BulkJob, not yet started."""
    job = bulk_create(FakeClient(FakeFiles()), [])
    assert isinstance(job, BulkJob)
    assert job.elapsed == 0.0
    assert job.stop_reason is None
