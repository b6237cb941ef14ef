"""Fault soak of the bulk creator against the emulator: thousands of records, no slips."""

from __future__ import annotations

from collections import Counter

import pytest

from nexudus_async._auth import BasicAuth
from nexudus_async._bulk import create_all
from nexudus_async._client import NexudusClient
from nexudus_async._models import ImportFileCreate
from nexudus_async._outcomes import OutcomeKind
from nexudus_async._retry import RetryPolicy
from nexudus_async.emulator import Emulator, EmulatorConfig, Faults, Limits

RECORDS = 5000
FAULT_KINDS = (
    "status:503",
    "status:500",
    "throttle:0",
    "reset_before_store",
    "reset_after_store",
)


@pytest.mark.slow
class TestSoak:
    # The client's own retries are how the bulk creator runs for real; with one
    # attempt per request, every fault reaches the bulk creator instead, lookups
    # included, so its own decisions (unknown outcomes above all) are under test.
    @pytest.mark.parametrize(
        "retry",
        [None, RetryPolicy(max_attempts=1)],
        ids=["client-retries", "one-attempt"],
    )
    async def test_every_record_settles_once_and_nothing_is_stored_twice(
        self, retry: RetryPolicy | None
    ) -> None:
        """5,000 records under seeded 5xx, throttles and resets: exact accounting."""
        faults = Faults(rate=0.08, kinds=FAULT_KINDS, scope="all", seed=20240601)
        config = EmulatorConfig(limits=Limits.off(), faults=faults)
        records = [ImportFileCreate(1 + n % 3, f"soak-{n:05d}") for n in range(RECORDS)]
        async with (
            Emulator(config) as emulator,
            NexudusClient(
                auth=BasicAuth("admin@example.com", "password"),
                base_url=emulator.base_url,
                rate_limits=None,
                retry=retry,
            ) as client,
        ):
            report = await create_all(
                client,
                records,
                concurrency=32,
                keep_created=True,
                reconcile_delay=0,
            )
            stored = {
                (row["BusinessId"], row["Name"]): row["Id"]
                for row in emulator.records.values()
            }
            stored_count = len(emulator.records)
            fired = dict(emulator.stats.fault_kinds)

        # Each fault kind fired, often enough to matter.
        assert fired.keys() >= {
            "status",
            "throttle",
            "reset_before_store",
            "reset_after_store",
        }
        assert min(fired.values()) >= 50

        # Every record has exactly one outcome.
        assert sorted(o.index for o in report.outcomes) == list(range(RECORDS))
        assert sum(report.counts.values()) == RECORDS

        # No (BusinessId, Name) is stored twice.
        assert len(stored) == stored_count

        # One stored record per created outcome, with the Id the outcome reports...
        created = [o for o in report.outcomes if o.kind is OutcomeKind.CREATED]
        for outcome in created:
            key = (outcome.record.business_id, outcome.record.name)
            assert stored[key] == outcome.id
        assert any(o.reconciled for o in created)

        # ...plus one per unknown that was in fact stored, and nothing else.
        unknown = [o for o in report.outcomes if o.kind is OutcomeKind.UNKNOWN]
        unknown_stored = [
            o for o in unknown if (o.record.business_id, o.record.name) in stored
        ]
        assert stored_count == len(created) + len(unknown_stored)

        # Only the outcomes these faults can cause.
        kinds = Counter(o.kind for o in report.outcomes)
        assert set(kinds) <= {
            OutcomeKind.CREATED,
            OutcomeKind.UNKNOWN,
            OutcomeKind.FAILED,
        }
        assert kinds[OutcomeKind.CREATED] >= RECORDS * 0.98
