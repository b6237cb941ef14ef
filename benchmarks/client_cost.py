"""What the SDK's bulk creator costs on the client, next to a plain aiohttp loop.

Both sides send the same creates, at the same concurrency, to the same fast local
server, which runs in its own process so that this process's CPU time is the
client's alone; on Linux with two CPUs or more, the two processes are kept on
CPUs of their own. Many short rounds alternate between the two sides, and each
round compares its two sides, run back to back, so that a change in the
machine's load touches both alike. A figure is the median of the rounds' ratios:
on a small shared machine one round in several is disturbed by a neighbour,
which a median leaves out and a sum or a mean would not.

* cpu_ratio: CPU seconds per record of the bulk creator (client, rate limits off,
  every outcome consumed) over those of the plain loop. Target: at most 1.3.
* throughput_ratio: records per second of the bulk creator over the plain loop.
  Target: at least 0.85.

Usage: ``python benchmarks/client_cost.py [--quick] [--records N] [--rounds R]``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import json
import os
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import anyio
from _fast_server import PATH, fast_server

from nexudus_async._auth import BasicAuth
from nexudus_async._bulk import bulk_create
from nexudus_async._client import NexudusClient
from nexudus_async._models import ImportFileCreate
from nexudus_async._outcomes import OutcomeKind

CONCURRENCY = 16
AUTH = BasicAuth("admin@example.com", "password")


async def plain_loop(session: aiohttp.ClientSession, url: str, count: int) -> int:
    """The hand-written baseline: POST, read the envelope, keep the Id."""
    header = {
        "Authorization": "Basic " + base64.b64encode(b"admin@example.com:x").decode(),
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    records = iter({"BusinessId": 1, "Name": f"plain-{n:07d}"} for n in range(count))
    created = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal created
        for record in records:
            async with session.post(
                url + PATH, data=json.dumps(record).encode(), headers=header
            ) as response:
                data = await response.json()
                ok = response.status == 200 and data["WasSuccessful"]
                if ok and isinstance(data["Value"]["Id"], int):
                    created += 1

    async with anyio.create_task_group() as tg:
        for _ in range(CONCURRENCY):
            tg.start_soon(worker, session)
    return created


async def bulk_creator(client: NexudusClient, count: int) -> int:
    """The SDK: a bulk job over the client, every outcome consumed."""
    records = (ImportFileCreate(1, f"bulk-{n:07d}") for n in range(count))
    created = 0
    async with bulk_create(client, records, concurrency=CONCURRENCY) as job:
        async for outcome in job:
            if outcome.kind is OutcomeKind.CREATED:
                created += 1
    return created


#: One side of the comparison: sends this many records, returns how many were created.
Side = Callable[[int], Awaitable[int]]


@contextlib.asynccontextmanager
async def open_sides(url: str) -> AsyncIterator[dict[str, Side]]:
    """Both sides, each keeping its session (or client) and connections for every round.

    A job, like a loop written by hand, opens its connections once and then sends
    records for as long as it has some. Opening a session for each round would
    add that setup, once a round, to both sides' cost per record.
    """
    async with (
        aiohttp.ClientSession() as session,
        NexudusClient(auth=AUTH, base_url=url, rate_limits=None) as client,
    ):
        yield {
            "plain_loop": functools.partial(plain_loop, session, url),
            "bulk_creator": functools.partial(bulk_creator, client),
        }


async def measure(name: str, side: Side, count: int) -> tuple[float, float]:
    """CPU seconds and wall seconds for one round."""
    cpu, wall = time.process_time(), time.perf_counter()
    created = await side(count)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if created != count:
        raise RuntimeError(f"{name} created {created} of {count}")
    return cpu, wall


def separate_cpus() -> tuple[int, int] | None:
    """Keep this process on one CPU and name another for the server, if there are two.

    The two sides then never compete for one CPU, or move between CPUs in the
    middle of a round, which on a small shared machine swings a round's figures
    by a third. Only Linux can; elsewhere, and with one CPU, nothing is pinned.
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None
    client, server = allowed[0], allowed[1]
    os.sched_setaffinity(0, {client})
    return client, server


async def main(records: int, rounds: int) -> None:
    cpus = separate_cpus()
    if cpus is not None:
        print(f"client on CPU {cpus[0]}, server on CPU {cpus[1]}", flush=True)
    with fast_server(cpu=None if cpus is None else cpus[1]) as url:
        async with open_sides(url) as sides:
            # A short warm-up of each side, not counted: imports, first connections.
            for name, side in sides.items():
                await measure(name, side, 500)

            cpu_ratios, throughput_ratios = [], []
            for round_number in range(rounds):
                # Alternate which side goes first, so drift favours neither.
                order = ["plain_loop", "bulk_creator"]
                if round_number % 2:
                    order.reverse()
                figures = {}
                for name in order:
                    cpu, wall = figures[name] = await measure(
                        name, sides[name], records
                    )
                    print(
                        f"round {round_number + 1} {name:>12}: "
                        f"{cpu / records * 1e6:6.1f} us CPU/record, "
                        f"{records / wall:8.0f} records/s",
                        flush=True,
                    )
                (plain_cpu, plain_wall), (bulk_cpu, bulk_wall) = (
                    figures["plain_loop"],
                    figures["bulk_creator"],
                )
                cpu_ratios.append(bulk_cpu / plain_cpu)
                throughput_ratios.append(plain_wall / bulk_wall)

    for name, ratios in (("cpu", cpu_ratios), ("throughput", throughput_ratios)):
        low, middle, high = statistics.quantiles(ratios, n=4)
        print(
            f"{name} ratio per round: median {middle:.3f}, middle half {low:.3f}-{high:.3f}"
        )
    print(
        f"client_cost: cpu_ratio={statistics.median(cpu_ratios):.2f} (target <= 1.3), "
        f"throughput_ratio={statistics.median(throughput_ratios):.2f} (target >= 0.85)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run under a minute")
    parser.add_argument("--records", type=int, help="records per round and side")
    parser.add_argument("--rounds", type=int, help="rounds per side")
    args = parser.parse_args()
    count = args.records or (2_000 if args.quick else 5_000)
    rounds = args.rounds or (20 if args.quick else 40)
    if rounds < 2:
        parser.error("--rounds must be at least 2: the figures are medians of rounds")
    asyncio.run(main(count, rounds))
