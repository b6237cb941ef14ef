"""Defaults shared by the client, its retry policy and its rate limiter."""

from __future__ import annotations

from typing import Final

from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "IMPORT_FILES_PATH",
    "RESTART_SPACING",
    "TOKEN_PATH",
    "TOKEN_REFRESH_LEEWAY",
    "USER_AGENT",
]

#: The REST API host; the token endpoint lives there too.
DEFAULT_BASE_URL: Final = "https://spaces.nexudus.com"

#: Seconds a request may go without a byte from the server, from sending it to the
#: start of the answer and then between two reads of it.
DEFAULT_TIMEOUT: Final = 30.0

TOKEN_PATH: Final = "/api/token"
IMPORT_FILES_PATH: Final = "/api/crm/crmopportunityimportfiles"

#: Seconds before its expiry at which an access token is renewed, so a request never
#: leaves with a token that dies on the way.
TOKEN_REFRESH_LEEWAY: Final = 60.0

#: Seconds between requests released together after a throttle pause.
RESTART_SPACING: Final = 0.1

USER_AGENT: Final = f"nexudus-async/{__version__}"
