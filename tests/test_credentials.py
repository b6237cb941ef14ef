"""Where the command line takes its credentials from: the environment, else a prompt."""

from __future__ import annotations

import io
from typing import TextIO

import pytest

from nexudus_async._auth import BearerAuth, PasswordAuth
from nexudus_async._credentials import CredentialsError, credentials_from_environment


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Secrets:
    """Stands in for getpass: records the prompts, answers from a list."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.prompts: list[str] = []

    def __call__(self, prompt: str, stream: TextIO) -> str:
        self.prompts.append(prompt)
        return self.answers.pop(0)


class TestEnvironment:
    def test_a_token_wins_over_a_password(self) -> None:
        """NEXUDUS_TOKEN is used as is when set."""
        auth = credentials_from_environment(
            {
                "NEXUDUS_TOKEN": " tok ",
                "NEXUDUS_EMAIL": "a@b.c",
                "NEXUDUS_PASSWORD": "p",
            }
        )

        assert isinstance(auth, BearerAuth)
        assert auth.token == "tok"

    def test_email_password_and_code(self) -> None:
        """The password grant gets the two-factor code when one is set."""
        auth = credentials_from_environment(
            {
                "NEXUDUS_EMAIL": "a@b.c",
                "NEXUDUS_PASSWORD": " p w ",
                "NEXUDUS_TOTP": "123",
            }
        )

        assert isinstance(auth, PasswordAuth)
        assert (auth.email, auth.password, auth.totp) == ("a@b.c", " p w ", "123")

    def test_nothing_and_no_terminal_names_what_is_missing(self) -> None:
        """Without a terminal the error says which variables to set."""
        with pytest.raises(CredentialsError) as caught:
            credentials_from_environment(
                {"NEXUDUS_EMAIL": "a@b.c"}, stdin=io.StringIO()
            )

        message = str(caught.value)
        assert "NEXUDUS_TOKEN" in message
        assert message.endswith("missing: NEXUDUS_PASSWORD")


class TestPrompt:
    def test_a_terminal_is_asked_and_the_password_is_not_echoed(self) -> None:
        """The email is read as typed; the password goes through the secret reader."""
        prompts = io.StringIO()
        secrets = _Secrets("hunter2")

        auth = credentials_from_environment(
            {},
            stdin=_Terminal("me@example.com\n"),
            prompt_stream=prompts,
            ask_secret=secrets,
        )

        assert isinstance(auth, PasswordAuth)
        assert (auth.email, auth.password) == ("me@example.com", "hunter2")
        assert prompts.getvalue() == "Nexudus email: "
        assert secrets.prompts == ["Nexudus password: "]
        assert "hunter2" not in repr(auth)

    def test_only_what_is_missing_is_asked(self) -> None:
        """An email from the environment is not asked again."""
        secrets = _Secrets("pw")

        auth = credentials_from_environment(
            {"NEXUDUS_EMAIL": "a@b.c"},
            stdin=_Terminal(),
            prompt_stream=io.StringIO(),
            ask_secret=secrets,
        )

        assert isinstance(auth, PasswordAuth)
        assert auth.email == "a@b.c"
        assert secrets.prompts == ["Nexudus password: "]

    def test_an_empty_answer_is_refused(self) -> None:
        """Pressing Enter at the password prompt is not a password."""
        with pytest.raises(CredentialsError):
            credentials_from_environment(
                {"NEXUDUS_EMAIL": "a@b.c"},
                stdin=_Terminal(),
                prompt_stream=io.StringIO(),
                ask_secret=_Secrets(""),
            )
