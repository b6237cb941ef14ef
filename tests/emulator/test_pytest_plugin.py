"""Tests of the pytest plugin, run in a separate pytest session as a user's project would."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import nexudus_async.emulator

REPO = Path(nexudus_async.emulator.__file__).resolve().parents[2]

DEFAULT_TESTS = '''
import base64
import urllib.request

from nexudus_async.emulator import EmulatorConfig

AUTH = "Basic " + base64.b64encode(b"admin@example.com:password").decode()
PATH = "/api/crm/crmopportunityimportfiles"


def test_sync_with_defaults(nexudus_emulator):
    """A synchronous test gets an emulator with the default settings."""
    assert nexudus_emulator.config == EmulatorConfig()
    request = urllib.request.Request(
        nexudus_emulator.base_url + PATH,
        data=b'{"BusinessId": 1, "Name": "from a sync test"}',
        headers={"Authorization": AUTH, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
    assert [r["Name"] for r in nexudus_emulator.records.values()] == ["from a sync test"]
'''

CUSTOM_CONFTEST = """
import pytest
from nexudus_async.emulator import EmulatorConfig, Limits

@pytest.fixture
def nexudus_emulator_config():
    return EmulatorConfig(limits=Limits.off(), first_id=500)
"""

CUSTOM_TESTS = '''
import base64

import aiohttp

AUTH = "Basic " + base64.b64encode(b"admin@example.com:password").decode()
PATH = "/api/crm/crmopportunityimportfiles"


async def test_async_with_overridden_config(nexudus_emulator):
    """An async test gets a fresh emulator with the overridden settings."""
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.post(
                nexudus_emulator.base_url + PATH,
                json={"BusinessId": 1, "Name": "x"},
                headers={"Authorization": AUTH},
            ) as response:
                assert response.status == 200
    assert sorted(nexudus_emulator.records) == [500, 501, 502]
'''


def _plugin_is_installed() -> bool:
    return any(
        ep.value == "nexudus_async.emulator.pytest_plugin"
        for ep in entry_points(group="pytest11")
    )


class TestPytestPlugin:
    def test_fixtures_in_a_users_test_session(self, tmp_path: Path) -> None:
        """A user's tests get nexudus_emulator, and a conftest can override its settings."""
        (tmp_path / "test_default.py").write_text(textwrap.dedent(DEFAULT_TESTS))
        custom = tmp_path / "custom"
        custom.mkdir()
        (custom / "conftest.py").write_text(textwrap.dedent(CUSTOM_CONFTEST))
        (custom / "test_custom.py").write_text(textwrap.dedent(CUSTOM_TESTS))
        args = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-W",
            "error",
            "-p",
            "no:cacheprovider",
        ]
        args += [
            "-o",
            "asyncio_mode=auto",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
        ]
        # When the package is installed its entry point loads the plugin already, and
        # loading it a second time would be an error.
        if not _plugin_is_installed():
            args += ["-p", "nexudus_async.emulator.pytest_plugin"]
        path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))

        result = subprocess.run(
            [*args, "--rootdir", str(tmp_path), str(tmp_path)],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": path},
            capture_output=True,
            text=True,
            timeout=50,
            check=False,
        )

        assert result.returncode == 0, result.stdout + result.stderr
        assert "2 passed" in result.stdout

    def test_module_exports_the_fixtures(self) -> None:
        """The plugin module names both fixtures in __all__."""
        from nexudus_async.emulator import pytest_plugin

        assert sorted(pytest_plugin.__all__) == [
            "nexudus_emulator",
            "nexudus_emulator_config",
        ]
