"""A local emulator of the Nexudus REST API, for tests, demos and benchmarks.

It serves the token endpoint and the ``CrmOpportunityImportFile`` resource the way the
vendor documents them: validation, throttling with 409 and ``Retry-After``, and injected
faults on demand. See ``docs/emulator.md`` for every setting and assumption.
"""

from __future__ import annotations

from ._config import ALL_ROLES, READ_ROLES, EmulatorConfig, User, role
from ._emulator import Emulator
from ._faults import Faults
from ._options import add_emulator_arguments, config_from_args
from ._server import run_server, serve
from ._stats import EmulatorStats
from ._throttle import Limits

__all__ = [
    "ALL_ROLES",
    "READ_ROLES",
    "Emulator",
    "EmulatorConfig",
    "EmulatorStats",
    "Faults",
    "Limits",
    "User",
    "add_emulator_arguments",
    "config_from_args",
    "role",
    "run_server",
    "serve",
]
