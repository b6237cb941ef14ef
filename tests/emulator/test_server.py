"""Tests of serving: the banner, serve(), and the emulator run as a separate server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import nexudus_async.emulator
from nexudus_async.emulator import Emulator, EmulatorConfig, Limits, serve
from nexudus_async.emulator._server import banner

from .conftest import COLLECTION, basic

REPO = Path(nexudus_async.emulator.__file__).resolve().parents[2]


class TestServe:
    async def test_announces_and_serves_until_cancelled(self) -> None:
        """serve() prints the banner, answers requests and stops when cancelled."""
        announced: asyncio.Queue[str] = asyncio.Queue()
        task = asyncio.create_task(
            serve(
                EmulatorConfig(limits=Limits.off()),
                port=0,
                announce=announced.put_nowait,
            )
        )
        try:
            text = await asyncio.wait_for(announced.get(), 10)
            url = re.search(r"listening on (http://\S+)", text)
            assert url is not None
            async with (
                aiohttp.ClientSession() as session,
                session.get(
                    url.group(1) + COLLECTION,
                    headers=basic("admin@example.com", "password"),
                ) as response,
            ):
                assert response.status == 200
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    async def test_banner_lists_logins_and_limits(self) -> None:
        """The banner shows the URLs, every login with its password, and the limits."""
        config = EmulatorConfig(time_scale=60)
        async with Emulator(config) as emulator:
            text = banner(emulator)
        assert "/api/token" in text
        assert "admin@example.com / password (full administrator)" in text
        assert (
            "reader@example.com / password (roles: CrmOpportunityImportFile-List, CrmOpportunityImportFile-Read)"
            in text
        )
        assert "writes_per_minute=60" in text
        assert "time scale 60" in text


@pytest.fixture
async def server_process() -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """`python -m nexudus_async.emulator` on a free port, stopped with SIGTERM afterwards."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO), os.environ.get("PYTHONPATH")])
        ),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nexudus_async.emulator",
        "--port",
        "0",
        "--user",
        "a@example.com",
        "--password",
        "pw",
        "--time-scale",
        "60",
        "--fault-name",
        "drop-me=reset_after_store",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None
    try:
        first = await asyncio.wait_for(process.stdout.readline(), 30)
        found = re.search(rb"listening on (http://\S+)", first)
        assert found is not None, first
        yield process, found.group(1).decode()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), 30)


async def curl(*args: str) -> tuple[int, str]:
    """Run curl; its exit status and output (body, then the status code on its own line)."""
    process = await asyncio.create_subprocess_exec(
        "curl",
        "-sS",
        "-w",
        "\n%{http_code}",
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


def split(output: str) -> tuple[int, Any]:
    body, _, code = output.rpartition("\n")
    return int(code), json.loads(body) if body else None


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
class TestServerWithCurl:
    async def test_acceptance_walkthrough(
        self, server_process: tuple[asyncio.subprocess.Process, str]
    ) -> None:
        """By curl: token, create, get, list, validation, 409 on the 61st write, reset after store."""
        process, url = server_process
        resource = url + COLLECTION

        _, out = await curl(
            "-d",
            "grant_type=password",
            "-d",
            "username=a@example.com",
            "-d",
            "password=pw",
            url + "/api/token",
        )
        status, token = split(out)
        assert status == 200
        bearer = f"Authorization: Bearer {token['access_token']}"
        json_type = "Content-Type: application/json"

        _, out = await curl(
            "-H",
            bearer,
            "-H",
            json_type,
            "-d",
            '{"BusinessId": 123, "Name": "<string>"}',
            resource,
        )
        status, answer = split(out)
        assert status == 200
        record_id = answer["Value"]["Id"]

        await asyncio.sleep(0.02)
        _, out = await curl("-H", bearer, f"{resource}/{record_id}")
        status, record = split(out)
        assert status == 200
        assert set(record) == {
            "Id",
            "UniqueId",
            "BusinessId",
            "Name",
            "Imported",
            "FileDataFileName",
            "NewFileDataUrl",
            "ClearFileDataFile",
            "CreatedOn",
            "UpdatedOn",
            "UpdatedBy",
            "IsNew",
            "SystemId",
        }

        _, out = await curl(
            "-G",
            "-H",
            bearer,
            "--data-urlencode",
            "CrmOpportunityImportFile_Name=<string>",
            resource,
        )
        status, page = split(out)
        assert status == 200
        assert [r["Id"] for r in page["Records"]] == [record_id]

        _, out = await curl(
            "-H", bearer, "-H", json_type, "-d", '{"BusinessId": 1}', resource
        )
        assert split(out) == (
            400,
            {
                "Status": 400,
                "Message": "Name: is a required field",
                "Value": None,
                "OpenInDialog": False,
                "OpenInWindow": False,
                "RedirectURL": None,
                "JavaScript": None,
                "UpdatedOn": None,
                "UpdatedBy": None,
                "Errors": [
                    {
                        "AttemptedValue": None,
                        "Message": "is a required field",
                        "PropertyName": "Name",
                    }
                ],
                "WasSuccessful": False,
            },
        )
        _, out = await curl("-H", bearer, "-H", json_type, "-d", "{}", resource)
        status, answer = split(out)
        assert status == 400
        assert len(answer["Errors"]) == 2

        exit_code, _ = await curl(
            "-H",
            bearer,
            "-H",
            json_type,
            "-d",
            '{"BusinessId": 2, "Name": "drop-me"}',
            resource,
        )
        assert exit_code in (
            52,
            56,
        )  # empty reply or connection reset: no answer at all
        await asyncio.sleep(0.02)
        _, out = await curl(
            "-G",
            "-H",
            bearer,
            "--data-urlencode",
            "CrmOpportunityImportFile_Name=drop-me",
            resource,
        )
        status, page = split(out)
        assert status == 200
        assert page["TotalItems"] == 1

        # A fresh scaled minute, then 61 quick writes; curl is too slow to send 61 in a
        # real second, so these go over one aiohttp connection.
        await asyncio.sleep(1.1)
        async with aiohttp.ClientSession(
            headers={"Authorization": bearer.split(": ", 1)[1]}
        ) as session:
            statuses = []
            for i in range(61):
                async with session.post(
                    resource, json={"BusinessId": 1, "Name": f"n{i}"}
                ) as response:
                    statuses.append(response.status)
                    retry_after = response.headers.get("Retry-After")
        assert statuses == [200] * 60 + [409]
        assert retry_after is not None

        process.send_signal(signal.SIGTERM)
        out_bytes, _ = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0
        assert b"Press Ctrl+C to stop." in out_bytes
