"""Counters of what the emulator has seen and done."""

from __future__ import annotations

import attrs

__all__ = ["EmulatorStats"]


@attrs.define
class EmulatorStats:
    """What the emulator has counted since it started; read it, do not change it.

    Attributes:
        requests: every HTTP request received, the token endpoint included.
        token_grants: tokens issued (password and refresh grants).
        unauthorized: requests refused for missing or wrong credentials or a missing
            role.
        throttled: 409/429 throttle answers, including forced ``throttle`` faults.
        writes: write requests (POST, PUT, DELETE) admitted past the throttle.
        creates: records created.
        updates: records replaced by PUT.
        deletes: records deleted.
        commands_run: commands run successfully.
        rejected: requests answered with validation errors.
        faults_fired: requests that got at least one injected fault.
        fault_kinds: how many times each fault kind fired.
    """

    requests: int = 0
    token_grants: int = 0
    unauthorized: int = 0
    throttled: int = 0
    writes: int = 0
    creates: int = 0
    updates: int = 0
    deletes: int = 0
    commands_run: int = 0
    rejected: int = 0
    faults_fired: int = 0
    fault_kinds: dict[str, int] = attrs.field(factory=dict)
