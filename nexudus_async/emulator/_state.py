"""Everything one running emulator holds: its settings and its mutable parts."""

from __future__ import annotations

from ._auth import Authenticator
from ._config import EmulatorConfig
from ._faults import FaultPlanner
from ._stats import EmulatorStats
from ._store import Store
from ._throttle import Throttle

__all__ = ["EmulatorState"]


class EmulatorState:
    """The store, tokens, throttle, fault planner and counters of one emulator."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.store = Store(
            first_id=config.first_id, timestamp_suffix=config.timestamp_suffix
        )
        self.auth = Authenticator(config)
        self.throttle = Throttle(config.limits, time_scale=config.time_scale)
        self.faults = FaultPlanner(config.faults)
        self.stats = EmulatorStats()
