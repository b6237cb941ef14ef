"""Tests of ``python -m nexudus_async.emulator`` run in-process."""

from __future__ import annotations

import pytest

from nexudus_async.emulator import Emulator
from nexudus_async.emulator.__main__ import main


class TestMain:
    def test_refused_configuration_is_a_usage_error(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A value the configuration refuses exits with status 2 and says why."""
        with pytest.raises(SystemExit) as stopped:
            main(["--time-scale", "0"])
        assert stopped.value.code == 2
        assert "time_scale" in capsys.readouterr().err

    def test_busy_port_exits_with_1(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A port that is taken gives exit status 1 and a message, not a traceback."""
        with Emulator() as taken:
            port = taken.base_url.rsplit(":", 1)[1]
            assert main(["--port", port]) == 1
        assert f"cannot serve on 127.0.0.1:{port}" in capsys.readouterr().err
