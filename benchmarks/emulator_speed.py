"""How many creates per second the emulator answers, with its limits off.

The emulator runs in this process; a plain aiohttp session (no SDK) sends the creates
with a fixed concurrency over keep-alive connections, authenticated with a Bearer token.
The last line printed is the figure:

    emulator_creates_per_second: VALUE (target: well above the client's rate)

Run it as ``python benchmarks/emulator_speed.py`` (``--quick`` for a short run).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time

import aiohttp

from nexudus_async.emulator import Emulator, EmulatorConfig, Limits

_COLLECTION = "/api/crm/crmopportunityimportfiles"


async def _token(session: aiohttp.ClientSession, email: str, password: str) -> str:
    form = {"grant_type": "password", "username": email, "password": password}
    async with session.post("/api/token", data=form) as response:
        response.raise_for_status()
        answer = await response.json()
    return str(answer["access_token"])


async def _create_all(
    session: aiohttp.ClientSession, token: str, count: int, concurrency: int
) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    numbers = iter(range(count))
    failures = 0

    async def worker() -> None:
        nonlocal failures
        for number in numbers:
            body = {"BusinessId": 1 + number % 3, "Name": f"benchmark-{number}"}
            async with session.post(
                _COLLECTION, json=body, headers=headers
            ) as response:
                await response.read()
                if response.status != 200:
                    failures += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))

    return failures


async def measure(count: int, concurrency: int, rounds: int) -> float:
    """Run ``rounds`` timed rounds of ``count`` creates; the best rate, per second."""
    config = EmulatorConfig(limits=Limits.off())
    best = 0.0
    async with Emulator(config) as emulator:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(
            emulator.base_url, connector=connector
        ) as session:
            user = config.users[0]
            token = await _token(session, user.email, user.password)
            await _create_all(session, token, min(count, 500), concurrency)  # warm-up

            for round_number in itertools.count(1):
                if round_number > rounds:
                    break
                started = time.perf_counter()
                failures = await _create_all(session, token, count, concurrency)
                elapsed = time.perf_counter() - started
                rate = count / elapsed
                best = max(best, rate)
                print(
                    f"round {round_number}: {count} creates in {elapsed:.2f} s "
                    f"= {rate:,.0f}/s ({failures} failed)"
                )
        print(f"records stored: {len(emulator.records):,}")

    return best


def main() -> None:
    """Parse the options, measure and print the figure last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=20_000, help="creates per round")
    parser.add_argument(
        "--concurrency", type=int, default=32, help="requests in flight"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="timed rounds; the best counts"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short run (a few seconds)"
    )
    args = parser.parse_args()
    count, rounds = (3_000, 2) if args.quick else (args.creates, args.rounds)

    rate = asyncio.run(measure(count, args.concurrency, rounds))
    print(
        f"emulator_creates_per_second: {rate:.0f} (target: well above the client's rate)"
    )


if __name__ == "__main__":
    main()
