"""Where the command line finds its credentials: the environment, else a prompt.

A token in ``NEXUDUS_TOKEN`` wins; otherwise ``NEXUDUS_EMAIL`` and
``NEXUDUS_PASSWORD`` (with ``NEXUDUS_TOTP`` when the account has two-factor
authentication) are exchanged for a token. When something is missing and standard
input is a terminal, the user is asked; a password or code typed there is never
echoed. Nothing here logs or prints a secret.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable, Mapping
from typing import Final, TextIO

from ._auth import BearerAuth, PasswordAuth

__all__ = [
    "ENV_EMAIL",
    "ENV_PASSWORD",
    "ENV_TOKEN",
    "ENV_TOTP",
    "CredentialsError",
    "credentials_from_environment",
]

ENV_EMAIL: Final = "NEXUDUS_EMAIL"
ENV_PASSWORD: Final = "NEXUDUS_PASSWORD"
ENV_TOTP: Final = "NEXUDUS_TOTP"
ENV_TOKEN: Final = "NEXUDUS_TOKEN"


class CredentialsError(Exception):
    """No usable credentials: none in the environment and no terminal to ask on."""


def _ask_visible(prompt: str, stream: TextIO, stdin: TextIO) -> str:
    # input() would print its prompt on standard output, which may carry results.
    print(prompt, end="", file=stream, flush=True)
    line = stdin.readline()
    if not line:
        raise CredentialsError("no answer: standard input was closed")

    return line.strip()


def credentials_from_environment(
    environ: Mapping[str, str],
    *,
    stdin: TextIO | None = None,
    prompt_stream: TextIO | None = None,
    ask_secret: Callable[[str, TextIO], str] = getpass.getpass,
) -> PasswordAuth | BearerAuth:
    """Build the client's authentication from the environment or a prompt.

    Args:
        environ: The environment, usually ``os.environ``.
        stdin: Where typed answers come from; standard input by default. The user
            is only asked when it is a terminal.
        prompt_stream: Where prompts go; standard error by default.
        ask_secret: Reads a secret without echoing it; `getpass.getpass` by default.

    Returns:
        A bearer token, or an email and password to exchange for one.

    Raises:
        CredentialsError: Something is missing and there is no terminal to ask on.
    """
    token = environ.get(ENV_TOKEN, "").strip()
    if token:
        return BearerAuth(token)

    email = environ.get(ENV_EMAIL, "").strip()
    password = environ.get(ENV_PASSWORD, "")
    totp = environ.get(ENV_TOTP, "").strip() or None
    if email and password:
        return PasswordAuth(email, password, totp=totp)

    stdin = sys.stdin if stdin is None else stdin
    prompt_stream = sys.stderr if prompt_stream is None else prompt_stream
    if not stdin.isatty():
        missing = [
            name
            for name, value in ((ENV_EMAIL, email), (ENV_PASSWORD, password))
            if not value
        ]
        raise CredentialsError(
            f"no credentials: set {ENV_EMAIL} and {ENV_PASSWORD} (and {ENV_TOTP} "
            f"with two-factor authentication), or {ENV_TOKEN}; "
            f"missing: {', '.join(missing)}"
        )

    if not email:
        email = _ask_visible("Nexudus email: ", prompt_stream, stdin)
    if not password:
        password = ask_secret("Nexudus password: ", prompt_stream)
    if not email or not password:
        raise CredentialsError("no credentials: an email and a password are needed")

    return PasswordAuth(email, password, totp=totp)
