"""A minimal, fast stand-in for the create endpoint, run as its own process.

It answers every ``POST /api/crm/crmopportunityimportfiles`` with the documented
success envelope and a fresh Id, and every ``GET`` with an empty page. It checks
nothing, so that what the benchmarks measure is the client, not the server.

Run ``python benchmarks/_fast_server.py``: it prints the URL it serves on, then
serves until its standard input closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator

from aiohttp import web

PATH = "/api/crm/crmopportunityimportfiles"

_HEAD = b'{"Status":200,"Message":"CrmOpportunityImportFile was successfully created.","Value":{"Id":'
_TAIL = (
    b'},"OpenInDialog":false,"OpenInWindow":false,"RedirectURL":null,'
    b'"JavaScript":null,"UpdatedOn":"2025-01-15T10:30:00Z",'
    b'"UpdatedBy":"admin@example.com","Errors":null,"WasSuccessful":true}'
)
_EMPTY_PAGE = json.dumps(
    {
        "Records": [],
        "CurrentPage": 1,
        "CurrentPageSize": 25,
        "HasNextPage": False,
        "HasPreviousPage": False,
        "TotalItems": 0,
        "TotalPages": 0,
    }
).encode()


def _app() -> web.Application:
    ids = itertools.count(1)

    async def create(request: web.Request) -> web.Response:
        await request.read()
        body = _HEAD + str(next(ids)).encode() + _TAIL
        return web.Response(body=body, content_type="application/json")

    async def listing(request: web.Request) -> web.Response:
        return web.Response(body=_EMPTY_PAGE, content_type="application/json")

    app = web.Application()
    app.router.add_post(PATH, create)
    app.router.add_get(PATH, listing)
    return app


async def _serve() -> None:
    runner = web.AppRunner(_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = runner.addresses[0][1]
    print(f"http://127.0.0.1:{port}", flush=True)
    loop = asyncio.get_running_loop()
    # Serve until the parent closes our standard input (or dies).
    await loop.run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


@contextlib.contextmanager
def fast_server(cpu: int | None = None) -> Iterator[str]:
    """Run the server in a child process; yields its base URL.

    Args:
        cpu: Keep the server on this CPU (Linux only), away from the client.
    """
    process = subprocess.Popen(
        [sys.executable, __file__],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    if cpu is not None:
        os.sched_setaffinity(process.pid, {cpu})
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError("the fast server did not start")
        yield url
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    asyncio.run(_serve())
