"""Tests of the emulator's counters."""

from __future__ import annotations

from nexudus_async.emulator import EmulatorStats


class TestEmulatorStats:
    def test_start_at_zero(self) -> None:
        """Every counter starts at zero and no fault kind is listed."""
        stats = EmulatorStats()
        assert (
            stats.requests
            == stats.creates
            == stats.throttled
            == stats.faults_fired
            == 0
        )
        assert stats.fault_kinds == {}

    def test_each_instance_has_its_own_kinds(self) -> None:
        """The per-kind fault counts are not shared between instances."""
        first, second = EmulatorStats(), EmulatorStats()
        first.fault_kinds["html"] = 1
        assert second.fault_kinds == {}
